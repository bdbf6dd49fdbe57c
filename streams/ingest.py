# TEMPORARY smoke-test shim (replaced once schemas/ lands)
import json
class _D:
    def decode(self, raw, key, now_ms):
        return json.loads(raw)
def build_decoder(settings):
    return _D(), None
class RecordRejected(Exception):
    kind = "x"
