"""Hybrid fusions: LanceDB's normalised linear combination (the default), weighted and plain RRF, the settings
that choose them, and the pipeline using them on a real index."""
from __future__ import annotations

import pytest

from core.errors import InvalidParams
from core.rag.retriever import FusionConfig, RetrievedChunk, fuse, fusion_config, linear, rrf


def _list(pairs):
    return [RetrievedChunk(id=i, text=i, source="s", position=0, score=s, rank=r + 1) for r, (i, s) in enumerate(pairs)]


VEC = _list([("a", 0.9), ("b", 0.5), ("c", 0.1)])          # cosine similarities
FTS = _list([("c", 10.0), ("a", 5.0), ("d", 1.0)])         # BM25 scores


def test_linear_is_lancedb_linear_combination_of_normalised_scores():
    # default normalisation, by each list's best: vector a 1, b 5/9, c 1/9; full-text c 1, a .5, d .1
    fused = linear({"vector": VEC, "fts": FTS}, k=4, weight=0.7)
    assert [c.id for c in fused] == ["a", "b", "c", "d"]
    assert [round(c.score, 4) for c in fused] == [0.85, round(0.7 * 5 / 9, 4), round(0.7 / 9 + 0.3, 4), 0.03]
    assert [c.id for c in linear({"vector": VEC, "fts": FTS}, k=4, weight=0.3)] == ["c", "a", "b", "d"]
    # LanceDB's own hybrid normalisation, min-max: vector a 1, b .5, c 0; full-text c 1, a 4/9, d 0;
    # a chunk missing from a list gets 0 there
    fused = linear({"vector": VEC, "fts": FTS}, k=4, weight=0.7, norm="minmax")
    assert [c.id for c in fused] == ["a", "b", "c", "d"]
    assert [round(c.score, 4) for c in fused] == [round(0.7 + 0.3 * 4 / 9, 4), 0.35, 0.3, 0.0]
    assert fused[0].ranks == {"vector": 1, "fts": 2} and fused[3].ranks == {"fts": 3}
    assert [c.rank for c in fused] == [1, 2, 3, 4]
    low = linear({"vector": VEC, "fts": FTS}, k=2, weight=0.2, norm="minmax")
    assert [c.id for c in low] == ["c", "a"]                   # full-text weighs more
    assert [c.id for c in linear({"vector": VEC, "fts": []}, k=3, weight=0.5)] == ["a", "b", "c"]
    assert linear({"vector": [], "fts": []}, k=3, weight=0.5) == []


def test_weighted_rrf_spans_both_lists_and_plain_rrf_is_kept():
    lists = {"vector": VEC, "fts": FTS}
    assert [c.id for c in fuse(lists, 3, FusionConfig("weighted-rrf", 1.0))] == ["a", "b", "c"]
    assert [c.id for c in fuse(lists, 2, FusionConfig("weighted-rrf", 0.0))][:2] == ["c", "a"]
    plain = fuse(lists, 4, FusionConfig("rrf"))
    assert [c.id for c in plain] == [c.id for c in rrf(lists, 4)]
    assert plain[0].score == pytest.approx(1 / 61 + 1 / 62)


def test_fusion_settings(monkeypatch, data_dir):
    cfg = fusion_config()
    assert cfg.method in ("linear", "rrf", "weighted-rrf") and 0 <= cfg.weight <= 1
    assert f"{cfg.weight:.2f}" in cfg.describe()
    monkeypatch.setenv("WORKBENCH_FUSION", "rrf")
    assert fusion_config().method == "rrf" and "plain RRF" in fusion_config().describe()
    monkeypatch.setenv("WORKBENCH_FUSION", "weighted-rrf")
    monkeypatch.setenv("WORKBENCH_FUSION_WEIGHT", "0.25")
    assert fusion_config().weight == 0.25
    with pytest.raises(InvalidParams, match="Unknown fusion"):
        fusion_config("magic")
    with pytest.raises(InvalidParams, match="between 0 and 1"):
        fusion_config(weight=1.5)
    with pytest.raises(InvalidParams, match="normalisation"):
        fusion_config(norm="softmax")
    monkeypatch.setenv("WORKBENCH_FUSION_NORM", "minmax")
    assert fusion_config("linear").norm == "minmax" and "min-max" in fusion_config("linear").describe()


def test_hybrid_uses_the_configured_fusion(kb):
    from core.rag import api
    q = "What does error TW-4020 mean?"
    lin = api.retrieve(q, "kb", k=5, fusion=FusionConfig("linear", 0.5))
    plain = api.retrieve(q, "kb", k=5, fusion=FusionConfig("rrf"))
    both = api.retrieve_modes(q, "kb", k=5)
    assert lin.table_version == plain.table_version == both["hybrid"].table_version
    assert all(0 <= c.score <= 1 for c in lin.chunks)
    assert all(c.score < 2 / 61 for c in plain.chunks)           # RRF scores
    assert lin.ids == api.retrieve(q, "kb", k=5, fusion=fusion_config("linear", 0.5)).ids
    pool = set(api.retrieve(q, "kb", mode="vector", k=20).ids) | set(api.retrieve(q, "kb", mode="fts", k=20).ids)
    assert set(lin.ids) <= pool                                  # hybrid re-ranks the two candidate lists
