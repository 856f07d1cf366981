"""Text segmentation for the chunkers: format-aware blocks (headings, paragraphs, code) and the units inside them
(sentences, lines, then smaller pieces only for a sentence too long for one chunk).

Every span is a (start, end) character range of the text given; the blocks of a text cover every non-whitespace
character of it, and so do the units of a block. The chunkers' guarantee that no text is lost rests on this.

Headings depend on the format the loader read:
- markdown, html, docx (the HTML and DOCX loaders write their headings as Markdown `#` lines): ATX headings
  (`## Title`, outside fenced code) and setext headings (a one-line paragraph underlined with `===` or `---`).
- text, pdf: no Markdown headings (a line starting with `#` is a shell prompt or a comment). Plain-text titles only:
  a line underlined with a repeated `= - * ~ ^ . + _ #` character, or an ALL-CAPS first line of a paragraph.
A heading is a block of its own; the chunker keeps its line in the text it heads.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

MARKDOWN_KINDS = frozenset({"markdown", "html", "docx"})

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_UNDERLINE = re.compile(r"^\s*([=\-*~^.+_#])\1{2,}\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|[a-zA-Z][.)])\s")
# A sentence ends at . ! ? (or an ellipsis), optionally followed by closing quotes or brackets, then whitespace.
_SENT_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)")
_ABBREV = frozenset("e.g i.e vs cf mr mrs ms dr st no nos fig figs approx incl esp resp ca al sec ch vol".split())
_CLAUSE_END = re.compile(r"[,;:\u2014\u2013](?=\s)")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_SPACES = re.compile(r"\s+")
_DIGIT = re.compile(r"\d")


@dataclass
class Block:
    start: int
    end: int
    kind: str            # "heading" | "para" | "code"
    heading: str = ""    # the heading's text (kind == "heading")
    level: int = 0


@dataclass
class Unit:
    start: int
    end: int
    tokens: int
    block: int           # index of the block the unit belongs to
    cut: str = ""        # "" (sentence or line end) or how an over-long sentence was split: clause|word|token


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, without its newline."""
    out, pos = [], 0
    for ln in text.split("\n"):
        out.append((pos, pos + len(ln)))
        pos += len(ln) + 1
    return out


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_caps_title(line: str) -> bool:
    s = line.strip()
    if not 3 <= len(s) <= 80 or s[-1] in ".,;":
        return False
    # every word is upper case, or a code with digits ("1xxx  SIGN-IN AND ACCOUNTS", "CHAPTER 2")
    if any(w != w.upper() and not _DIGIT.search(w) for w in s.split()):
        return False
    return sum(ch.isupper() for ch in s) >= 3


def blocks(text: str, kind: str | None = "markdown") -> list[Block]:
    """Headings, paragraphs and code blocks of `text` read as format `kind` (a loader's Document.kind)."""
    md = (kind or "markdown") in MARKDOWN_KINDS
    out: list[Block] = []
    para: list[tuple[int, int]] = []      # lines of the paragraph being read
    fence: tuple[str, int, int] | None = None   # (fence chars, block start, last line end) inside fenced code

    def flush() -> None:
        if para:
            s, e = _trim(text, para[0][0], para[-1][1])
            if s < e:
                out.append(Block(s, e, "para"))
            para.clear()

    def heading(s: int, e: int, title: str, level: int) -> None:
        s, e = _trim(text, s, e)
        if s < e:
            out.append(Block(s, e, "heading", " ".join(title.split()), level))

    for ls, le in _lines(text):
        line = text[ls:le]
        if fence is not None:
            chars, fs, _ = fence
            m = _FENCE.match(line)
            if m and m.group(1)[0] == chars[0] and len(m.group(1)) >= len(chars) and not line[m.end():].strip():
                s, e = _trim(text, fs, le)
                out.append(Block(s, e, "code"))
                fence = None
            else:
                fence = (chars, fs, le)
            continue
        if not line.strip():
            flush()
            continue
        if md:
            m = _FENCE.match(line)
            if m:
                flush()
                fence = (m.group(1), ls, le)
                continue
            m = _ATX.match(line)
            if m:
                flush()
                heading(ls, le, m.group(2) or "", len(m.group(1)))
                continue
            m = _SETEXT.match(line)
            if m and len(para) == 1 and not _LIST_ITEM.match(text[para[0][0]:para[0][1]]):
                ps, pe = para.pop()
                heading(ps, le, text[ps:pe], 1 if m.group(1)[0] == "=" else 2)
                continue
        else:
            if _UNDERLINE.match(line):
                prev = text[para[0][0]:para[0][1]] if len(para) == 1 else ""
                if prev and any(ch.isalnum() for ch in prev) and len(line.strip()) >= 0.5 * len(prev.strip()):
                    ps = para.pop()[0]
                    heading(ps, le, prev, {"=": 1, "*": 1, "#": 1}.get(line.strip()[0], 2))
                    continue
                if not para and out and out[-1].kind == "heading" and text[out[-1].end:ls].count("\n") == 1:
                    out[-1].end = _trim(text, ls, le)[1]     # an ALL-CAPS title that is also underlined
                    continue
            elif not para and _is_caps_title(line):
                heading(ls, le, line, 1)
                continue
        para.append((ls, le))
    flush()
    if fence is not None:                       # an unclosed fence runs to the end of the text
        s, e = _trim(text, fence[1], fence[2])
        if s < e:
            out.append(Block(s, e, "code"))
    return out


