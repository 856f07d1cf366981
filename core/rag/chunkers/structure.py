"""Structure-aware chunking: sections by heading, then whole sentences packed up to the size.

- Headings are read by format (see segment.py): Markdown headings in Markdown, HTML and DOCX text; underlined or
  ALL-CAPS titles in plain text and PDF, never a `#` line there. A chunk never crosses a heading.
- A heading line stays in the text it heads: the first chunk of a section starts with it; every later chunk of
  the section gets the heading prepended (so its embedding knows what the text is about).
- Chunks end at sentence or line ends. A paragraph that does not fit in what is left of a chunk starts the next
  chunk when the current one is at least half full; otherwise the chunk is filled sentence by sentence. Only a
  sentence longer than the size is split inside (at line ends, then clause punctuation, then spaces).
- Overlap: the last sentences of a chunk (up to `overlap` tokens) are repeated at the start of the next chunk
  of the same section, so a fact that spans a boundary is whole in one of them.
- No text is lost: chunk.text is the heading prefix (if any) + text[start:end], and the spans of a document's
  chunks cover every non-whitespace character of it (tests/rag/test_rag_chunk_coverage.py).
"""
from __future__ import annotations

from core.rag.chunkers.base import Chunker, ChunkPiece, TokenOffsets, register_chunker
from core.rag.chunkers.segment import Block, Unit, blocks, units


def _sections(blks: list[Block]) -> list[tuple[str, list[int]]]:
    """(heading, block indices) per section; a heading with no text of its own flows into the next section."""
    raw: list[tuple[str, list[int]]] = []
    for i, b in enumerate(blks):
        if b.kind == "heading":
            raw.append((b.heading, [i]))
        elif raw:
            raw[-1][1].append(i)
        else:
            raw.append(("", [i]))
    out: list[tuple[str, list[int]]] = []
    pending: list[int] = []
    for heading, idx in raw:
        if len(idx) == 1 and blks[idx[0]].kind == "heading":
            pending += idx
            continue
        out.append((heading, pending + idx))
        pending = []
    if pending:
        out.append((blks[pending[-1]].heading, pending))
    return out


def pack(us: list[Unit], budget: int, overlap: int, heading_blocks: set[int] = frozenset()) -> list[list[Unit]]:
    """Greedy packing of units into groups of at most `budget` tokens, paragraph ends preferred, the trailing
    units of a group (at most `overlap` tokens, never a heading) repeated at the start of the next group."""
    par_tokens: dict[int, int] = {}
    for u in us:
        par_tokens[u.block] = par_tokens.get(u.block, 0) + u.tokens
    groups: list[list[Unit]] = []
    cur: list[Unit] = []
    tokens = 0
    for u in us:
        if cur:
            new_par = u.block != cur[-1].block
            full = tokens + u.tokens > budget
            prefer_break = (new_par and tokens + par_tokens[u.block] > budget and 2 * tokens >= budget)
            if full or prefer_break:
                groups.append(cur)
                carry: list[Unit] = []
                ct = 0
                for v in reversed(cur[1:]):          # never the whole previous chunk
                    if v.block in heading_blocks or ct + v.tokens > overlap or ct + v.tokens + u.tokens > budget:
                        break
                    carry.insert(0, v)
                    ct += v.tokens
                cur, tokens = carry, ct
        cur.append(u)
        tokens += u.tokens
    if cur:
        groups.append(cur)
    return groups


@register_chunker
class StructureChunker(Chunker):
    name = "structure"
    description = ("Sections by heading (by format: Markdown/HTML/DOCX headings, underlined or ALL-CAPS titles in "
                   "plain text), whole sentences packed up to N tokens, paragraph ends preferred; the last sentences "
                   "(up to M tokens) start the next chunk. No text is ever dropped.")

    def chunk(self, text: str, tok: TokenOffsets, kind: str | None = "markdown") -> list[ChunkPiece]:
        blks = blocks(text, kind)
        heading_blocks = {i for i, b in enumerate(blks) if b.kind == "heading"}
        out: list[ChunkPiece] = []
        for heading, idx in _sections(blks):
            ptoks = tok.count_tokens(heading) if heading else 0
            prefix = heading + "\n" if heading and 2 * ptoks <= self.size else ""
            budget = self.size - (ptoks if prefix else 0)
            us: list[Unit] = []
            for i in idx:
                us += units(text, blks[i], i, budget, tok)
            for group in pack(us, budget, self.overlap, heading_blocks):
                start, end = group[0].start, group[-1].end
                pre = "" if group[0].block in heading_blocks else prefix
                out.append(ChunkPiece(text=pre + text[start:end], position=len(out), start=start, end=end,
                                      tokens=sum(u.tokens for u in group) + (ptoks if pre else 0), heading=heading))
        return out
