"""Records per second per core of the ingestion decode path (decode + validate + redact).

Runs ``InteractionDecoder.decode`` single-threaded on pre-encoded, seeded simulator
traffic, for Avro (Confluent wire format) and JSON, with three text mixes: clean
(no PII), typical (2% of queries carry PII, the simulator's default) and all-PII
(every query carries an e-mail, phone, card or IBAN). The rate is records per CPU
second of this process, i.e. per core, so other load on the machine inflates it
less than a wall-clock rate would (the wall rate is reported too).

    python benchmarks/bench_decode.py            # 100k records per case, 5 repeats
    python benchmarks/bench_decode.py --quick    # 20k records, 3 repeats

Writes benchmarks/results/decode.json and benchmarks/results/decode.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import confluent_kafka
import fastavro

from schemas.decode import InteractionDecoder
from schemas.dedup import Deduplicator
from schemas.encode import InteractionEncoder
from schemas.registry import make_registry
from schemas.validation import ValidationLimits
from streams.simulator import SimulatorConfig, TrafficSimulator

RESULTS = Path(__file__).resolve().parent / "results"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIXES = {"clean": 0.0, "typical": 0.02, "all-pii": 1.0}
TARGET = 50_000


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _loadavg() -> str | None:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


def _events(n: int, pii_rate: float) -> list[dict]:
    config = SimulatorConfig(seed=11, start_ms=START_MS, events_per_hour=200_000,
                             pii_rate=pii_rate, embedding_dim=16)
    return list(TrafficSimulator(config).events(n=n))


def _time(decode, values: list[bytes], now_ms: int, repeats: int) -> dict:
    cpu, wall = [], []
    for _ in range(repeats):
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        for value in values:
            decode(value, None, now_ms)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    n = len(values)
    return {"records": n, "repeats": repeats,
            "per_core_rps_median": round(n / statistics.median(cpu)),
            "per_core_rps_best": round(n / min(cpu)),
            "wall_rps_median": round(n / statistics.median(wall)),
            "us_per_record": round(statistics.median(cpu) / n * 1e6, 2)}


def run(n: int, repeats: int) -> list[dict]:
    limits = ValidationLimits(embedding_dim=16)
    registry = make_registry("mock://bench-decode")
    encoders = {"avro": InteractionEncoder(registry, "bench", "avro", limits=limits),
                "json": InteractionEncoder(None, "bench", "json", limits=limits)}
    rows = []
    for mix, rate in MIXES.items():
        events = _events(n, rate)
        now_ms = events[-1]["event_time"]
        for encoding, encode in encoders.items():
            values = [encode(e) for e in events]
            decoder = InteractionDecoder(registry, limits)
            redacted = sum(decoder.decode(v, None, now_ms)["pii_redactions"] > 0 for v in values)
            stats = _time(decoder.decode, values, now_ms, repeats)
            rows.append({"encoding": encoding, "text": mix, "pii_rate": rate,
                         "records_with_pii": redacted,
                         "mean_value_bytes": round(sum(map(len, values)) / len(values)),
                         **stats})
    ids = [(e["interaction_id"], e["event_time"]) for e in _events(n, 0.0)]
    dedup = Deduplicator(3_600_000)
    stats = _time(lambda pair, _key, _now: dedup.check(*pair), ids, 0, 1)
    rows.append({"encoding": "-", "text": "dedup check only", "pii_rate": None,
                 "records_with_pii": None, "mean_value_bytes": None, **stats})
    return rows


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _table(rows: list[dict]) -> str:
    head = ("| encoding | text | records with PII | value bytes | records/s/core (median) "
            "| best | wall records/s | us/record |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['encoding']} | {r['text']} | {_cell(r['records_with_pii'])} | "
                     f"{_cell(r['mean_value_bytes'])} | {r['per_core_rps_median']:,} | "
                     f"{r['per_core_rps_best']:,} | {r['wall_rps_median']:,} | "
                     f"{r['us_per_record']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k records, 3 repeats")
    parser.add_argument("--records", type=int, help="records per case (default 100k)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    n = args.records or (20_000 if args.quick else 100_000)
    repeats = 3 if args.quick else 5
    load = _loadavg()
    rows = run(n, repeats)
    meta = {
        "benchmark": "ingestion decode + validate + PII redaction",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {platform.machine()}, "
                   f"{len(__import__('os').sched_getaffinity(0))} cores visible",
        "load_average_start_end": [load, _loadavg()],
        "python": platform.python_version(),
        "fastavro": fastavro.__version__,
        "confluent_kafka": confluent_kafka.version(),
        "librdkafka": confluent_kafka.libversion()[0],
        "command": "python benchmarks/bench_decode.py" + (" --quick" if args.quick else "")
                   + (f" --records {args.records}" if args.records else ""),
        "target_per_core": TARGET,
    }
    table = _table(rows)
    print(table)
    decode_rows = [r for r in rows if r["encoding"] != "-"]
    worst = min(r["per_core_rps_median"] for r in decode_rows)
    typical = min(r["per_core_rps_median"] for r in decode_rows if r["text"] != "all-pii")
    summary = (f"Clean and typical traffic: >= {typical:,} records/s/core "
               f"({'meets' if typical >= TARGET else 'BELOW'} the {TARGET:,} target); "
               f"worst case (every query carries PII): {worst:,} records/s/core.")
    print("\n" + summary)
    if args.no_write:
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "decode.json").write_text(json.dumps({**meta, "results": rows}, indent=2) + "\n")
    md = [
        "## Ingestion decode rate",
        "",
        "`InteractionDecoder.decode` (wire-format detection, Avro resolution or JSON parse, "
        "validation gates, `query_text` PII redaction) on one core, over seeded simulator "
        "traffic (16-dim embeddings). Rate = records per CPU second of the process; "
        f"target >= {TARGET:,}/s per core.",
        "",
        f"- machine: {meta['machine']}; load average (1/5/15 min) at start "
        f"{load}, at end {meta['load_average_start_end'][1]} (shared machine)",
        f"- date: {meta['date']}",
        f"- python {meta['python']}, fastavro {meta['fastavro']}, "
        f"confluent-kafka {meta['confluent_kafka']} (librdkafka {meta['librdkafka']})",
        f"- command: `{meta['command']}`",
        f"- {n:,} records per case, median of {repeats} runs",
        "",
        table,
        "",
        summary,
        "",
    ]
    (RESULTS / "decode.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
