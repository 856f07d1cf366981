"""Chunkers behind one interface (`Chunker.chunk(text, tokenizer) -> list[ChunkPiece]`) with a registry."""
from core.rag.chunkers.base import (DEFAULT_CHUNKER, DEFAULT_OVERLAP, DEFAULT_SIZE, Chunker, ChunkPiece,  # noqa: F401
                                    CHUNKERS, chunker_descriptions, chunker_names, get_chunker, register_chunker)
