"""Retrieval modes, RRF, versions, context and citation checks on a real index."""
from __future__ import annotations

import pytest

from core.errors import InvalidParams
from core.rag import api
from core.rag.retriever import RetrievedChunk, rrf


def test_three_modes_find_the_right_document(kb):
    res = api.retrieve_modes("What does error TW-4020 mean?", "kb", k=5)
    assert set(res) == {"vector", "fts", "hybrid"}
    versions = {r.table_version for r in res.values()}
    assert len(versions) == 1                                   # one snapshot for all modes
    assert res["fts"].chunks[0].source == "error-codes.txt"
    assert any(c.source == "error-codes.txt" for c in res["hybrid"].chunks[:2])
    for r in res.values():
        assert [c.rank for c in r.chunks] == list(range(1, len(r.chunks) + 1))
        scores = [c.score for c in r.chunks]
        assert scores == sorted(scores, reverse=True)
    vec = res["vector"].chunks
    assert all(-1.0 <= c.score <= 1.0 for c in vec)
    only = api.only_found_by(res)
    for mode, ids in only.items():
        others = set().union(*(set(res[m].ids) for m in res if m != mode))
        assert ids <= set(res[mode].ids) and not ids & others


def test_hybrid_is_rrf_of_vector_and_fts():
    a = [RetrievedChunk(id=x, text=x, source="s", position=0, score=1, rank=i + 1) for i, x in enumerate("abc")]
    b = [RetrievedChunk(id=x, text=x, source="s", position=0, score=1, rank=i + 1) for i, x in enumerate("cad")]
    fused = rrf({"vector": a, "fts": b}, k=4)
    assert [c.id for c in fused] == ["a", "c", "b", "d"]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1].ranks == {"vector": 3, "fts": 1}


@pytest.mark.parametrize("kwargs,match", [({"query": " "}, "empty"), ({"mode": "magic"}, "Unknown retrieval mode"),
                                          ({"k": 0}, "k must be")])
def test_bad_retrieval_input(kb, kwargs, match):
    args = {"query": "plans", "collection": "kb", "mode": "hybrid", "k": 5, **kwargs}
    with pytest.raises(InvalidParams, match=match):
        api.retrieve(**args)


def test_pinned_version_and_unknown_version(kb):
    r = api.retrieve("Surge plan", "kb", k=3)
    again = api.retrieve("Surge plan", "kb", k=3, version=r.table_version)
    assert again.ids == r.ids
    with pytest.raises(InvalidParams, match="no version 99999"):
        api.retrieve("Surge plan", "kb", version=99999)


def test_build_context_numbers_chunks(kb):
    chunks = api.retrieve("SMS top-up pack", "kb", k=3).chunks
    ctx = api.build_context(chunks)
    for i, c in enumerate(chunks, start=1):
        assert f"[{i}] ({c.source}) " in ctx
    assert ctx.startswith("[1] (") and "[4]" not in ctx


@pytest.mark.parametrize("answer,n,cited,invalid,ok", [
    ("Surge has 600 credits [1].", 4, [1], [], True),
    ("See [2][3] and [1, 2].", 3, [2, 3, 1], [], True),
    ("It costs €10 [5].", 4, [5], [5], False),
    ("It costs €10.", 4, [], [], False),
    ("Array[0] and [0]", 4, [0], [0], False),
])
def test_check_citations(answer, n, cited, invalid, ok):
    c = api.check_citations(answer, n)
    assert (c.cited, c.invalid, c.ok, c.has_citations) == (cited, invalid, ok, bool(cited))
    if not ok:
        assert c.problems


def test_query_fast_path_gives_the_same_vectors_as_sentence_transformers(embedder):
    import numpy as np
    qs = ["How much does an SMS top-up pack cost?", "TW-4020", "x" * 3000]      # the last one is truncated
    assert embedder._fast is not None                                          # MiniLM: Transformer + mean pooling
    for q in qs:
        ref = embedder._model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
        assert np.abs(embedder.encode([q]) - ref).max() < 1e-5
    pair = embedder.encode(qs[:2])                                             # two texts of different lengths
    ref = embedder._model.encode(qs[:2], normalize_embeddings=True, convert_to_numpy=True)
    assert pair.shape == (2, 384) and np.abs(pair - ref).max() < 1e-5


def test_refine_budget_is_the_same_for_every_k():
    from core.rag import store
    from core.rag.retriever import refine_factor
    budget = store.ANN_REFINE * store.ANN_REFINE_FOR_K
    assert refine_factor(5) == store.ANN_REFINE
    for k in (1, 5, 10, 20, 50, 100):
        assert k * refine_factor(k) >= budget and refine_factor(k) >= 2


def test_describe_embedder_needs_no_model_load():
    from core.rag.embedders import describe
    info = describe()
    assert (info.name, info.dimension, info.max_tokens) == ("all-MiniLM-L6-v2", 384, 256)
