"""No text is ever lost: for every loader and chunker, the chunks of a document cover every non-whitespace
character of the loaded text; chunk boundaries fall at sentence or line ends; overlap carries whole sentences;
headings are read by format. Real tokenizer (the packaged MiniLM), real loaders, generated documents."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.rag.chunkers import get_chunker
from core.rag.chunkers.segment import blocks, sentence_spans
from core.rag.loaders import load_bytes, load_path

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "sample_docs" / "knowledge"
FIXTURES = ROOT / "tests" / "fixtures" / "bad"
LOADABLE_FIXTURES = ["huge_line.txt", "not_utf8.txt", "odd name (copy) #2.md"]
CONFIGS = [("structure", 200, 32), ("structure", 64, 16), ("structure", 48, 0), ("fixed", 200, 32), ("fixed", 64, 16)]


def uncovered(text: str, chunks) -> list[int]:
    """Positions of non-whitespace characters that no chunk span covers."""
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
    return [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]


def check_chunks(text: str, chunks, chunker: str, size: int, tok, kind: str = "markdown") -> None:
    assert chunks or not text.strip()
    headings = {b.heading for b in blocks(text, kind) if b.kind == "heading"}
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        body = text[c.start:c.end]
        assert 0 <= c.start < c.end <= len(text) and body.strip() == body
        # the chunk text IS the document text of its span, after a context line (structure: its heading path)
        assert c.text == c.prefix + body
        if c.prefix:
            assert chunker == "structure" and c.prefix.endswith("\n")
            assert set(c.prefix[:-1].split(" > ")) <= headings
        assert c.tokens <= size
    if chunker == "structure":
        assert max(tok.count_tokens(c.text) for c in chunks) <= size
    missing = uncovered(text, chunks)
    assert not missing, f"{len(missing)} characters lost, first at {missing[0]}: {text[missing[0]:missing[0] + 40]!r}"


def documents() -> list[Path]:
    return sorted(KNOWLEDGE.iterdir()) + [FIXTURES / n for n in LOADABLE_FIXTURES]


@pytest.mark.parametrize("chunker,size,overlap", CONFIGS)
@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_scenario_and_fixture_documents_lose_no_text(path, chunker, size, overlap, embedder):
    doc = load_path(path)
    text = doc.text[:200_000]                       # huge_line.txt: 2 MB on one line
    chunks = get_chunker(chunker, size, overlap).chunk(text, embedder, kind=doc.kind)
    check_chunks(text, chunks, chunker, size, embedder, doc.kind)


# ---- generated documents --------------------------------------------------------------------------------
_WORD = st.sampled_from("the shell reads commands from a file and runs them in order; dmesg sets the console "
                        "log level for kernel messages Tidewave books SMS credits €10 100% naïve café 3.14 e.g. "
                        "TW-4020 x_y /dev/null $HOME".split())


def _sentence(draw, lo=3, hi=18, end=True):
    words = draw(st.lists(_WORD, min_size=lo, max_size=hi))
    s = " ".join(words)
    s = s[:1].upper() + s[1:]
    return s + (draw(st.sampled_from([".", "!", "?", "...", '."'])) if end else "")


@st.composite
def paragraph_lines(draw) -> list[str]:
    kind = draw(st.sampled_from(["prose", "prompt", "caps", "long", "nopunct", "list", "code", "heading",
                                 "underlined", "table", "hash"]))
    if kind == "prose":
        return [" ".join(_sentence(draw) for _ in range(draw(st.integers(1, 6))))]
    if kind == "prompt":                                   # a root shell prompt opening a paragraph
        return [f"# dmesg -n{draw(st.integers(1, 8))}", _sentence(draw)]
    if kind == "caps":
        return [" ".join(draw(st.lists(st.sampled_from(["SIGN-IN", "AND", "ACCOUNTS", "1XXX", "PAYMENTS",
                                                         "WARNING"]), min_size=1, max_size=4)))]
    if kind == "long":                                     # one sentence far longer than any chunk
        return [_sentence(draw, 150, 400)]
    if kind == "nopunct":
        return [_sentence(draw, 5, 60, end=False) for _ in range(draw(st.integers(1, 4)))]
    if kind == "list":
        return [f"- {_sentence(draw, 2, 8)}" for _ in range(draw(st.integers(1, 6)))]
    if kind == "code":
        return ["```", *[f"  $ {_sentence(draw, 1, 6, end=False)}" for _ in range(draw(st.integers(1, 5)))], "```"]
    if kind == "heading":
        return ["#" * draw(st.integers(1, 6)) + " " + _sentence(draw, 1, 6, end=False)]
    if kind == "underlined":
        title = _sentence(draw, 1, 6, end=False)
        return [title, draw(st.sampled_from("=-*~")) * len(title)]
    if kind == "table":
        return [" | ".join(draw(st.lists(_WORD, min_size=2, max_size=4))) for _ in range(draw(st.integers(1, 4)))]
    return ["#" + _sentence(draw, 1, 5)]                   # '#tag' lines, comments


@st.composite
def generated_document(draw) -> str:
    paras = draw(st.lists(paragraph_lines(), min_size=1, max_size=14))
    seps = [draw(st.sampled_from(["\n\n", "\n", "\n\n\n", "\n  \n"])) for _ in paras]
    return "".join("\n".join(p) + s for p, s in zip(paras, seps))


def _as_html(doc: str) -> str:
    out = ["<html><body>"]
    for par in re.split(r"\n\s*\n", doc):
        if not par.strip():
            continue
        m = re.match(r"^(#{1,6}) (.*)$", par)
        if m and "\n" not in par:
            out.append(f"<h{len(m.group(1))}>{m.group(2)}</h{len(m.group(1))}>")
        elif par.startswith("```"):
            out.append("<pre>" + par.strip("`\n") + "</pre>")
        elif par.startswith("- "):
            out.append("<ul>" + "".join(f"<li>{ln[2:]}</li>" for ln in par.split("\n")) + "</ul>")
        else:
            out.append(f"<p>{par}</p>")
    return "\n".join(out + ["</body></html>"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=generated_document(), ext=st.sampled_from([".txt", ".md", ".html"]),
       config=st.sampled_from(CONFIGS))
def test_generated_documents_lose_no_text(doc, ext, config, embedder):
    data = (_as_html(doc) if ext == ".html" else doc).encode("utf-8")
    loaded = load_bytes(data, "generated" + ext, max_mb=5)
    chunker, size, overlap = config
    chunks = get_chunker(chunker, size, overlap).chunk(loaded.text, embedder, kind=loaded.kind)
    check_chunks(loaded.text, chunks, chunker, size, embedder, loaded.kind)
    if chunker == "structure":
        check_boundaries(loaded.text, loaded.kind, chunks, size, embedder)


def check_boundaries(text: str, kind: str, chunks, size: int, tok) -> None:
    """Every chunk ends where a sentence, a line or a heading ends -- unless that sentence alone is longer than
    a chunk (then it had to be split inside)."""
    spans = sentence_spans(text, kind)
    ends = {e for _, e in spans}
    for c in chunks:
        if c.end in ends:
            continue
        owner = next(((s, e) for s, e in spans if s < c.end < e), None)
        assert owner is not None, f"chunk end {c.end} is in no sentence"
        context = " > ".join(x for x in (c.prefix.strip(), c.heading) if x)     # what the budget left room for
        assert tok.count_tokens(text[owner[0]:owner[1]]) > size - tok.count_tokens(context), (
            f"chunk {c.position} ends mid-sentence: {text[max(0, c.end - 30):c.end + 30]!r}")


# ---- targeted properties --------------------------------------------------------------------------------
def test_overlap_carries_the_previous_sentence(embedder):
    sents = [f"Sentence number {i} says the booking page opens at nine." for i in range(40)]
    text = " ".join(sents)
    chunks = get_chunker("structure", 64, 16).chunk(text, embedder, kind="text")
    assert len(chunks) > 5
    for a, b in zip(chunks, chunks[1:]):
        last = text[a.start:a.end].rsplit(". ", 1)[-1]
        assert b.text.startswith(last), (a.text[-80:], b.text[:80])    # a whole sentence carried across
        assert b.start < a.end and a.end <= b.end
    no_overlap = get_chunker("structure", 64, 0).chunk(text, embedder, kind="text")
    for a, b in zip(no_overlap, no_overlap[1:]):
        assert b.start >= a.end
    for c in chunks + no_overlap:                                       # boundaries at sentence ends
        assert c.text.endswith(".") and c.text[0].isupper()


def test_hash_lines_are_headings_only_in_markdown(embedder):
    text = "Intro line.\n\n# dmesg -n3\nsets the console log level.\n\nWARNING\nDo not run it twice."
    txt = get_chunker("structure", 200, 32).chunk(text, embedder, kind="text")
    assert "# dmesg -n3\nsets the console log level." in txt[0].text          # one paragraph, nothing dropped
    assert not any(c.heading.startswith("dmesg") for c in txt)
    assert any(c.heading == "WARNING" and "WARNING\nDo not run it twice." in c.text for c in txt)
    md = get_chunker("structure", 200, 32).chunk(text, embedder, kind="markdown")
    sec = [c for c in md if c.heading == "dmesg -n3"]
    assert sec and sec[0].text.startswith("# dmesg -n3\nsets the console log level.")   # heading line kept
    for chunks in (txt, md):
        assert not uncovered(text, chunks)


def test_markdown_headings_by_the_rules(embedder):
    text = ("Title\n=====\n\nIntro.\n\n```\n# not a heading\n```\n\n#hashtag is text\n\n"
            "## Section ##\nBody of the section.\n\nSub\n---\nMore.")
    kinds = [(b.kind, b.heading) for b in blocks(text, "markdown")]
    assert kinds == [("heading", "Title"), ("para", ""), ("code", ""), ("para", ""), ("heading", "Section"),
                     ("para", ""), ("heading", "Sub"), ("para", "")]
    plain = [(b.kind, b.heading) for b in blocks(text, "text")]
    assert ("heading", "Title") in plain and ("heading", "Section") not in plain
    chunks = get_chunker("structure", 200, 0).chunk(text, embedder, kind="markdown")
    assert [c.heading for c in chunks] == ["Title", "Section", "Sub"]
    assert chunks[0].text.startswith("Title\n=====") and "# not a heading" in chunks[0].text


def test_a_heading_with_no_text_flows_into_the_next_section(embedder):
    text = "# Manual\n\n## Install\n\nRun make install as root."
    chunks = get_chunker("structure", 200, 0).chunk(text, embedder, kind="markdown")
    assert len(chunks) == 1 and chunks[0].heading == "Install"
    assert chunks[0].text == text


def test_long_sentence_is_split_only_because_it_is_too_long(embedder):
    long = "The " + " and ".join(f"option {i} changes the prompt" for i in range(80)) + "."
    text = f"A short sentence. {long} Another short one."
    chunks = get_chunker("structure", 64, 0).chunk(text, embedder, kind="text")
    assert all(c.tokens <= 64 for c in chunks) and len(chunks) > 3
    assert chunks[0].text == "A short sentence."      # the long sentence starts its own chunk
    assert chunks[-1].text.endswith("Another short one.")
    check_boundaries(text, "text", chunks, 64, embedder)


def test_docx_loader_loses_no_text(embedder, tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Rotas and holidays", 1)
    d.add_paragraph("# crontab -e\nopens the schedule. Staff holidays block booking slots.")
    d.add_paragraph("ALL STAFF")
    buf = io.BytesIO()
    d.save(buf)
    doc = load_bytes(buf.getvalue(), "rota.docx", max_mb=5)
    for chunker, size, overlap in CONFIGS:
        chunks = get_chunker(chunker, size, overlap).chunk(doc.text, embedder, kind=doc.kind)
        check_chunks(doc.text, chunks, chunker, size, embedder, doc.kind)
