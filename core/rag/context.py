"""Numbered context for the prompt and the citation check of the answer."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

_CITE = re.compile(r"\[(\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*)\]")


def build_context(chunks) -> str:
    """'[1] (source.md) text\\n\\n[2] (...) text' numbered from 1 in retrieval order."""
    parts = []
    for i, c in enumerate(chunks, start=1):
        text = " ".join(str(c.text).split())
        parts.append(f"[{i}] ({c.source}) {text}")
    return "\n\n".join(parts)


@dataclass
class CitationCheck:
    cited: list[int] = field(default_factory=list)     # distinct cited numbers, in order of first appearance
    invalid: list[int] = field(default_factory=list)   # cited numbers outside 1..n_retrieved
    has_citations: bool = False
    ok: bool = False
    n_retrieved: int = 0

    @property
    def problems(self) -> list[str]:
        out = []
        if not self.has_citations:
            out.append("The answer cites no source: it may not be grounded in the retrieved chunks.")
        if self.invalid:
            out.append(f"The answer cites {', '.join(f'[{n}]' for n in self.invalid)}, but only "
                       f"{self.n_retrieved} chunk(s) were retrieved.")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["problems"] = self.problems
        return d


def citation_spans(answer: str) -> list[tuple[int, int, list[int]]]:
    """(start, end, numbers) of every citation marker like [2] or [1, 3]."""
    out = []
    for m in _CITE.finditer(answer or ""):
        nums = [int(x) for x in re.findall(r"\d+", m.group(1))]
        out.append((m.start(), m.end(), nums))
    return out


def check_citations(answer: str, n_retrieved: int) -> CitationCheck:
    cited: list[int] = []
    for _, _, nums in citation_spans(answer):
        for n in nums:
            if n not in cited:
                cited.append(n)
    invalid = [n for n in cited if not 1 <= n <= n_retrieved]
    has = bool(cited)
    return CitationCheck(cited=cited, invalid=invalid, has_citations=has, ok=has and not invalid,
                         n_retrieved=n_retrieved)
