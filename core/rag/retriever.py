"""Retrieval: vector (cosine), full-text (BM25) and hybrid (reciprocal rank fusion of the two) over one pinned
table version, so a result can always be reproduced with the version it reports."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

from core.errors import InvalidParams
from core.rag import store
from core.rag.embedders import get_embedder

MODES = ("vector", "fts", "hybrid")
RRF_K = 60
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


def rrf(lists: dict[str, list[RetrievedChunk]], k: int, rrf_k: int = RRF_K) -> list[RetrievedChunk]:
    """Reciprocal rank fusion: score = sum over modes of 1 / (rrf_k + rank)."""
    fused: dict[str, RetrievedChunk] = {}
    scores: dict[str, float] = {}
    for mode, chunks in lists.items():
        for c in chunks:
            if c.id not in fused:
                fused[c.id] = replace(c, ranks={})
            fused[c.id].ranks[mode] = c.rank
            scores[c.id] = scores.get(c.id, 0.0) + 1.0 / (rrf_k + c.rank)
    order = sorted(scores, key=lambda i: (-scores[i], min(fused[i].ranks.values())))[:k]
    out = []
    for r, cid in enumerate(order):
        c = fused[cid]
        c.score, c.rank = scores[cid], r + 1
        out.append(c)
    return out


def _check(query: str, mode: str, k: int) -> None:
    if not (query or "").strip():
        raise InvalidParams("The query is empty: type a question or some keywords.")
    if mode not in MODES:
        raise InvalidParams(f"Unknown retrieval mode {mode!r}: use vector, fts or hybrid.")
    if not isinstance(k, int) or not 1 <= k <= 100:
        raise InvalidParams(f"k must be between 1 and 100 (got {k!r}).")


def retrieve_modes(query: str, collection: str, modes: tuple[str, ...] = MODES, k: int = 5,
                   version: int | None = None) -> dict[str, Retrieval]:
    """Several modes over the same snapshot with one query embedding (the playground's side-by-side view)."""
    for m in modes:
        _check(query, m, k)
    t0 = time.perf_counter()
    cfg = store.get_active(collection)
    table, v = store.pinned_table(cfg.table_name, version)
    pool = max(k, 20)
    raw: dict[str, list[RetrievedChunk]] = {}
    want_fts = "fts" in modes or "hybrid" in modes
    if table.count_rows() > 0:
        # Full-text search needs no embedding: run it on a worker thread while the query is embedded
        # (LanceDB and torch release the GIL).
        fut = _POOL.submit(_fts, table, query, pool if "hybrid" in modes else k) if want_fts else None
        try:
            if any(m in ("vector", "hybrid") for m in modes):
                qvec = get_embedder(cfg.embedder).encode([query])[0]
                raw["vector"] = _vector(table, qvec, pool if "hybrid" in modes else k)
        finally:
            if fut is not None:
                raw["fts"] = fut.result()
    base = time.perf_counter() - t0
    out: dict[str, Retrieval] = {}
    for m in modes:
        t1 = time.perf_counter()
        if m == "hybrid":
            chunks = rrf({"vector": raw.get("vector", []), "fts": raw.get("fts", [])}, k)
        else:
            chunks = raw.get(m, [])[:k]
        out[m] = Retrieval(query, collection, m, chunks, v, cfg.table_name, cfg.embedder,
                           seconds=base + time.perf_counter() - t1)
    return out


def retrieve(query: str, collection: str, mode: str = "hybrid", k: int = 5, version: int | None = None) -> Retrieval:
    """Top-k chunks of `collection` for `query`; records the table version read."""
    _check(query, mode, k)
    return retrieve_modes(query, collection, (mode,), k, version)[mode]


def only_found_by(results: dict[str, Retrieval]) -> dict[str, set[str]]:
    """For each mode, the chunk ids it returned that no other mode returned."""
    ids = {m: set(r.ids) for m, r in results.items()}
    return {m: s - set().union(*(ids[o] for o in ids if o != m)) for m, s in ids.items()}
