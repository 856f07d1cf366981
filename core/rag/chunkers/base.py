"""The chunker interface and its registry. Sizes are counted in tokens of the embedder's own tokenizer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from core.errors import InvalidParams, UnknownChunker
from core.registry import Registry


class TokenOffsets(Protocol):
    """What a chunker needs from the embedder: token character spans of a text, and a token count."""

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...

    def count_tokens(self, text: str) -> int: ...


@dataclass
class ChunkPiece:
    text: str
    position: int          # 0-based index of the chunk in its document
    start: int             # character span in the cleaned document text
    end: int
    tokens: int
    heading: str = ""      # nearest section heading (structure-aware chunker)
    prefix: str = ""       # context prepended to the document text: text == prefix + document[start:end]


class Chunker:
    """Split a cleaned document into chunks of at most `size` tokens, `overlap` tokens shared by neighbours."""

    name: str = ""
    description: str = ""

    def __init__(self, size: int, overlap: int):
        if not isinstance(size, int) or size < 16:
            raise InvalidParams(f"Chunk size must be at least 16 tokens (got {size!r}).")
        if not isinstance(overlap, int) or overlap < 0 or overlap >= size:
            raise InvalidParams(f"Chunk overlap must be between 0 and size-1 = {size - 1} tokens (got {overlap!r}).")
        self.size, self.overlap = size, overlap

    def chunk(self, text: str, tok: TokenOffsets, kind: str | None = "markdown") -> list[ChunkPiece]:
        """Chunks of a loaded document's text. `kind` is the loader's Document.kind (text, markdown, html, pdf,
        docx): it decides what counts as a heading. Taken together, the chunks cover every non-whitespace
        character of `text`."""
        raise NotImplementedError

    def settings(self) -> dict:
        return {"chunker": self.name, "chunk_size": self.size, "overlap": self.overlap}


DEFAULT_CHUNKER = "structure"
DEFAULT_SIZE = 200
DEFAULT_OVERLAP = 32

# The chunker registry: name -> "module:Class", imported on first use (core.registry).
CHUNKERS: Registry[type[Chunker]] = Registry("chunker", UnknownChunker)
CHUNKERS.register("fixed", "core.rag.chunkers.fixed:FixedTokenChunker")
CHUNKERS.register("structure", "core.rag.chunkers.structure:StructureChunker")


def register_chunker(cls: type[Chunker]) -> type[Chunker]:
    """Add a chunker class under its `name` (for plug-ins; the built-in ones are registered above)."""
    CHUNKERS.register(cls.name, cls)
    return cls


def chunker_names() -> list[str]:
    return CHUNKERS.names()


def chunker_descriptions() -> dict[str, str]:
    return {n: CHUNKERS.load(n).description for n in CHUNKERS.names()}


def get_chunker(name: str | None = None, size: int | None = None, overlap: int | None = None,
                max_tokens: int | None = None) -> Chunker:
    """A chunker by name. `max_tokens` (the embedder's window) caps the size: longer chunks would be cut."""
    cls = CHUNKERS.load(name or DEFAULT_CHUNKER)        # UnknownChunker listing the known names
    size = DEFAULT_SIZE if size is None else int(size)
    overlap = (DEFAULT_OVERLAP if size > DEFAULT_OVERLAP else 0) if overlap is None else int(overlap)
    if max_tokens and size > max_tokens:
        raise InvalidParams(f"Chunk size {size} is larger than the embedder's window of {max_tokens} tokens: "
                            f"the rest of each chunk would be ignored. Use at most {max_tokens}.")
    return cls(size, overlap)


# re-export for type hints
ChunkerFactory = Callable[[int, int], Chunker]
