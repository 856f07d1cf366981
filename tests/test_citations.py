"""core.citations: the one citation parser. The answers below were read differently by the Knowledge Base's
regex (core/rag/context.py) and Compare's two regexes (core/compare/scores.py: citation score and the
groundedness strip); now the Ask page, the citation score and groundedness agree."""
from __future__ import annotations

import numpy as np
import pytest

from core.citations import check_citations, citation_spans, cited_numbers, strip_citations
from core.compare import scores as S
from core.rag import context

SOURCES = ["team-and-roles.txt", "error-codes.txt", "plans-and-limits.md"]

# (answer, cited numbers) - comments say what the old paths read
DISAGREED = [
    ("Valid for 7 days [1; 3].", [1, 3]),      # KB: [1, 3]; Compare: no citation at all
    ("Valid for 7 days [ 2 ].", [2]),          # KB: [2]; Compare: no citation
    ("Released in [2024], see [1].", [1]),     # KB: [1]; Compare: [1] plus an invalid citation [2024]
    ("See [1,2] and [3].", [1, 2, 3]),         # both agreed: a control case
]


@pytest.mark.parametrize("answer, cited", DISAGREED)
def test_answers_the_old_regexes_disagreed_on(answer, cited):
    assert cited_numbers(answer) == cited
    cc = check_citations(answer, len(SOURCES))
    assert cc.cited == cited and cc.ok and cc.invalid == []
    # Compare's citation score reads the same numbers, with or without the old `check` argument
    for check in (None, check_citations):
        s = S.citations(answer, SOURCES, None, check)
        assert s.value == 1.0, s.reason
        assert s.reason.startswith(f"{len(cited)} valid / {len(cited)} citations")
    # groundedness strips exactly these markers
    assert "[" not in strip_citations(answer).replace("[2024]", "")


def test_invalid_and_repeated_citations():
    cc = check_citations("See [2][4] and [2, 5].", 3)
    assert cc.cited == [2, 4, 5] and cc.invalid == [4, 5] and cc.valid == [2] and not cc.ok
    assert any("[4], [5]" in p for p in cc.problems)
    s = S.citations("See [2][4] and [2, 5].", SOURCES)
    assert s.value == pytest.approx(1 / 3) and s.reason.startswith("1 valid / 3 citations")


def test_not_citations():
    for text in ["Footnote[^1].", "Steps [1-3].", "In [2024].", "Plain text.", "Array[]"]:
        assert cited_numbers(text) == [], text


def test_spans_locate_each_marker_and_the_old_import_path_is_the_same_parser():
    text = "A [1] b [2, 3]."
    assert citation_spans(text) == [(2, 5, [1]), (8, 14, [2, 3])]
    assert context.check_citations is check_citations and context.citation_spans is citation_spans


def test_groundedness_ignores_semicolon_citations():
    """The old strip regex left "[1; 2]" in the sentence; it now goes like any other marker."""
    def embed(texts):
        return np.asarray([[1.0, 0.0] if "credits" in t else [0.0, 1.0] for t in texts], dtype="float32")

    chunk = "An SMS top-up pack has 500 credits for 10 euros."
    with_marker = S.groundedness("The pack has 500 credits for 10 euros [1; 2].", [chunk], embed)
    plain = S.groundedness("The pack has 500 credits for 10 euros.", [chunk], embed)
    assert with_marker.value == plain.value == 1.0