def _sentence_cuts(text: str, start: int, end: int) -> list[int]:
    """Positions inside [start, end) where a sentence or a structural line ends."""
    cuts: set[int] = set()
    for m in _SENT_END.finditer(text, start, end):
        pos = m.end()
        nxt = pos
        while nxt < end and text[nxt].isspace():
            nxt += 1
        if nxt >= end or text[nxt].islower():
            continue                            # "e.g. the ...", "approx. five": not a sentence end
        if m.group(0) == ".":
            w = _WORD_BEFORE.search(text, max(start, m.start() - 12), m.start())
            if w and w.group(1).lower() in _ABBREV:
                continue
        cuts.add(pos)
    # line ends before a list item or a table row, or after a line ending with ':'
    lines = [(start + a, start + b) for a, b in _lines(text[start:end])]
    for (a, b), (c, d) in zip(lines, lines[1:]):
        nxt = text[c:d]
        if _LIST_ITEM.match(nxt) or nxt.lstrip().startswith("|") or text[a:b].rstrip().endswith(":"):
            cuts.add(b)
    return sorted(c for c in cuts if start < c < end)


def _split_at(text: str, start: int, end: int, cuts: list[int]) -> list[tuple[int, int]]:
    out, s = [], start
    for c in cuts + [end]:
        a, b = _trim(text, s, c)
        if a < b:
            out.append((a, b))
        s = c
    return out


def _line_cuts(text: str, start: int, end: int) -> list[int]:
    out, pos = [], text.find("\n", start, end)
    while pos != -1:
        out.append(pos)
        pos = text.find("\n", pos + 1, end)
    return out


def _clause_cuts(text: str, start: int, end: int) -> list[int]:
    return [m.end() for m in _CLAUSE_END.finditer(text, start, end)]


def _word_cuts(text: str, start: int, end: int) -> list[int]:
    return [m.start() for m in _SPACES.finditer(text, start, end)]


class TokenCounter:
    """Token counts of spans of one text from a single tokenizer pass (counts add up across whitespace cuts)."""

    def __init__(self, text: str, start: int, end: int, tok):
        self.starts = [start + a for a, _ in tok.token_offsets(text[start:end])]

    def count(self, s: int, e: int) -> int:
        return bisect_left(self.starts, e) - bisect_left(self.starts, s)

    def token_cuts(self, s: int, e: int, size: int) -> list[int]:
        """Cut positions every `size` tokens inside [s, e) (at token starts)."""
        i, j = bisect_left(self.starts, s), bisect_left(self.starts, e)
        return [self.starts[k] for k in range(i + size, j, size)]


_LEVELS = (("line", _line_cuts), ("clause", _clause_cuts), ("word", _word_cuts))


def _fit(text: str, s: int, e: int, budget: int, counter: TokenCounter, block: int, level: int = 0,
         cut: str = "") -> list[Unit]:
    """[s, e) as units of at most `budget` tokens: itself if it fits, else split at line ends, then clause
    punctuation, then spaces, and finally every `budget` tokens (a single enormous word)."""
    n = counter.count(s, e)
    if n <= budget:
        return [Unit(s, e, n, block, cut)]
    for li in range(level, len(_LEVELS)):
        name, finder = _LEVELS[li]
        parts = _split_at(text, s, e, finder(text, s, e))
        if len(parts) > 1:
            out: list[Unit] = []
            for a, b in parts:
                out += _fit(text, a, b, budget, counter, block, li + 1, cut or name)
            return _merge(out, budget)
    out = []
    for a, b in _split_at(text, s, e, counter.token_cuts(s, e, budget)):
        out.append(Unit(a, b, counter.count(a, b), block, "token"))
    return out


def _merge(units: list[Unit], budget: int) -> list[Unit]:
    """Join neighbouring small pieces of one over-long sentence back up to the budget."""
    out: list[Unit] = []
    for u in units:
        if out and out[-1].block == u.block and out[-1].tokens + u.tokens <= budget:
            prev = out[-1]
            out[-1] = Unit(prev.start, u.end, prev.tokens + u.tokens, u.block, prev.cut or u.cut)
        else:
            out.append(u)
    return out


def units(text: str, blk: Block, index: int, budget: int, tok, counter: TokenCounter | None = None) -> list[Unit]:
    """Sentences (and structural lines) of a block, each at most `budget` tokens; a code block's units are its
    lines; a heading is one unit. A sentence longer than `budget` comes back in pieces (`cut` says how).
    `counter`: token positions of the whole text, computed once per document (else the block is tokenized)."""
    counter = counter or TokenCounter(text, blk.start, blk.end, tok)
    if blk.kind == "heading":
        spans = [(blk.start, blk.end)]
    elif blk.kind == "code":
        spans = _split_at(text, blk.start, blk.end, _line_cuts(text, blk.start, blk.end))
    else:
        spans = _split_at(text, blk.start, blk.end, _sentence_cuts(text, blk.start, blk.end))
    out: list[Unit] = []
    for s, e in spans:
        out += _fit(text, s, e, budget, counter, index)
    return out


def sentence_spans(text: str, kind: str | None = "markdown") -> list[tuple[int, int]]:
    """Every sentence (or structural line, heading, code line) of `text`, as spans: the places a chunk may end."""
    out: list[tuple[int, int]] = []
    for b in blocks(text, kind):
        if b.kind == "heading":
            out.append((b.start, b.end))
        elif b.kind == "code":
            out += _split_at(text, b.start, b.end, _line_cuts(text, b.start, b.end))
        else:
            out += _split_at(text, b.start, b.end, _sentence_cuts(text, b.start, b.end))
    return out
