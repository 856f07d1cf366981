"""Numbered context for the prompt. (The citation check of the answer lives in core.citations, re-exported here.)"""
from __future__ import annotations

from core.citations import CitationCheck, check_citations, citation_spans  # noqa: F401 - the one parser


def build_context(chunks) -> str:
    """'[1] (source.md) text\\n\\n[2] (...) text' numbered from 1 in retrieval order."""
    parts = []
    for i, c in enumerate(chunks, start=1):
        text = " ".join(str(c.text).split())
        parts.append(f"[{i}] ({c.source}) {text}")
    return "\n\n".join(parts)
