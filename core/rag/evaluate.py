"""Retrieval evaluation: for questions with an evidence passage, where does the first chunk containing the
evidence rank? hit@1, hit@5 and MRR (over the top 10) per mode."""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core import scenario
from core.errors import DatasetError
from core.rag.retriever import MODES, retrieve_modes

EVAL_K = 10
_WORDS = re.compile(r"[a-z0-9€$£%]+(?:[.,:][0-9]+)*")


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def _with_evidence(questions, filename: str) -> list[dict]:
    out = [q.to_dict() for q in questions if q.evidence]
    if not out:
        raise DatasetError(f"{filename} has no question with an `evidence` passage to evaluate retrieval on.")
    return out


def load_questions(path: Path) -> list[dict]:
    """Questions with evidence from a question file (core.scenario's strict parser: a bad line is an error
    naming its line); questions without evidence are left out."""
    return _with_evidence(scenario.load_questions(path), Path(path).name)


def parse_questions(data: bytes | str, filename: str) -> list[dict]:
    """The same for an uploaded file's bytes."""
    return _with_evidence(scenario.parse_questions(data, filename), filename)


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


@dataclass
class ModeScore:
    mode: str
    hit_at_1: float = 0.0
    hit_at_5: float = 0.0
    mrr: float = 0.0
    mean_ms: float = 0.0


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
    sums = {m: {"h1": 0, "h5": 0, "rr": 0.0, "t": 0.0} for m in modes}
    details = []
    for i, q in enumerate(qs):
        res = retrieve_modes(q["question"], collection, modes, EVAL_K, version)
        row = {"id": q.get("id", str(i + 1)), "question": q["question"], "source": q.get("source")}
        for m in modes:
            rank = next((c.rank for c in res[m].chunks if is_hit(c, q["evidence"], q.get("source"))), 0)
            row[m] = rank
            s = sums[m]
            s["h1"] += rank == 1
            s["h5"] += 1 <= rank <= 5
            s["rr"] += 1.0 / rank if rank else 0.0
            s["t"] += res[m].seconds
        details.append(row)
        if progress:
            progress(i + 1, len(qs))
    n = len(qs)
    scores = {m: ModeScore(m, s["h1"] / n, s["h5"] / n, s["rr"] / n, 1000 * s["t"] / n) for m, s in sums.items()}
    return EvalReport(collection, version, cfg.table_name, n, scores, details, time.perf_counter() - t0,
                      index={"embedder": cfg.embedder, "chunker": cfg.chunker, "chunk_size": cfg.chunk_size,
                             "overlap": cfg.overlap})
