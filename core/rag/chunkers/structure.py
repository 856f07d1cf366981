"""Structure-aware chunking: sections by headings, then whole paragraphs packed up to the size.

A chunk never crosses a heading; each chunk carries its section heading (prepended to the chunk text, so the
embedding knows what the paragraph is about). A paragraph longer than the size is split into token windows
with the configured overlap.
"""
from __future__ import annotations

import re

from core.rag.chunkers.base import Chunker, ChunkPiece, TokenOffsets
from core.rag.chunkers.fixed import windows

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# Plain-text headings: an ALL-CAPS line (e.g. "1xxx  SIGN-IN AND ACCOUNTS") of at most 80 characters.
_CAPS = re.compile(r"^[^a-z]{3,80}$")


def _is_heading(par: str) -> str | None:
    first = par.split("\n", 1)[0].strip()
    m = _HEADING.match(first)
    if m:
        return m.group(2).strip()
    if "\n" not in par.strip() and _CAPS.match(first) and sum(ch.isalpha() for ch in first) >= 3:
        return first
    return None


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """Character spans of paragraphs (separated by blank lines)."""
    spans = []
    for m in re.finditer(r"(?:[^\n]|\n(?!\s*\n))+", text):
        g = m.group(0)
        if g.strip():
            lead = len(g) - len(g.lstrip())
            trail = len(g) - len(g.rstrip())
            spans.append((m.start() + lead, m.end() - trail))
    return spans


class StructureChunker(Chunker):
    name = "structure"
    description = ("Headings and paragraphs: packs whole paragraphs of one section up to N tokens; "
                   "splits only paragraphs longer than N (with M tokens overlap).")

    def chunk(self, text: str, tok: TokenOffsets) -> list[ChunkPiece]:
        out: list[ChunkPiece] = []
        heading = ""
        cur: list[tuple[int, int, int]] = []   # (start, end, tokens) of paragraphs in the current chunk
        cur_tokens = 0

        def head_prefix() -> tuple[str, int]:
            if not heading:
                return "", 0
            p = heading + "\n"
            return p, tok.count_tokens(heading)

        def flush():
            nonlocal cur, cur_tokens
            if cur:
                start, end = cur[0][0], cur[-1][1]
                body = text[start:end].strip()
                prefix, ptoks = head_prefix()
                if prefix and body.split("\n", 1)[0].strip() == heading:
                    prefix, ptoks = "", 0
                out.append(ChunkPiece(text=prefix + body, position=len(out), start=start, end=end,
                                      tokens=cur_tokens + ptoks, heading=heading))
            cur, cur_tokens = [], 0

        for start, end in _paragraphs(text):
            par = text[start:end]
            h = _is_heading(par)
            if h is not None:
                flush()
                heading = h
                continue
            _, ptoks = head_prefix()
            budget = max(16, self.size - ptoks)
            n = tok.count_tokens(par)
            if n > budget:
                flush()
                offs = tok.token_offsets(par)
                for piece in windows(par, offs, budget, min(self.overlap, budget - 1), base=start,
                                     first_position=len(out), heading=heading):
                    prefix = heading + "\n" if heading else ""
                    piece.text = prefix + piece.text
                    piece.tokens += ptoks
                    piece.position = len(out)
                    out.append(piece)
                continue
            if cur and cur_tokens + n > budget:
                flush()
            cur.append((start, end, n))
            cur_tokens += n
        flush()
        if not out and text.strip():   # a document made only of headings
            offs = tok.token_offsets(text)
            out = windows(text, offs, self.size, self.overlap)
        return out
