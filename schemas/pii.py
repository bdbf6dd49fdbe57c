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
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS = ("EMAIL", "PHONE", "NATIONAL_ID", "IBAN", "CARD")
TAGS = {kind: f"[{kind}]" for kind in KINDS}

# Left/right context that must not touch a number (so "v10.0.19045" or "2024-03-15"
# never contribute digits): no word char, and no digit+separator run.
_L = r"(?<![\w+])(?<!\d[./-])"
_R = r"(?!\w|[./-]\d)"
_F = re.ASCII

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])", _F)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,36}", _F)
_CARD = re.compile(
    _L + r"(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?"  # 4-4-4-4(-3)
    r"|\d{4}([ -]?)\d{6}\2\d{4,5}"  # Amex / Diners 4-6-5, 4-6-4
    r"|\d{13,19})" + _R, _F)
_SSN = re.compile(_L + r"(\d{3})([- ])(\d{2})\2(\d{4})" + _R, _F)
_SSN_BARE = re.compile(
    r"(?i:\bssn\b|\bsocial security(?: number| no\.?| #)?|\bss#)[\s:#=-]{0,4}(?:is\s+)?"
    r"(?P<id>(?<!\d)\d{9})(?!\d)", _F)
_NINO = re.compile(
    r"(?<![\w])(?:[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]|[a-z]{2}\d{6}[a-d])(?![\w])", _F)
_PHONE_INTL = re.compile(
    r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,7}" + _R, _F)
_PHONE_NANP = re.compile(
    _L + r"(?:\(([2-9]\d{2})\) ?|([2-9]\d{2})[ .-])[2-9]\d{2}[ .-]\d{4}" + _R, _F)
_PHONE_TRUNK = re.compile(
    _L + r"(?:\(0\d{1,4}\)|0\d{1,4})(?:[ -]?\d{2,4}){1,5}" + _R, _F)
_DIGIT = re.compile(r"\d")
_HINT = re.compile(r"[\d@]")

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
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """US SSN ranges never issued: area 000, 666, 900-999; group 00; serial 0000."""
    return (area != "000" and area != "666" and area[0] != "9"
            and group != "00" and serial != "0000")


# -- detectors (each yields validated spans) ---------------------------------------
def _scan(pattern: re.Pattern[str], text: str, accept: Callable[[re.Match[str]], int | None]):
    """Search with retry one character later when a candidate fails validation, so a
    longer invalid run does not hide a valid one inside it. ``accept`` returns the
    end of the accepted span or None."""
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if m is None:
            return
        end = accept(m)
        if end is None:
            pos = m.start() + 1
        else:
            yield m.start(), end
            pos = end


def _emails(text: str):
    for m in _EMAIL.finditer(text):
        yield m.start(), m.end()


def _ibans(text: str):
    def accept(m: re.Match[str]) -> int | None:
        s = m.group(0)
        length = IBAN_LENGTHS.get(s[:2].upper())
        if length is None:
            return None
        chars, end = [], 0
        for i, ch in enumerate(s):
            if ch != " ":
                chars.append(ch)
                if len(chars) == length:
                    end = i + 1
                    break
        if end == 0 or not iban_ok("".join(chars).upper()):
            return None
        after = m.start() + end
        if after < len(text) and text[after].isalnum() and text[after].isascii():
            return None
        return after

    yield from _scan(_IBAN, text, accept)


def _cards(text: str):
    def accept(m: re.Match[str]) -> int | None:
        digits = "".join(_DIGIT.findall(m.group(0)))
        return m.end() if card_prefix_ok(digits) and luhn_ok(digits) else None

    yield from _scan(_CARD, text, accept)


def _national_ids(text: str):
    def ssn(m: re.Match[str]) -> int | None:
        return m.end() if ssn_ok(m.group(1), m.group(3), m.group(4)) else None

    def nino(m: re.Match[str]) -> int | None:
        s = m.group(0).replace(" ", "").upper()
        if s[0] in _NINO_BAD_FIRST or s[1] in _NINO_BAD_SECOND or s[:2] in _NINO_BAD_PREFIX:
            return None
        return m.end()

    yield from _scan(_SSN, text, ssn)
    for m in _SSN_BARE.finditer(text):
        d = m.group("id")
        if ssn_ok(d[:3], d[3:5], d[5:]):
            yield m.start("id"), m.end("id")
    yield from _scan(_NINO, text, nino)


def _phones(text: str):
    def intl(m: re.Match[str]) -> int | None:
        s = m.group(0)
        n = len(_DIGIT.findall(s)) - (2 if s.startswith("00") else 0)
        return m.end() if 8 <= n <= 15 else None

    def trunk(m: re.Match[str]) -> int | None:
        return m.end() if 10 <= len(_DIGIT.findall(m.group(0))) <= 12 else None

    yield from _scan(_PHONE_INTL, text, intl)
    yield from _scan(_PHONE_NANP, text, lambda m: m.end())
    yield from _scan(_PHONE_TRUNK, text, trunk)


# Priority: on overlap the earlier kind wins (checksummed kinds before looser ones).
_DETECTORS = (("EMAIL", _emails), ("IBAN", _ibans), ("CARD", _cards),
              ("NATIONAL_ID", _national_ids), ("PHONE", _phones))


def find_pii(text: str) -> list[PiiMatch]:
    """All non-overlapping PII spans in ``text``, in text order."""
    if not _HINT.search(text):  # every kind contains a digit or an "@": fast path
        return []
    taken: list[PiiMatch] = []
    for kind, detect in _DETECTORS:
        for start, end in detect(text):
            if all(end <= t.start or start >= t.end for t in taken):
                taken.append(PiiMatch(kind, start, end))
    taken.sort(key=lambda t: t.start)
    return taken


def _replace(text: str, matches: list[PiiMatch], keep_length: bool) -> RedactionResult:
    parts, counts, pos = [], {}, 0
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
