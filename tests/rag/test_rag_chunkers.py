"""Chunkers with the real embedder tokenizer: sizes, overlap, structure, registry."""
from __future__ import annotations

import time

from pathlib import Path

import pytest

from core.errors import InvalidParams
from core.rag.chunkers import chunker_names, get_chunker
from core.rag.loaders import load_path

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "sample_docs" / "knowledge"
BAD = ROOT / "tests" / "fixtures" / "bad"


def test_registry_has_both_chunkers():
    assert set(chunker_names()) >= {"fixed", "structure"}
    with pytest.raises(InvalidParams, match="Unknown chunker"):
        get_chunker("nope")


@pytest.mark.parametrize("size,overlap", [(10, 0), (100, 100), (100, -1)])
def test_bad_sizes(size, overlap):
    with pytest.raises(InvalidParams):
        get_chunker("fixed", size, overlap)


def test_size_capped_by_embedder_window(embedder):
    with pytest.raises(InvalidParams, match="window of 256"):
        get_chunker("fixed", 400, 0, max_tokens=embedder.max_tokens)


def test_fixed_windows_respect_size_and_overlap(embedder):
    text = load_path(KNOWLEDGE / "plans-and-limits.md").text
    chunks = get_chunker("fixed", 64, 16).chunk(text, embedder)
    assert len(chunks) > 5
    assert all(c.tokens <= 64 for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end                      # neighbours overlap
        assert text[b.start:a.end].strip()          # ... on real text
    assert chunks[-1].end >= len(text.rstrip()) - 1  # nothing lost at the end
    for c in chunks:
        assert embedder.count_tokens(c.text) <= 64 + 2


def test_structure_keeps_sections_apart(embedder):
    text = load_path(KNOWLEDGE / "plans-and-limits.md").text
    chunks = get_chunker("structure", 120, 16).chunk(text, embedder)
    assert all(embedder.count_tokens(c.text) <= 120 + 4 for c in chunks)
    surge = [c for c in chunks if c.heading == "Surge"]
    # every Surge chunk starts with its heading: the first with the heading line itself (kept in the text it
    # heads, after its parent's title), the later ones with the heading path prepended
    assert surge and "## Surge\n" in surge[0].text.split("\n\n", 1)[0] + "\n"
    assert all(c.text.split("\n", 1)[0] in ("## Surge", "Plans and limits", "Plans and limits > Surge") for c in surge)
    assert any("600 SMS credits" in c.text for c in surge)
    # no chunk mixes the Surge and the Harbor section
    assert not any("## Harbor" in c.text for c in surge)
    small = [c for c in get_chunker("structure", 40, 8).chunk(text, embedder) if c.heading == "Surge"]
    assert len(small) > 1 and small[0].text.startswith(("## Surge\n", "Plans and limits\n## Surge\n"))
    assert all(c.text.startswith("Plans and limits > Surge\n") for c in small[1:])


def test_huge_single_line_is_split_quickly(embedder):
    text = load_path(BAD / "huge_line.txt").text[:200_000]
    t0 = time.perf_counter()
    chunks = get_chunker("structure", 200, 32).chunk(text, embedder)
    assert time.perf_counter() - t0 < 30
    assert len(chunks) > 100 and max(c.tokens for c in chunks) <= 200
