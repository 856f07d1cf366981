"""Fixed-size token windows with overlap: simple, predictable, ignores document structure."""
from __future__ import annotations

from core.rag.chunkers.base import Chunker, ChunkPiece, TokenOffsets


def windows(text: str, offsets: list[tuple[int, int]], size: int, overlap: int, base: int = 0,
            first_position: int = 0, heading: str = "") -> list[ChunkPiece]:
    """Token windows over `text` given its token character spans; chunk text is the original text slice."""
    out: list[ChunkPiece] = []
    n = len(offsets)
    if n == 0:
        return out
    step = max(1, size - overlap)
    i = 0
    while True:
        j = min(n, i + size)
        start, end = offsets[i][0], offsets[j - 1][1]
        out.append(ChunkPiece(text=text[start:end].strip(), position=first_position + len(out),
                              start=base + start, end=base + end, tokens=j - i, heading=heading))
        if j >= n:
            break
        i += step
    return [c for c in out if c.text]


class FixedTokenChunker(Chunker):
    name = "fixed"
    description = "Fixed-size windows of N embedder tokens, neighbours overlapping by M tokens."

    def chunk(self, text: str, tok: TokenOffsets) -> list[ChunkPiece]:
        return windows(text, tok.token_offsets(text), self.size, self.overlap)
