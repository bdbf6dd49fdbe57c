"""PII redaction for chatbot query text and for raw dead-letter payloads.

Employees paste e-mail addresses, phone numbers, national ids, bank and card numbers
into HR chat. Nothing downstream of the decoder may see them, so the decoder redacts
``query_text`` and the dead-letter builder redacts whole raw payloads. Detection is
pattern + checksum (Luhn for cards, ISO 7064 mod-97 for IBANs, the SSA's invalid
ranges for US SSNs, HMRC's prefix rules for UK NI numbers): the checksums are what
keep order numbers, dates, amounts and version strings from being redacted.

Covered formats (see docs/ingestion.md for measured precision and recall):

* ``EMAIL``: ``local@domain.tld``;
* ``PHONE``: international ``+CC ...`` / ``00CC ...`` (8-15 digits), North American
  ``(415) 555-0132`` / ``415-555-0132`` / ``415.555.0132``, national numbers with a
  trunk ``0`` (UK, DE, FR, NL, ...: 10-12 digits, grouped or not);
* ``NATIONAL_ID``: US SSN ``123-45-6789`` / ``123 45 6789`` (valid ranges only), a bare
  9-digit SSN right after "SSN" / "social security", UK NI ``AB 12 34 56 C``;
* ``IBAN``: any country in the IBAN registry, compact or grouped by four;
* ``CARD``: 13-19 digits with a known issuer prefix, compact or grouped, Luhn-valid.

Context rules keep parts of longer numbers from matching on their own: a candidate may
not continue a digit run ("5188 0973 2214 6288" inside an invalid IBAN), a dotted or
dashed number ("v10.0.19045", "15:54") or an id prefix ("HR-08-239"), and a phone
number may not sit inside an IBAN-shaped run. Known misses: numbers glued to words
("call02079460958"), national numbers without a trunk ``0`` outside North America,
and national ids other than US SSNs and UK NI numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS = ("EMAIL", "PHONE", "NATIONAL_ID", "IBAN", "CARD")
TAGS = {kind: f"[{kind}]" for kind in KINDS}

# Left/right context that must not touch a number (so "v10.0.19045", "2024-03-15" or
# "15:54" never contribute digits, and the tail of a longer digit run such as an
# invalid IBAN's "... 5063 5742 2495 1335" is not read as a card or phone on its own):
# no word char, no digit+separator run and no "letters-" id prefix ("HR-08-...") on the left.
_L = r"(?<![\w+])(?<!\d[ ./:-])(?<![A-Za-z][-/])"
_R = r"(?!\w|[./:-]\d)"
_F = re.ASCII
# Each pattern opens with a lookahead on its first character: it lets the regex engine
# skip impossible start positions before evaluating the lookbehinds (about 2x faster).

_EMAIL = re.compile(
    r"(?=[A-Za-z0-9])(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])", _F)
# Compact, or grouped by four after the country and check digits (as printed).
_IBAN = re.compile(
    r"(?=[A-Za-z]{2}\d)(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,8}"
    r"(?: ?[A-Za-z0-9]{1,3})?", _F)
_CARD = re.compile(
    r"(?=\d)" + _L + r"(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?"  # 4-4-4-4(-3)
    r"|\d{4}([ -]?)\d{6}\2\d{4,5}"  # Amex / Diners 4-6-5, 4-6-4
    r"|\d{13,19})" + _R, _F)
_SSN = re.compile(r"(?=\d)" + _L + r"(\d{3})([- ])(\d{2})\2(\d{4})" + _R, _F)
_SSN_BARE = re.compile(
    r"(?i:\bssn\b|\bsocial security(?: number| no\.?| #)?|\bss#)[\s:#=-]{0,4}(?:is\s+)?"
    r"(?P<id>(?<!\d)\d{9})(?!\d)", _F)
_NINO = re.compile(
    r"(?=[A-Za-z]{2})(?<![\w])(?:[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]|[a-z]{2}\d{6}[a-d])"
    r"(?![\w])", _F)
_PHONE_INTL = re.compile(
    r"(?=[+0])" + _L + r"(?:\+|00)[1-9]\d{0,2}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,7}" + _R, _F)
_PHONE_NANP = re.compile(
    r"(?=[(2-9])" + _L + r"(?:\(([2-9]\d{2})\) ?|([2-9]\d{2})[ .-])[2-9]\d{2}[ .-]\d{4}" + _R, _F)
_PHONE_TRUNK = re.compile(
    r"(?=[(0])" + _L + r"(?:\(0[1-9]\d{0,3}\)|0[1-9]\d{0,3})(?:[ -]?\d{2,4}){1,5}" + _R, _F)
_DIGIT = re.compile(r"\d")
_IBAN_HEAD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4})+ ?$", _F)
# Six digits with at most four other characters between consecutive ones: every
# numeric kind has such a cluster (see _spans); most chat text has none.
_CLUSTER = re.compile(r"\d(?:\D{0,4}\d){5}")
_REACH = 12  # how far before its first digit cluster a numeric kind may start
_KEYWORD_REACH = 48  # "social security number is " before a bare SSN
_NON_DIGITS = bytes(c for c in range(256) if not 48 <= c <= 57)
_LETTER_VALUES = {ord(c): str(i + 10) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}

# ISO 13616 registry: country -> IBAN length.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
_NINO_BAD_FIRST = set("DFIQUV")
_NINO_BAD_SECOND = set("DFIOQUV")
_NINO_BAD_PREFIX = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One detected span ``text[start:end]`` of kind ``kind``."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class RedactionResult:
    """Redacted text and how many spans of each kind were replaced."""

    text: str
    counts_by_kind: dict[str, int] = field(default_factory=dict)


# -- checksums and rules -----------------------------------------------------------
def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check used by every payment card number."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_prefix_ok(digits: str) -> bool:
    """Issuer prefix and length of Visa, Mastercard, Amex, Discover, JCB, Diners,
    UnionPay and Maestro."""
    n = len(digits)
    p2, p4 = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if p2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    if p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649 or 3528 <= p4 <= 3589:
        return 16 <= n <= 19
    if p2 == 62:
        return 16 <= n <= 19
    return p2 in (50, 56, 57, 58, 63, 67) and 12 <= n <= 19  # Maestro


def iban_ok(iban: str) -> bool:
    """ISO 7064 mod-97-10 check of a compact, upper-case IBAN."""
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    moved = (iban[4:] + iban[:4]).translate(_LETTER_VALUES)
    return moved.isascii() and moved.isdigit() and int(moved) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """US SSN ranges never issued: area 000, 666, 900-999; group 00; serial 0000."""
    return (area != "000" and area != "666" and area[0] != "9"
            and group != "00" and serial != "0000")


# -- detectors (each yields validated spans) ---------------------------------------
def _scan(pattern: re.Pattern[str], text: str, accept: Callable[[re.Match[str]], int | None],
          pos: int, taken: list[PiiMatch]):
    """Search from ``pos``, retrying one character later when a candidate fails
    validation, so a longer invalid run does not hide a valid one inside it. ``accept``
    returns the end of the accepted span or None. Candidates starting inside a span
    already ``taken`` by a higher-priority kind are skipped without validation."""
    while True:
        m = pattern.search(text, pos)
        if m is None:
            return
        start = m.start()
        inside = [t.end for t in taken if t.start <= start < t.end]
        if inside:
            pos = max(inside)
            continue
        end = accept(m)
        if end is None:
            pos = m.start() + 1
        else:
            yield m.start(), end
            pos = end


def _emails(text: str, at: int):
    for m in _EMAIL.finditer(text, max(0, at - 64)):  # a local part has at most 64 chars
        yield m.start(), m.end()


def _ibans(text: str, pos: int, taken: list[PiiMatch]):
    def accept(m: re.Match[str]) -> int | None:
        s = m.group(0)
        length = IBAN_LENGTHS.get(s[:2].upper())
        if length is None:
            return None
        compact = s.replace(" ", "")
        if len(compact) < length or not iban_ok(compact[:length].upper()):
            return None
        end, seen = 0, 0  # where the length-th non-space character ends in ``s``
        for group in s.split(" "):
            if seen + len(group) >= length:
                end += length - seen
                break
            seen += len(group)
            end += len(group) + 1
        after = m.start() + end
        if after < len(text) and text[after].isalnum() and text[after].isascii():
            return None
        return after

    yield from _scan(_IBAN, text, accept, pos, taken)


def _cards(text: str, pos: int, taken: list[PiiMatch]):
    def valid(digits: str) -> bool:
        return card_prefix_ok(digits) and luhn_ok(digits)

    def accept(m: re.Match[str]) -> int | None:
        span = m.group(0)
        if valid("".join(_DIGIT.findall(span))):
            return m.end()
        # A grouped 4-4-4-4 followed by a short unrelated number ("... 3593 29 days"): only
        # when all five groups cannot be one card (else it is an invalid 19-digit card).
        sep = m.group(1)
        if sep and span.count(sep) == 4 and not card_prefix_ok(span.replace(sep, "")):
            head = span[:span.rfind(sep)]
            if valid(head.replace(sep, "")):
                return m.start() + len(head)
        return None

    yield from _scan(_CARD, text, accept, pos, taken)


def _ssns(text: str, pos: int, taken: list[PiiMatch]):
    def ssn(m: re.Match[str]) -> int | None:
        return m.end() if ssn_ok(m.group(1), m.group(3), m.group(4)) else None

    yield from _scan(_SSN, text, ssn, pos, taken)
    for m in _SSN_BARE.finditer(text, max(0, pos - _KEYWORD_REACH)):
        d = m.group("id")
        if ssn_ok(d[:3], d[3:5], d[5:]):
            yield m.start("id"), m.end("id")


def _ninos(text: str, pos: int, taken: list[PiiMatch]):
    def nino(m: re.Match[str]) -> int | None:
        s = m.group(0).replace(" ", "").upper()
        if s[0] in _NINO_BAD_FIRST or s[1] in _NINO_BAD_SECOND or s[:2] in _NINO_BAD_PREFIX:
            return None
        return m.end()

    yield from _scan(_NINO, text, nino, pos, taken)


def _inside_iban_shape(text: str, start: int) -> bool:
    """True when ``start`` continues an IBAN-shaped run ("IE85 YOGY 0042 ..."): the digits
    belong to an account number that failed its checksum, not to a phone number."""
    return _IBAN_HEAD.search(text, max(0, start - 40), start) is not None


def _longest_fit(span: str, fits: Callable[[str], bool]) -> int | None:
    """Length of the longest prefix of ``span`` that ``fits``, cutting only at spaces
    (a number followed by an unrelated one: "+44 7700 900123 2022-01-05")."""
    if fits(span):
        return len(span)
    for cut in range(len(span) - 1, 0, -1):
        if span[cut] == " " and span[cut - 1] != " " and fits(span[:cut]):
            return cut
    return None


def _phones(text: str, pos: int, n_digits: int, taken: list[PiiMatch]):
    def intl_fits(s: str) -> bool:
        n = len(_DIGIT.findall(s)) - (2 if s.startswith("00") else 0)
        return 8 <= n <= 15

    def intl(m: re.Match[str]) -> int | None:
        if m.group(0)[0] == "0" and _inside_iban_shape(text, m.start()):
            return None
        n = _longest_fit(m.group(0), intl_fits)
        return None if n is None else m.start() + n

    def trunk(m: re.Match[str]) -> int | None:
        if _inside_iban_shape(text, m.start()):
            return None
        n = _longest_fit(m.group(0), lambda s: 10 <= len(_DIGIT.findall(s)) <= 12)
        return None if n is None else m.start() + n

    yield from _scan(_PHONE_INTL, text, intl, pos, taken)
    if n_digits >= 10:
        yield from _scan(_PHONE_NANP, text, lambda m: m.end(), pos, taken)
        yield from _scan(_PHONE_TRUNK, text, trunk, pos, taken)


def _spans(text: str, taken: list[PiiMatch]):
    """(kind, start, end) candidates in priority order: on overlap the earlier kind wins
    (checksummed kinds before looser ones).

    Every kind contains an "@" (e-mail) or six digits with at most four other
    characters between consecutive ones (``_CLUSTER``), and no numeric kind starts
    more than ``_REACH`` characters before the first such cluster in the text (an IBAN
    such as "MT84 MALT 0110 ..." is the farthest), so the numeric detectors scan from
    there and skip kinds that need more digits than the text has.
    """
    at = text.find("@")
    if at >= 0:
        for start, end in _emails(text, at):
            yield "EMAIL", start, end
    cluster = _CLUSTER.search(text)
    if cluster is None:
        return
    pos = max(0, cluster.start() - _REACH)
    n_digits = len(text.encode("latin-1", "replace").translate(None, _NON_DIGITS))
    for start, end in _ibans(text, pos, taken):
        yield "IBAN", start, end
    if n_digits >= 13:
        for start, end in _cards(text, pos, taken):
            yield "CARD", start, end
    if n_digits >= 9:
        for start, end in _ssns(text, pos, taken):
            yield "NATIONAL_ID", start, end
    for start, end in _ninos(text, pos, taken):
        yield "NATIONAL_ID", start, end
    if n_digits >= 8:
        for start, end in _phones(text, pos, n_digits, taken):
            yield "PHONE", start, end


def find_pii(text: str) -> list[PiiMatch]:
    """All non-overlapping PII spans in ``text``, in text order."""
    taken: list[PiiMatch] = []
    for kind, start, end in _spans(text, taken):  # reads ``taken`` as it grows
        if all(end <= t.start or start >= t.end for t in taken):
            taken.append(PiiMatch(kind, start, end))
    taken.sort(key=lambda t: t.start)
    return taken


def _replace(text: str, matches: list[PiiMatch], keep_length: bool) -> RedactionResult:
    parts: list[str] = []
    counts: dict[str, int] = {}
    pos = 0
    for m in matches:
        tag = TAGS[m.kind]
        if keep_length:
            n = m.end - m.start
            tag = tag + "*" * (n - len(tag)) if n >= len(tag) else "*" * n
        parts.append(text[pos:m.start])
        parts.append(tag)
        pos = m.end
        counts[m.kind] = counts.get(m.kind, 0) + 1
    parts.append(text[pos:])
    return RedactionResult("".join(parts), counts)


def redact(text: str) -> RedactionResult:
    """Replace every detected span with its tag, e.g. ``[EMAIL]``."""
    matches = find_pii(text)
    if not matches:
        return RedactionResult(text, {})
    return _replace(text, matches, keep_length=False)


def redact_payload(data: bytes) -> tuple[bytes, dict[str, int]]:
    """Redact PII in every text-like run of an arbitrary (possibly malformed) payload.

    A rejected record cannot be parsed, so the whole payload is scanned as Latin-1
    (one character per byte) and each span is overwritten by its tag padded with
    ``*`` to the same length: JSON stays JSON and the byte length of every Avro
    string stays what its length prefix says.
    """
    text = data.decode("latin-1")
    matches = find_pii(text)
    if not matches:
        return data, {}
    result = _replace(text, matches, keep_length=True)
    return result.text.encode("latin-1"), result.counts_by_kind
