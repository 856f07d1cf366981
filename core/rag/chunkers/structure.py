"""Structure-aware chunking: sections by heading, then whole sentences packed up to the size.

- Headings are read by format (see segment.py): Markdown headings in Markdown, HTML and DOCX text; underlined or
  ALL-CAPS titles in plain text and PDF, never a `#` line there. A chunk never crosses a heading.
- A heading line stays in the text it heads: the first chunk of a section starts with it (after the path of
  its parent headings, if any); every later chunk of the section gets the heading path prepended, e.g.
  "Plans and limits > Surge" (so its embedding and its keywords know what the text is about).
- Chunks end at sentence or line ends. A paragraph that does not fit in what is left of a chunk starts the next
  chunk when the current one is at least half full; otherwise the chunk is filled sentence by sentence. Only a
  sentence longer than the size is split inside (at line ends, then clause punctuation, then spaces).
- Overlap: the last sentences of a chunk (up to `overlap` tokens) are repeated at the start of the next chunk
  of the same section, so a fact that spans a boundary is whole in one of them.
- No text is lost: chunk.text is the heading prefix (if any) + text[start:end], and the spans of a document's
  chunks cover every non-whitespace character of it (tests/rag/test_rag_chunk_coverage.py).
"""
from __future__ import annotations

from core.rag.chunkers.base import Chunker, ChunkPiece, TokenOffsets
from core.rag.chunkers.segment import Block, TokenCounter, Unit, blocks, units


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


def _paths(blks: list[Block]) -> dict[int, list[str]]:
    """Heading path (root title first) of every heading block. The document's opening heading is its title and
    stays the root of every path; other headings nest by level."""
    out: dict[int, list[str]] = {}
    root = blks[0].heading if blks and blks[0].kind == "heading" else ""
    stack: list[tuple[int, str]] = []
    for i, b in enumerate(blks):
        if b.kind != "heading":
            continue
        if i == 0:
            out[i] = [root]
            continue
        while stack and stack[-1][0] >= b.level:
            stack.pop()
        stack.append((b.level, b.heading))
        out[i] = ([root] if root else []) + [t for _, t in stack]
    return out


def pack(us: list[Unit], budget: int, overlap: int, heading_blocks: set[int] = frozenset(),
         lead_ins: set[int] = frozenset()) -> list[list[Unit]]:
    """Greedy packing of units into groups of at most `budget` tokens, paragraph ends preferred, the trailing
    units of a group (at most `overlap` tokens, never a heading) repeated at the start of the next group. A short
    lead-in paragraph (`lead_ins`: a term, a label, "has the form") that would end a group moves to the next one,
    with the text it introduces."""
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
                tail: list[Unit] = []
                j = len(cur)
                while j > 0 and cur[j - 1].block in lead_ins and cur[j - 1].block != u.block:
                    j -= 1
                moved = sum(v.tokens for v in cur[j:])
                if 0 < j < len(cur) and cur[j].block != cur[j - 1].block and moved + u.tokens <= budget:
                    cur, tail = cur[:j], cur[j:]
                groups.append(cur)
                carry: list[Unit] = []
                ct = 0
                room = budget - u.tokens - moved if tail else budget - u.tokens
                for v in reversed(cur[1:]):          # never the whole previous chunk
                    if v.block in heading_blocks or ct + v.tokens > min(overlap, room):
                        break
                    carry.insert(0, v)
                    ct += v.tokens
                cur, tokens = carry + tail, ct + (moved if tail else 0)
        cur.append(u)
        tokens += u.tokens
    if cur:
        groups.append(cur)
    return groups


class StructureChunker(Chunker):
    name = "structure"
    description = ("Sections by heading (by format: Markdown/HTML/DOCX headings, underlined or ALL-CAPS titles in "
                   "plain text), whole sentences packed up to N tokens, paragraph ends preferred; the last sentences "
                   "(up to M tokens) start the next chunk. No text is ever dropped.")

    # Prefix the heading path ("Plans and limits > Surge"), not just the nearest heading: measured better on both
    # question sets (bench/retrieval_quality.py), most for the dense half of hybrid on the Bash manual.
    breadcrumbs = True

    def _prefix(self, parts: list[str], tok) -> tuple[str, int]:
        """The context line for a chunk ("" if none or too long), and its tokens."""
        while parts:
            line = " > ".join(parts)
            n = tok.count_tokens(line)
            if 2 * n <= self.size:
                return line + "\n", n
            parts = parts[-1:] if len(parts) > 1 else []
        return "", 0

    def chunk(self, text: str, tok: TokenOffsets, kind: str | None = "markdown") -> list[ChunkPiece]:
        blks = blocks(text, kind)
        heading_blocks = {i for i, b in enumerate(blks) if b.kind == "heading"}
        lead_ins = {i for i, b in enumerate(blks) if b.kind == "para" and b.end - b.start <= 80
                    and "\n" not in text[b.start:b.end] and text[b.end - 1] not in ".!?"}
        paths = _paths(blks) if self.breadcrumbs else {}
        counter = TokenCounter(text, 0, len(text), tok)      # one tokenizer pass per document
        out: list[ChunkPiece] = []
        for heading, idx in _sections(blks):
            path = paths.get(max((i for i in idx if i in heading_blocks), default=-1), [heading] if heading else [])
            later, later_toks = self._prefix(path if self.breadcrumbs else ([heading] if heading else []), tok)
            # a group that starts with the section's (first) heading line: only the parents of that heading
            lead = paths.get(idx[0], [])[:-1]
            first, first_toks = self._prefix(lead, tok) if self.breadcrumbs else ("", 0)
            budget = self.size - max(later_toks, first_toks)
            us: list[Unit] = []
            for i in idx:
                us += units(text, blks[i], i, budget, tok, counter)
            for group in pack(us, budget, self.overlap, heading_blocks, lead_ins):
                start, end = group[0].start, group[-1].end
                pre, ptoks = (first, first_toks) if group[0].block in heading_blocks else (later, later_toks)
                out.append(ChunkPiece(text=pre + text[start:end], position=len(out), start=start, end=end,
                                      tokens=sum(u.tokens for u in group) + ptoks, heading=heading, prefix=pre))
        return out
