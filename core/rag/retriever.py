"""Retrieval: vector (cosine), full-text (BM25) and hybrid (a fusion of the two) over one pinned table version, so
a result can always be reproduced with the version it reports.

Hybrid fusions (`fuse`): "linear" -- LanceDB's LinearCombinationReranker over scores normalised by each list's
best (the default; vector weight and normalisation measured by bench/retrieval_quality.py); "rrf" -- plain
reciprocal rank fusion (LanceDB's RRFReranker formula); "weighted-rrf" -- RRF with a weight per list. The method,
weight and normalisation come from Settings (WORKBENCH_FUSION, WORKBENCH_FUSION_WEIGHT, WORKBENCH_FUSION_NORM) or
a call's arguments."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

from core.errors import InvalidParams
from core.rag import store
from core.rag.embedders import query_embedder

MODES = ("vector", "fts", "hybrid")
FUSIONS = ("linear", "rrf", "weighted-rrf")
RRF_K = 60
POOL = 20          # candidates each list contributes to the fusion
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rag-fts")


@dataclass
class RetrievedChunk:
    id: str
    text: str
    source: str
    position: int
    score: float
    rank: int                      # 1-based
    doc_id: str = ""
    heading: str = ""
    start: int = 0
    end: int = 0
    ranks: dict = field(default_factory=dict)   # hybrid: rank of this chunk in each underlying mode

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Retrieval:
    query: str
    collection: str
    mode: str
    chunks: list[RetrievedChunk]
    table_version: int
    table_name: str = ""
    embedder: str = ""
    seconds: float = 0.0

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.chunks]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ids"] = self.ids
        return d


def _rows_to_chunks(rows: list[dict], score_of) -> list[RetrievedChunk]:
    out = []
    for i, r in enumerate(rows):
        out.append(RetrievedChunk(id=r["id"], text=r["text"], source=r["source"], position=int(r["position"]),
                                  score=float(score_of(r)), rank=i + 1, doc_id=r["doc_id"], heading=r.get("heading") or "",
                                  start=int(r.get("start") or 0), end=int(r.get("end") or 0)))
    return out


def refine_factor(k: int) -> int:
    """Re-rank a fixed budget of ANN candidates exactly: ANN_REFINE x ANN_REFINE_FOR_K (20 x 5 = 100 rows, the
    setting whose recall bench/rag.py measured), however many rows are asked for. Hybrid asks for 20: factor 5
    re-ranks the same 100 candidates as factor 20 for k=5 (identical top 5), ~3.5 ms sooner at 100k rows than
    re-ranking 400."""
    return max(2, -(-store.ANN_REFINE * store.ANN_REFINE_FOR_K // max(1, k)))


def _vector(table, qvec, k: int) -> list[RetrievedChunk]:
    q = table.search(qvec, vector_column_name="vector").distance_type("cosine").select(store.CHUNK_COLUMNS).limit(k)
    if store.has_vector_index(table):
        q = q.nprobes(store.ANN_NPROBES)
        if store.ANN_REFINE:
            q = q.refine_factor(refine_factor(k))
    rows = q.to_arrow().to_pylist()
    return _rows_to_chunks(rows, lambda r: 1.0 - float(r["_distance"]))


def _fts(table, query: str, k: int) -> list[RetrievedChunk]:
    rows = table.search(query, query_type="fts", fts_columns="text").select(store.CHUNK_COLUMNS).limit(k).to_arrow().to_pylist()
    return _rows_to_chunks(rows, lambda r: float(r["_score"]))


def rrf(lists: dict[str, list[RetrievedChunk]], k: int, rrf_k: int = RRF_K,
        weights: dict[str, float] | None = None) -> list[RetrievedChunk]:
    """Reciprocal rank fusion: score = sum over modes of weight / (rrf_k + rank) (weights default to 1: plain
    RRF, the formula of LanceDB's RRFReranker)."""
    fused: dict[str, RetrievedChunk] = {}
    scores: dict[str, float] = {}
    for mode, chunks in lists.items():
        w = 1.0 if weights is None else float(weights.get(mode, 0.0))
        for c in chunks:
            if c.id not in fused:
                fused[c.id] = replace(c, ranks={})
            fused[c.id].ranks[mode] = c.rank
            scores[c.id] = scores.get(c.id, 0.0) + w / (rrf_k + c.rank)
    order = sorted(scores, key=lambda i: (-scores[i], min(fused[i].ranks.values())))[:k]
    out = []
    for r, cid in enumerate(order):
        c = fused[cid]
        c.score, c.rank = scores[cid], r + 1
        out.append(c)
    return out


def _minmax(values: list[float]) -> list[float]:
    """Min-max normalisation to [0, 1], as LanceDB's hybrid query does before its rerankers (all equal -> 0)."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    return [(v - lo) / (hi - lo) if hi > lo else 0.0 for v in values]


def _bymax(values: list[float]) -> list[float]:
    """Scale by the list's best score (the best -> 1, zero stays zero): keeps how far apart the scores are."""
    hi = max(values, default=0.0)
    return [v / hi if hi > 0 else 0.0 for v in values]


NORMS = {"max": _bymax, "minmax": _minmax}


def linear(lists: dict[str, list[RetrievedChunk]], k: int, weight: float, norm: str = "max") -> list[RetrievedChunk]:
    """Normalised linear combination: LanceDB's LinearCombinationReranker(weight) over the vector and full-text
    lists, each normalised first -- "max": divided by its best score (default, measured better); "minmax": the
    min-max scaling LanceDB's own hybrid query applies. A chunk only one list found gets 0 for the other:
    score = weight * vector + (1 - weight) * full-text, each in [0, 1]."""
    import pyarrow as pa
    from lancedb.rerankers import LinearCombinationReranker

    vec, fts = lists.get("vector", []), lists.get("fts", [])
    rowid: dict[str, int] = {}
    for c in vec + fts:
        rowid.setdefault(c.id, len(rowid))
    ranks: dict[str, dict] = {}
    for mode, chunks in (("vector", vec), ("fts", fts)):
        for c in chunks:
            ranks.setdefault(c.id, {})[mode] = c.rank
    scale = NORMS[norm]
    v_tbl = pa.table({"_rowid": pa.array([rowid[c.id] for c in vec], pa.uint64()),
                      # the reranker reads a distance and scores it 1 - d: hand it 1 - normalised similarity
                      "_distance": pa.array([1.0 - x for x in scale([c.score for c in vec])], pa.float32())})
    f_tbl = pa.table({"_rowid": pa.array([rowid[c.id] for c in fts], pa.uint64()),
                      "_score": pa.array(scale([c.score for c in fts]), pa.float32())})
    if not vec and not fts:
        return []
    res = LinearCombinationReranker(weight=float(weight), fill=1.0).rerank_hybrid("", v_tbl, f_tbl)
    by_row = {rowid[c.id]: c for c in vec + fts}
    scored = [(float(sc), by_row[int(r)]) for r, sc in zip(res["_rowid"].to_pylist(), res["_relevance_score"].to_pylist())]
    scored.sort(key=lambda t: (-t[0], min(ranks[t[1].id].values())))
    out = []
    for r, (sc, c) in enumerate(scored[:k]):
        c = replace(c, ranks=dict(ranks[c.id]), score=sc, rank=r + 1)
        out.append(c)
    return out


@dataclass
class FusionConfig:
    method: str = "linear"
    weight: float = 0.3          # weight of the vector list (linear, weighted-rrf)
    rrf_k: int = RRF_K
    norm: str = "max"            # linear: score normalisation, max | minmax

    def describe(self) -> str:
        if self.method == "rrf":
            return f"plain RRF (k={self.rrf_k})"
        if self.method == "weighted-rrf":
            return f"weighted RRF (k={self.rrf_k}), vector weight {self.weight:.2f}, full-text {1 - self.weight:.2f}"
        return (f"linear combination of {'max' if self.norm == 'max' else 'min-max'}-normalised scores "
                f"(LanceDB LinearCombinationReranker), vector weight {self.weight:.2f}, full-text {1 - self.weight:.2f}")


def fusion_config(method: str | None = None, weight: float | None = None, rrf_k: int | None = None,
                  norm: str | None = None) -> FusionConfig:
    """The hybrid fusion in force: explicit arguments, else Settings (WORKBENCH_FUSION, WORKBENCH_FUSION_WEIGHT)."""
    from core.config import get_settings

    s = get_settings()
    cfg = FusionConfig(method or s.fusion, float(s.fusion_weight if weight is None else weight),
                       int(s.rrf_k if rrf_k is None else rrf_k), norm or s.fusion_norm)
    if cfg.norm not in NORMS:
        raise InvalidParams(f"Unknown score normalisation {cfg.norm!r}: use {', '.join(NORMS)}.")
    if cfg.method not in FUSIONS:
        raise InvalidParams(f"Unknown fusion {cfg.method!r}: use {', '.join(FUSIONS)}.")
    if not 0.0 <= cfg.weight <= 1.0:
        raise InvalidParams(f"The fusion weight must be between 0 and 1 (got {cfg.weight!r}).")
    if cfg.rrf_k < 1:
        raise InvalidParams(f"The RRF constant must be at least 1 (got {cfg.rrf_k!r}).")
    return cfg


def fuse(lists: dict[str, list[RetrievedChunk]], k: int, fusion: FusionConfig | None = None) -> list[RetrievedChunk]:
    """The hybrid ranking of a vector list and a full-text list (each ranked 1..n)."""
    f = fusion or fusion_config()
    if f.method == "rrf":
        return rrf(lists, k, f.rrf_k)
    if f.method == "weighted-rrf":
        return rrf(lists, k, f.rrf_k, {"vector": f.weight, "fts": 1.0 - f.weight})
    return linear(lists, k, f.weight, f.norm)


def _check(query: str, mode: str, k: int) -> None:
    if not (query or "").strip():
        raise InvalidParams("The query is empty: type a question or some keywords.")
    if mode not in MODES:
        raise InvalidParams(f"Unknown retrieval mode {mode!r}: use vector, fts or hybrid.")
    if not isinstance(k, int) or not 1 <= k <= 100:
        raise InvalidParams(f"k must be between 1 and 100 (got {k!r}).")


@dataclass
class Candidates:
    """The raw vector and full-text lists of one query over one pinned snapshot (what hybrid fuses)."""
    lists: dict[str, list[RetrievedChunk]]
    table_version: int
    table_name: str
    embedder: str
    seconds: float


def candidates(query: str, collection: str, modes: tuple[str, ...] = MODES, k: int = 5,
               version: int | None = None) -> Candidates:
    """Vector and/or full-text lists for the modes asked (POOL deep when hybrid is among them, else k)."""
    t0 = time.perf_counter()
    cfg = store.get_active(collection)
    table, v = store.pinned_table(cfg.table_name, version)
    pool = max(k, POOL)
    raw: dict[str, list[RetrievedChunk]] = {}
    want_fts = "fts" in modes or "hybrid" in modes
    if table.count_rows() > 0:
        # Full-text search needs no embedding: run it on a worker thread while the query is embedded
        # (LanceDB and torch release the GIL).
        fut = _POOL.submit(_fts, table, query, pool if "hybrid" in modes else k) if want_fts else None
        try:
            if any(m in ("vector", "hybrid") for m in modes):
                qvec = query_embedder(cfg.embedder).encode([query])[0]
                raw["vector"] = _vector(table, qvec, pool if "hybrid" in modes else k)
        finally:
            if fut is not None:
                raw["fts"] = fut.result()
    return Candidates(raw, v, cfg.table_name, cfg.embedder, time.perf_counter() - t0)


def retrieve_modes(query: str, collection: str, modes: tuple[str, ...] = MODES, k: int = 5,
                   version: int | None = None, fusion: FusionConfig | None = None) -> dict[str, Retrieval]:
    """Several modes over the same snapshot with one query embedding (the playground's side-by-side view)."""
    for m in modes:
        _check(query, m, k)
    fusion = fusion or (fusion_config() if "hybrid" in modes else None)
    cand = candidates(query, collection, modes, k, version)
    out: dict[str, Retrieval] = {}
    for m in modes:
        t1 = time.perf_counter()
        if m == "hybrid":
            chunks = fuse({"vector": cand.lists.get("vector", []), "fts": cand.lists.get("fts", [])}, k, fusion)
        else:
            chunks = cand.lists.get(m, [])[:k]
        out[m] = Retrieval(query, collection, m, chunks, cand.table_version, cand.table_name, cand.embedder,
                           seconds=cand.seconds + time.perf_counter() - t1)
    return out


def retrieve(query: str, collection: str, mode: str = "hybrid", k: int = 5, version: int | None = None,
             fusion: FusionConfig | None = None) -> Retrieval:
    """Top-k chunks of `collection` for `query`; records the table version read."""
    _check(query, mode, k)
    return retrieve_modes(query, collection, (mode,), k, version, fusion)[mode]


def only_found_by(results: dict[str, Retrieval]) -> dict[str, set[str]]:
    """For each mode, the chunk ids it returned that no other mode returned."""
    ids = {m: set(r.ids) for m, r in results.items()}
    return {m: s - set().union(*(ids[o] for o in ids if o != m)) for m, s in ids.items()}
