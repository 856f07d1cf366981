"""Retrieval evaluation: for questions with an evidence passage, where does the first chunk containing the
evidence rank? hit@1, hit@5 and MRR@10 (mean of 1/rank, 0 when not in the top 10) per mode.

Also the measurements behind the retrieval defaults (bench/retrieval_quality.py --record writes them to
core/rag/retrieval_quality.json): `measured_defaults()` and the chart of chunk size/overlap vs quality,
`chunk_sweep_figure()`, for the evaluation tab."""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import DatasetError
from core.rag.retriever import MODES, retrieve_modes

EVAL_K = 10
_WORDS = re.compile(r"[a-z0-9€$£%]+(?:[.,:][0-9]+)*")


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def load_questions(path: Path) -> list[dict]:
    """Questions with evidence from a JSONL file ({id, question, evidence, source, ...}); others are skipped."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"Question file {path} does not exist.")
    out, problems = [], []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems.append((i, f"not valid JSON: {exc}"))
            continue
        if not isinstance(row, dict) or not str(row.get("question") or "").strip():
            problems.append((i, "needs a non-empty `question`"))
            continue
        if row.get("evidence"):
            out.append(row)
    if problems:
        raise DatasetError(f"{path.name}: {len(problems)} bad line(s); first at line {problems[0][0]}: {problems[0][1]}",
                           problems)
    if not out:
        raise DatasetError(f"{path.name} has no question with an `evidence` passage to evaluate retrieval on.")
    return out


def is_hit(chunk, evidence: str, source: str | None = None, min_overlap: float = 0.6) -> bool:
    """A chunk supports the evidence when it comes from the expected file (if given) and contains most of the
    evidence's words (>= 60%; the evidence may be split across two chunks or reworded by the cleaner)."""
    if source:
        src = Path(str(source)).name.lower()
        if src != Path(str(chunk.source)).name.lower() and src != Path(str(chunk.doc_id)).name.lower():
            return False
    ev = _words(evidence)
    if not ev:
        return False
    have = set(_words(chunk.text))
    return sum(w in have for w in ev) / len(ev) >= min_overlap


def rank_of(chunks, evidence: str, source: str | None = None, k: int = EVAL_K) -> int:
    """1-based rank of the first of the top-k chunks that supports the evidence; 0 when none does."""
    return next((i + 1 for i, c in enumerate(list(chunks)[:k]) if is_hit(c, evidence, source)), 0)


@dataclass
class ModeScore:
    mode: str
    hit_at_1: float = 0.0
    hit_at_5: float = 0.0
    mrr: float = 0.0          # MRR@10
    mean_ms: float = 0.0

    @classmethod
    def from_ranks(cls, mode: str, ranks: list[int], mean_ms: float = 0.0) -> "ModeScore":
        n = max(1, len(ranks))
        return cls(mode, sum(r == 1 for r in ranks) / n, sum(1 <= r <= 5 for r in ranks) / n,
                   sum(1.0 / r for r in ranks if r) / n, mean_ms)


@dataclass
class EvalReport:
    collection: str
    table_version: int
    table_name: str
    n_questions: int
    modes: dict[str, ModeScore]
    details: list[dict] = field(default_factory=list)   # per question: id, question, rank per mode (0 = miss)
    seconds: float = 0.0
    index: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"collection": self.collection, "table_version": self.table_version, "table_name": self.table_name,
                "n_questions": self.n_questions, "seconds": self.seconds, "index": self.index,
                "modes": {m: asdict(s) for m, s in self.modes.items()}, "details": self.details}


def evaluate(collection: str, questions: list[dict] | Path, modes: tuple[str, ...] = MODES,
             version: int | None = None, progress=None) -> EvalReport:
    from core.rag import store

    t0 = time.perf_counter()
    qs = load_questions(questions) if isinstance(questions, (str, Path)) else list(questions)
    cfg = store.get_active(collection)
    _, version = store.pinned_table(cfg.table_name, version)
    ranks: dict[str, list[int]] = {m: [] for m in modes}
    secs = {m: 0.0 for m in modes}
    details = []
    for i, q in enumerate(qs):
        res = retrieve_modes(q["question"], collection, modes, EVAL_K, version)
        row = {"id": q.get("id", str(i + 1)), "question": q["question"], "source": q.get("source")}
        for m in modes:
            row[m] = rank_of(res[m].chunks, q["evidence"], q.get("source"))
            ranks[m].append(row[m])
            secs[m] += res[m].seconds
        details.append(row)
        if progress:
            progress(i + 1, len(qs))
    n = len(qs)
    scores = {m: ModeScore.from_ranks(m, ranks[m], 1000 * secs[m] / n) for m in modes}
    return EvalReport(collection, version, cfg.table_name, n, scores, details, time.perf_counter() - t0,
                      index={"embedder": cfg.embedder, "chunker": cfg.chunker, "chunk_size": cfg.chunk_size,
                             "overlap": cfg.overlap})
