"""Citation markers in an answer: the one parser (Knowledge Base Ask, Compare scores, the page's links).

A citation is a bracket holding one to three-digit passage numbers separated by commas or semicolons, spaces
allowed: "[1]", "[1, 3]", "[2;4]", "[ 2 ]". Several markers in a row ("[1][3]") are several citations.
Not citations: years and other long numbers ("[2024]"), footnote carets ("[^1]"), ranges ("[1-3]"), link text.
`check_citations` then says which cited numbers point to a passage that was actually in the prompt.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

CITATION_RE = re.compile(r"\[(\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*)\]")
_NUM = re.compile(r"\d+")


def citation_spans(answer: str) -> list[tuple[int, int, list[int]]]:
    """(start, end, numbers) of every citation marker like [2] or [1, 3], in order."""
    return [(m.start(), m.end(), [int(x) for x in _NUM.findall(m.group(1))])
            for m in CITATION_RE.finditer(answer or "")]


def cited_numbers(answer: str) -> list[int]:
    """Distinct cited numbers in order of first appearance."""
    out: list[int] = []
    for _, _, nums in citation_spans(answer):
        for n in nums:
            if n not in out:
                out.append(n)
    return out


def strip_citations(answer: str) -> str:
    """The answer without its citation markers (for sentence-level scoring)."""
    return CITATION_RE.sub("", answer or "")


@dataclass
class CitationCheck:
    cited: list[int] = field(default_factory=list)     # distinct cited numbers, in order of first appearance
    invalid: list[int] = field(default_factory=list)   # cited numbers outside 1..n_retrieved
    has_citations: bool = False
    ok: bool = False
    n_retrieved: int = 0

    @property
    def valid(self) -> list[int]:
        return [n for n in self.cited if n not in self.invalid]

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


def check_citations(answer: str, n_retrieved: int) -> CitationCheck:
    """Which cited numbers are among the `n_retrieved` numbered passages of the prompt ([1]..[n])."""
    cited = cited_numbers(answer)
    invalid = [n for n in cited if not 1 <= n <= n_retrieved]
    has = bool(cited)
    return CitationCheck(cited=cited, invalid=invalid, has_citations=has, ok=has and not invalid,
                         n_retrieved=n_retrieved)


__all__ = ["CITATION_RE", "CitationCheck", "check_citations", "citation_spans", "cited_numbers", "strip_citations"]
