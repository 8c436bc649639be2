"""Recall and precision of the redaction on the corpus of realistic SDK log lines."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from simcore.redact import PiiKind, find_pii, redact_text
from tests.redact.corpus import KEEP_SLOTS, Line, build_corpus

MIN_RECALL = 0.995
MIN_PRESERVATION = 0.99


@pytest.fixture(scope="module")
def corpus() -> list[Line]:
    return build_corpus()


def _covered(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    pos = start
    for a, b in spans:
        if a <= pos < b:
            pos = b
    return pos >= end


def test_corpus_is_large_and_plants_every_kind(corpus: list[Line]) -> None:
    assert len(corpus) >= 300
    assert {p.kind for line in corpus for p in line.planted} == {k.value for k in PiiKind}
    assert {k.kind for line in corpus for k in line.keep} == set(KEEP_SLOTS)


def test_recall_and_look_alike_preservation(corpus: list[Line]) -> None:
    planted, removed, typed = Counter[str](), Counter[str](), 0
    kept_total, kept, lost = Counter[str](), Counter[str](), []
    for line in corpus:
        findings = find_pii(line.text)
        spans = sorted(f.span for f in findings)
        redacted = redact_text(line.text)
        for p in line.planted:
            planted[p.kind] += 1
            # Removed: its span is covered, and it appears nowhere else in the output (a
            # short value such as a 3-digit CVC may legitimately equal another number).
            elsewhere = len(p.value) >= 6 and re.search(
                rf"(?<!\w){re.escape(p.value)}(?!\w)", redacted
            )
            if _covered(spans, *p.span) and not elsewhere:
                removed[p.kind] += 1
            # Typed: the span that removed it carries the planted kind's placeholder.
            typed += any(f.kind.value == p.kind and f.span[0] <= p.span[0] for f in findings)
        for k in line.keep:
            kept_total[k.kind] += 1
            if any(a < k.span[1] and k.span[0] < b for a, b in spans):
                lost.append((k.kind, k.value, redacted))
            else:
                kept[k.kind] += 1

    recall = sum(removed.values()) / sum(planted.values())
    preservation = sum(kept.values()) / sum(kept_total.values())
    print(
        f"\nredaction corpus: {len(corpus)} lines, {sum(planted.values())} planted data,"
        f" {sum(kept_total.values())} look-alikes"
        f"\n  recall of planted data: {recall:.2%} (typed placeholders: "
        f"{typed / sum(planted.values()):.2%})"
        f"\n  look-alike preservation: {preservation:.2%}"
    )
    for kind in sorted(planted):
        print(f"  {kind:<8} {removed[kind]}/{planted[kind]}")
    missed = {k: planted[k] - removed[k] for k in planted if planted[k] != removed[k]}
    assert recall >= MIN_RECALL, missed
    assert preservation >= MIN_PRESERVATION, lost[:10]
