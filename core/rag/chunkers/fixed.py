"""Fixed-size token windows with overlap: simple, predictable, ignores document structure."""
from __future__ import annotations

from core.rag.chunkers.base import Chunker, ChunkPiece, TokenOffsets


def windows(text: str, offsets: list[tuple[int, int]], size: int, overlap: int, base: int = 0,
            first_position: int = 0, heading: str = "") -> list[ChunkPiece]:
    """Token windows over `text` given its token character spans; chunk text is the original text slice.

    A window runs from its first token to the start of the token after its last one (the last window to the end
    of the text), so characters the tokenizer skips are never lost between windows."""
    out: list[ChunkPiece] = []
    n = len(offsets)
    if n == 0:
        return out
    step = max(1, size - overlap)
    i = 0
    while True:
        j = min(n, i + size)
        start = 0 if i == 0 else offsets[i][0]
        end = offsets[j][0] if j < n else len(text)
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        body = piece.strip()
        if body:
            out.append(ChunkPiece(text=body, position=first_position + len(out), start=base + start + lead,
                                  end=base + start + lead + len(body), tokens=j - i, heading=heading))
        if j >= n:
            break
        i += step
    return out


class FixedTokenChunker(Chunker):
    name = "fixed"
    description = "Fixed-size windows of N embedder tokens, neighbours overlapping by M tokens."

    def chunk(self, text: str, tok: TokenOffsets, kind: str | None = None) -> list[ChunkPiece]:
        return windows(text, tok.token_offsets(text), self.size, self.overlap)
