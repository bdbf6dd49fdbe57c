"""A seeded, labelled corpus for measuring the PII detector (``schemas.pii``).

Labels come from construction, not from the detector: each sentence is assembled
from filler text and generated entities, and the generator records where every
PII entity starts and ends. Checksums are computed here independently (own Luhn,
own ISO 7064 mod-97), so a positive is valid and a hard negative is invalid by
construction.

Hard negatives are the things HR chat is full of that look like PII to a naive
regex: order and ticket numbers, dates, times, amounts, version and build strings,
postcodes, employee numbers, card numbers failing Luhn, IBANs with wrong check
digits, never-issued SSNs.

Run ``python -m tests.pii_corpus`` to print precision and recall per kind.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

KINDS = ("EMAIL", "PHONE", "NATIONAL_ID", "IBAN", "CARD")


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int


@dataclass
class Sample:
    text: str
    spans: list[Span] = field(default_factory=list)


# -- independent checksums -------------------------------------------------------------
def luhn_digit(body: str) -> str:
    """Check digit appended to ``body`` so the whole number passes Luhn."""
    digits = [int(c) for c in body][::-1]
    total = sum(sum(divmod(d * 2, 10)) if i % 2 == 0 else d for i, d in enumerate(digits))
    return str((10 - total % 10) % 10)


def iban_check(country: str, bban: str) -> str:
    numeric = "".join(str(ord(c) - 55) if c.isalpha() else c for c in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


_BBAN = {  # country: (total length, BBAN shape: a letter, n digit, c alphanumeric)
    "DE": "nnnnnnnnnnnnnnnnnn", "GB": "aaaannnnnnnnnnnnnn", "FR": "nnnnnnnnnnnnnnnnnnnnnnn",
    "NL": "aaaannnnnnnnnn", "ES": "nnnnnnnnnnnnnnnnnnnn", "IT": "annnnnnnnnnnnnnnnnnnnnn",
    "BE": "nnnnnnnnnnnn", "CH": "nnnnnnnnnnnnnnnnn", "AT": "nnnnnnnnnnnnnnnn",
    "SE": "nnnnnnnnnnnnnnnnnnnn", "IE": "aaaannnnnnnnnnnnnn", "PL": "nnnnnnnnnnnnnnnnnnnnnnnn",
    "NO": "nnnnnnnnnnn", "PT": "nnnnnnnnnnnnnnnnnnnnn",
}


def _group(s: str, size: int = 4, sep: str = " ") -> str:
    return sep.join(s[i:i + size] for i in range(0, len(s), size))


def _digits(rng: random.Random, n: int, first: str = "") -> str:
    return first + "".join(rng.choice(string.digits) for _ in range(n - len(first)))


# -- positives -------------------------------------------------------------------------
_NAMES = ["anna", "ben", "chloe", "david", "elif", "farah", "goran", "hiro", "ines", "jamal",
          "kofi", "lena", "marta", "noor", "oscar", "priya"]
_SURNAMES = ["smith", "mueller", "dubois", "jansen", "tanaka", "kumar", "silva", "okafor",
             "nowak", "rossi", "berg", "o.neill"]
_DOMAINS = ["gmail.com", "outlook.com", "acme-corp.co.uk", "mail.globex.com", "proton.me",
            "web.de", "hr.example.org", "yahoo.fr", "company.io"]


def email(rng: random.Random) -> str:
    first, last = rng.choice(_NAMES), rng.choice(_SURNAMES)
    local = rng.choice([f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first[0]}{last}",
                        f"{first}+hr", f"{first}_{last}", f"{first.upper()}.{last.title()}"])
    return f"{local}@{rng.choice(_DOMAINS)}"


def phone(rng: random.Random) -> str:
    form = rng.randrange(14)
    if form == 10:
        return f"+33 (0)1 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}"
    if form == 11:
        return f"{rng.randint(201, 989)} {rng.randint(200, 999)} {_digits(rng, 4)}"
    if form == 12:
        return f"+91 {_digits(rng, 5, '9')} {_digits(rng, 5)}"
    if form == 13:
        return f"(020) {_digits(rng, 4, '7')} {_digits(rng, 4)}"
    if form == 0:
        return f"+44 7700 {_digits(rng, 6, '9')}"
    if form == 1:
        return f"+1 ({rng.randint(201, 989)}) {rng.randint(200, 999)}-{_digits(rng, 4)}"
    if form == 2:
        return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{_digits(rng, 4)}"
    if form == 3:
        sep = rng.choice("-.")
        return f"{rng.randint(201, 989)}{sep}{rng.randint(200, 999)}{sep}{_digits(rng, 4)}"
    if form == 4:
        return f"+49 30 {_digits(rng, 8)}"
    if form == 5:
        return f"020 {_digits(rng, 4, '7')} {_digits(rng, 4)}"
    if form == 6:
        return f"07{_digits(rng, 3)} {_digits(rng, 6)}"
    if form == 7:
        return "0" + str(rng.randint(1, 5)) + " " + " ".join(_digits(rng, 2) for _ in range(4))
    if form == 8:
        return f"0033 {rng.randint(1, 9)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} "\
               f"{_digits(rng, 2)}"
    return f"+31 6 {_digits(rng, 8)}"


def ssn(rng: random.Random) -> tuple[str, str]:
    """(formatted, bare digits) of a US SSN in the issued ranges."""
    area = rng.choice([a for a in range(1, 900) if a != 666])
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    sep = rng.choice("-- ")
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}", f"{area:03d}{group:02d}{serial:04d}"


def nino(rng: random.Random) -> str:
    first = rng.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
        first, second = "A", "B"
    d = _digits(rng, 6)
    suffix = rng.choice("ABCD")
    if rng.random() < 0.5:
        return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {suffix}"
    return f"{first}{second}{d}{suffix}"


def iban(rng: random.Random, valid: bool = True) -> str:
    country = rng.choice(sorted(_BBAN))
    bban = "".join(rng.choice(string.ascii_uppercase) if c == "a" else rng.choice(string.digits)
                   for c in _BBAN[country])
    check = iban_check(country, bban)
    while not valid and check == iban_check(country, bban):
        check = f"{rng.randint(2, 98):02d}"
    compact = country + check + bban
    text = _group(compact) if rng.random() < 0.6 else compact
    return text.lower() if rng.random() < 0.1 else text


_CARD_PREFIXES = [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                  ("6011", 16), ("65", 16), ("3530", 16), ("4", 19)]


def card(rng: random.Random, valid: bool = True) -> str:
    prefix, length = rng.choice(_CARD_PREFIXES)
    body = _digits(rng, length - 1, prefix)
    check = luhn_digit(body)
    if not valid:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    number = body + check
    style = rng.randrange(3)
    if length == 15 and style != 0:
        sep = " " if style == 1 else "-"
        return f"{number[:4]}{sep}{number[4:10]}{sep}{number[10:]}"
    if style == 1:
        return _group(number)
    if style == 2 and length == 16:
        return _group(number, sep="-")
    return number


# -- hard negatives (never PII by construction) ---------------------------------------------
def _negative(rng: random.Random) -> str:
    form = rng.randrange(24)
    if form == 16:
        return f"ISBN 978-{rng.randint(0, 9)}-{_digits(rng, 2)}-{_digits(rng, 6)}-" \
               f"{rng.randint(0, 9)}"
    if form == 17:
        return f"tracking number 1Z{_digits(rng, 3)}AA{_digits(rng, 10)}"
    if form == 18:
        return f"IP 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if form == 19:
        return f"{rng.randint(2015, 2020)}-{rng.randint(2021, 2026)}"
    if form == 20:
        return f"epoch {_digits(rng, 13, '17')}"
    if form == 21:
        return f"flight BA {_digits(rng, 4, '2')} on {rng.randint(1, 28)} May"
    if form == 22:
        return f"{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{_digits(rng, 4)}"
    if form == 23:
        hexd = "0123456789abcdef"
        return "id " + "-".join("".join(rng.choice(hexd) for _ in range(n))
                                for n in (8, 4, 4, 4, 12))
    if form == 0:
        return f"order #{_digits(rng, 8, '4')}"
    if form == 1:
        return f"ticket INC{_digits(rng, 7, '00')}"
    if form == 2:
        return f"PO-{rng.randint(2019, 2026)}-{_digits(rng, 6, '00')}"
    if form == 3:
        y, m, d = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
        return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{d:02d}.{m:02d}.{y}",
                           f"{y}{m:02d}{d:02d}"])
    if form == 4:
        return rng.choice([f"${rng.randint(1, 99)},{_digits(rng, 3)}.{_digits(rng, 2)}",
                           f"EUR {rng.randint(1, 99)}.{_digits(rng, 3)},{_digits(rng, 2)}",
                           f"{rng.randint(1, 9)} {_digits(rng, 3)} {_digits(rng, 3)} USD",
                           f"£{rng.randint(100, 99999)}.{_digits(rng, 2)}"])
    if form == 5:
        return rng.choice([f"v{rng.randint(1, 12)}.{rng.randint(0, 9)}.{_digits(rng, 5, '1')}",
                           f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}-rc1",
                           f"build {_digits(rng, 5, '2')}.{_digits(rng, 4)}"])
    if form == 6:
        return card(rng, valid=False)
    if form == 7:
        return iban(rng, valid=False)
    if form == 8:
        return f"{rng.choice(['000', '666'])}-{_digits(rng, 2, '1')}-{_digits(rng, 4, '1')}"
    if form == 9:
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    if form == 10:
        return f"ext {_digits(rng, 4, '2')}"
    if form == 11:
        return f"employee number E-{_digits(rng, 6, '1')}"
    if form == 12:
        return rng.choice(["SW1A 1AA", "EC2A 4BX", f"{_digits(rng, 5, '9')}",
                           f"D-{_digits(rng, 5, '1')}"])
    if form == 13:
        return f"{rng.randint(1, 40)} days"
    if form == 14:
        return f"cost centre {_digits(rng, 4, '1')}-{_digits(rng, 3)}"
    return f"policy HR-{rng.randint(1, 99):02d}-{rng.randint(100, 999)}"


# -- sentences ----------------------------------------------------------------------------
_POSITIVE_FRAMES: list[tuple[str, Callable[[random.Random], tuple[str, str]]]] = [
    ("EMAIL", lambda r: (email(r), "")),
    ("PHONE", lambda r: (phone(r), "")),
    ("NATIONAL_ID", lambda r: (ssn(r)[0], "")),
    ("NATIONAL_ID", lambda r: (ssn(r)[1], "ssn")),
    ("NATIONAL_ID", lambda r: (nino(r), "")),
    ("IBAN", lambda r: (iban(r), "")),
    ("CARD", lambda r: (card(r), "")),
]
_LEADS = {
    "EMAIL": ["You can reach me at {}", "my private email is {}", "send it to {} please",
              "cc {} on the ticket"],
    "PHONE": ["call me back on {}", "my mobile is {}", "phone {} after 5pm", "reach me at {}"],
    "NATIONAL_ID": ["my social security number is {}", "NI number {}", "SSN: {}",
                    "my national insurance no is {}"],
    "IBAN": ["please pay the refund to {}", "my new IBAN is {}", "IBAN: {}",
             "bank account {} for the salary"],
    "CARD": ["my corporate card {} was declined", "card number {}", "charged to {} twice",
             "the card ending is not the issue, full number {}"],
}
_SSN_LEADS = ["my SSN is {}", "SSN {}", "social security number: {}"]
_NEG_LEADS = ["about {}", "regarding {}", "see {}", "it says {}", "{} is what I got",
              "since {}", "reference {}", "why {}?"]
_FILLER = ["Hi,", "Hello team.", "Thanks!", "I need help with my payslip.", "Quick question:",
           "Can someone check this?", "This is urgent.", "Regards, Anna", "", "ok", "also,"]


def _positive(rng: random.Random) -> tuple[str, str]:
    kind, make = rng.choice(_POSITIVE_FRAMES)
    value, flavour = make(rng)
    lead = rng.choice(_SSN_LEADS if flavour == "ssn" else _LEADS[kind])
    return kind, lead.replace("{}", "\x00" + value + "\x00")


def _assemble(parts: Iterable[tuple[str | None, str]]) -> Sample:
    """Join (kind, text-with-\\x00-marked-entity) parts with spaces, recording spans."""
    text, spans = "", []
    for kind, part in parts:
        if not part:
            continue
        if text:
            text += " "
        if kind is None:
            text += part.replace("\x00", "")
            continue
        before, value, after = part.split("\x00")
        start = len(text) + len(before)
        spans.append(Span(kind, start, start + len(value)))
        text += before + value + after
    return Sample(text, spans)


def generate(seed: int = 2024, n: int = 4000) -> list[Sample]:
    """``n`` labelled samples: about 45% carry PII (1-3 entities), all carry hard negatives."""
    rng = random.Random(seed)
    samples = []
    for _ in range(n):
        parts: list[tuple[str | None, str]] = [(None, rng.choice(_FILLER))]
        entities = rng.choice([0, 0, 0, 1, 1, 2, 3]) if rng.random() < 0.65 else 0
        negatives = rng.randint(1, 3)
        pieces: list[tuple[str | None, str]] = [_positive(rng) for _ in range(entities)]
        pieces += [(None, rng.choice(_NEG_LEADS).replace("{}", _negative(rng)))
                   for _ in range(negatives)]
        rng.shuffle(pieces)
        parts += pieces
        if rng.random() < 0.5:
            parts.append((None, rng.choice(_FILLER)))
        sample = _assemble(parts)
        if rng.random() < 0.3:  # punctuation right after the last piece
            sample.text += rng.choice([".", ",", "!", ")", ";"])
        samples.append(sample)
    return samples


# -- scoring ------------------------------------------------------------------------------
@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        denominator = self.tp + self.fn
        return self.tp / denominator if denominator else 1.0


def score(samples: Iterable[Sample],
          detect: Callable[[str], Iterable[tuple[str, int, int]]]) -> dict[str, Score]:
    """Span-level scores per kind and ``"ALL"``.

    A labelled span is found when every alphanumeric or ``@`` character in it lies
    inside a detected span of the same kind (so ``(`` or spaces at the edges do not
    matter, but a partial redaction that leaves digits visible is a miss). A
    detected span is a false positive unless it overlaps a labelled span of its kind.
    """
    scores = {kind: Score() for kind in (*KINDS, "ALL")}
    for sample in samples:
        found = [(k, s, e) for k, s, e in detect(sample.text)]
        for span in sample.spans:
            covered = all(any(k == span.kind and s <= i < e for k, s, e in found)
                          for i in range(span.start, span.end)
                          if sample.text[i].isalnum() or sample.text[i] == "@")
            for key in (span.kind, "ALL"):
                if covered:
                    scores[key].tp += 1
                else:
                    scores[key].fn += 1
        for k, s, e in found:
            if not any(span.kind == k and s < span.end and span.start < e
                       for span in sample.spans):
                scores[k].fp += 1
                scores["ALL"].fp += 1
    return scores


def _detect(text: str) -> list[tuple[str, int, int]]:
    from schemas.pii import find_pii

    return [(m.kind, m.start, m.end) for m in find_pii(text)]


def main() -> None:
    samples = generate()
    result = score(samples, _detect)
    n_spans = sum(len(s.spans) for s in samples)
    print(f"corpus: {len(samples)} texts, {n_spans} PII spans (seed 2024)")
    print(f"{'kind':12s} {'tp':>5s} {'fp':>4s} {'fn':>4s} {'precision':>9s} {'recall':>7s}")
    for kind, s in result.items():
        print(f"{kind:12s} {s.tp:5d} {s.fp:4d} {s.fn:4d} {s.precision:9.4f} {s.recall:7.4f}")


if __name__ == "__main__":
    main()
