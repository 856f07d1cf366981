"""Retrieval evaluation: for questions with an evidence passage, where does the first chunk containing the
evidence rank? hit@1, hit@5 and MRR@10 (mean of 1/rank, 0 when not in the top 10) per mode.

Also the measurements behind the retrieval defaults (bench/retrieval_quality.py --record writes them to
core/rag/retrieval_quality.json): `measured_defaults()` and the chart of chunk size/overlap vs quality,
`chunk_sweep_figure()`, for the evaluation tab."""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core import scenario
from core.errors import DatasetError
from core.rag.retriever import MODES, fusion_config, retrieve_modes

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


def evidence_of(question: dict) -> list[tuple[str, str | None]]:
    """(evidence, source) pairs that answer a question: its `evidence`, plus any `alternatives`
    ([{"evidence", "source"}]) -- the same answer stated in another place of the documents."""
    out = [(str(question["evidence"]), question.get("source"))]
    for alt in question.get("alternatives") or []:
        if isinstance(alt, dict) and alt.get("evidence"):
            out.append((str(alt["evidence"]), alt.get("source")))
    return out


def rank_of(chunks, question: dict, k: int = EVAL_K) -> int:
    """1-based rank of the first of the top-k chunks that supports the question's evidence (or one of its
    alternatives); 0 when none does."""
    ev = evidence_of(question)
    return next((i + 1 for i, c in enumerate(list(chunks)[:k]) if any(is_hit(c, e, s) for e, s in ev)), 0)


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
            row[m] = rank_of(res[m].chunks, q)
            ranks[m].append(row[m])
            secs[m] += res[m].seconds
        details.append(row)
        if progress:
            progress(i + 1, len(qs))
    n = len(qs)
    scores = {m: ModeScore.from_ranks(m, ranks[m], 1000 * secs[m] / n) for m in modes}
    return EvalReport(collection, version, cfg.table_name, n, scores, details, time.perf_counter() - t0,
                      index={"embedder": cfg.embedder, "chunker": cfg.chunker, "chunk_size": cfg.chunk_size,
                             "overlap": cfg.overlap, "fusion": fusion_config().describe()})


# ---- the measurements behind the defaults (bench/retrieval_quality.py --record) ---------------------------
MEASURED = Path(__file__).with_name("retrieval_quality.json")


def measured_defaults() -> dict:
    """What bench/retrieval_quality.py last recorded: the defaults it measured ({chunker, chunk_size, overlap,
    fusion, fusion_weight, describe}), the main table per set, the fusion and chunk sweeps. {} if never recorded."""
    from core.fileio import read_json
    data = read_json(MEASURED, default={})
    return data if isinstance(data, dict) else {}


def chunk_sweep_frame(data: dict | None = None):
    """The chunk size/overlap sweep as a long DataFrame: set, size, overlap, setting, mode, metric, value."""
    import pandas as pd

    data = measured_defaults() if data is None else data
    rows = []
    for r in data.get("sweep", []):
        for mode in ("hybrid", "vector", "fts"):
            for metric in ("hit@1", "mrr@10"):
                if mode in r and metric in r[mode]:
                    rows.append({"set": r["set"], "size": r["size"], "overlap": r["overlap"],
                                 "setting": f"{r['size']}/{r['overlap']}", "mode": mode, "metric": metric,
                                 "value": r[mode][metric], "chunks": r.get("chunks")})
    return pd.DataFrame(rows, columns=["set", "size", "overlap", "setting", "mode", "metric", "value", "chunks"])


def chunk_sweep_figure(data: dict | None = None):
    """Plotly figure for the evaluation tab: hybrid hit@1 and MRR@10 against chunk size, one line per overlap,
    one column per question set; the chosen default is marked. None when nothing was recorded."""
    import plotly.express as px

    data = measured_defaults() if data is None else data
    df = chunk_sweep_frame(data)
    df = df[df["mode"] == "hybrid"]
    if df.empty:
        return None
    df = df.sort_values(["set", "overlap", "size"]).assign(overlap=lambda d: d["overlap"].astype(str))
    fig = px.line(df, x="size", y="value", color="overlap", line_dash="metric", facet_col="set", markers=True,
                  labels={"size": "chunk size (tokens)", "value": "score", "overlap": "overlap (tokens)"},
                  range_y=[0, 1], height=380,
                  title="Hybrid retrieval quality by chunk size and overlap (bench/retrieval_quality.py)")
    d = data.get("defaults") or {}
    if d.get("chunk_size"):
        fig.add_vline(x=d["chunk_size"], line_dash="dot", annotation_text=f"default {d['chunk_size']}/{d.get('overlap')}")
    return fig
