"""PII detector: precision and recall on the labelled corpus, plus pinned examples."""

from __future__ import annotations

import json
import re

import pytest

from schemas.pii import KINDS, find_pii, redact, redact_payload
from tests import pii_corpus


def _detect(text):
    return [(m.kind, m.start, m.end) for m in find_pii(text)]


@pytest.fixture(scope="module")
def corpus():
    return pii_corpus.generate(seed=2024, n=4000)


def test_corpus_has_every_kind_and_hard_negatives(corpus):
    kinds = {span.kind for sample in corpus for span in sample.spans}
    assert kinds == set(KINDS)
    assert sum(not s.spans for s in corpus) > 1000  # texts with hard negatives only


def test_precision_and_recall_at_least_95_percent(corpus):
    scores = pii_corpus.score(corpus, _detect)
    for kind, s in scores.items():
        assert s.tp + s.fn > 100 or kind == "ALL", kind
        assert s.precision >= 0.95, f"{kind} precision {s.precision:.4f} ({s.fp} false positives)"
        assert s.recall >= 0.95, f"{kind} recall {s.recall:.4f} ({s.fn} missed)"


def test_scoring_can_fail(corpus):
    """The scorer punishes a detector that misses everything or flags every number."""
    nothing = pii_corpus.score(corpus[:300], lambda text: [])
    assert nothing["ALL"].recall == 0.0
    greedy = pii_corpus.score(corpus[:300], lambda text: [
        (kind, m.start(), m.end()) for m in re.finditer(r"[\w@.+-]*\d[\w@.+ -]*", text)
        for kind in KINDS])
    assert greedy["ALL"].precision < 0.5


def test_corpus_is_seeded():
    a, b = pii_corpus.generate(seed=9, n=50), pii_corpus.generate(seed=9, n=50)
    assert [(s.text, s.spans) for s in a] == [(s.text, s.spans) for s in b]


@pytest.mark.parametrize("text, kinds", [
    ("mail JANE.Doe+hr@Example.co.uk now", ["EMAIL"]),
    ("call +44 20 7946 0958 or (415) 555-0132", ["PHONE", "PHONE"]),
    ("my SSN is 123-45-6789", ["NATIONAL_ID"]),
    ("ssn: 123456789", ["NATIONAL_ID"]),
    ("NI number QQ 12 34 56 C", []),  # QQ is not an issued NINO prefix
    ("NI number AB 12 34 56 C", ["NATIONAL_ID"]),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", ["IBAN"]),
    ("card 4111 1111 1111 1111 expires", ["CARD"]),
    ("amex 3782-822463-10005", ["CARD"]),
])
def test_known_positives(text, kinds):
    assert [m.kind for m in find_pii(text)] == kinds


@pytest.mark.parametrize("text", [
    "order 48213577 shipped on 2024-03-15 at 14:30",
    "Windows v10.0.19045 build 22631.3007",
    "card 4111 1111 1111 1112 (fails Luhn)",
    "IBAN GB83 WEST 1234 5698 7654 32 (bad check digits)",
    "amount EUR 12.500,00 and $1,234.56",
    "SSN 000-12-3456 and 666-12-3456 were never issued",
    "ticket INC0012345, PO-2024-004512, policy HR-08-239",
    "epoch 1700000000000 and ISBN 978-3-16-148410-0",
])
def test_hard_negatives(text):
    assert find_pii(text) == []


def test_redact_replaces_with_tags_and_counts():
    result = redact("a@b.io and a@b.io, card 4111111111111111")
    assert result.text == "[EMAIL] and [EMAIL], card [CARD]"
    assert result.counts_by_kind == {"EMAIL": 2, "CARD": 1}


def test_redact_payload_keeps_length_and_json_validity():
    payload = json.dumps({"query_text": "reach me at jane@example.com or 4111 1111 1111 1111",
                          "n": 1}).encode()
    redacted, counts = redact_payload(payload)
    assert len(redacted) == len(payload)
    assert counts == {"EMAIL": 1, "CARD": 1}
    assert b"jane" not in redacted and b"4111" not in redacted
    assert json.loads(redacted)["n"] == 1
