"""The ONNX Runtime embedder: exported locally from the packaged MiniLM (no download), the same tokens and chunks as
the torch backend, vectors at cosine >= 0.9999 (fp32) / >= 0.99 (int8) on every scenario chunk, retrieval metrics
within one question of torch, a query path that never imports torch, and indexes kept apart per backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelNotFound

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "sample_docs" / "knowledge"
QUESTIONS = ROOT / "sample_docs" / "eval" / "questions.jsonl"

pytestmark = pytest.mark.slow        # the first use exports the model (~10-40 s on 2 cores)


@pytest.fixture(scope="module")
def onnx_data(tmp_path_factory):
    """A data folder whose cache holds the fp32 and int8 exports (made once for the module)."""
    d = tmp_path_factory.mktemp("onnx-data")
    old = os.environ.get("WORKBENCH_DATA")
    os.environ["WORKBENCH_DATA"] = str(d)
    from core.rag.embedders import get_embedder
    get_embedder("onnx")
    get_embedder("onnx-int8")
    try:
        yield d
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_DATA", None)
        else:
            os.environ["WORKBENCH_DATA"] = old


@pytest.fixture(scope="module")
def scenario_chunks(embedder):
    """Every chunk of the scenario's documents, chunked the default way with the torch embedder's tokenizer."""
    from core.rag import loaders
    from core.rag.chunkers import get_chunker
    ch = get_chunker(None, None, None, max_tokens=embedder.max_tokens)
    texts = []
    for f, doc_id in loaders.expand_paths([KNOWLEDGE]):
        texts += [p.text for p in ch.chunk(loaders.load_path(f, doc_id=doc_id).text, embedder)]
    assert len(texts) > 50
    return texts


def test_export_is_cached_once_per_machine_and_checked(onnx_data):
    from core.rag.embedders import ensure_onnx_model, onnx_cache_root, onnx_model_file, packaged_model_path
    folder = packaged_model_path()
    fp32, int8 = onnx_model_file(folder, False), onnx_model_file(folder, True)
    assert fp32.is_file() and int8.is_file()
    assert fp32.parent.parent == onnx_cache_root() and onnx_data not in fp32.parents   # shared by data folders
    assert int8.stat().st_size < fp32.stat().st_size / 2            # int8 weights (FFN down-projections fp32)
    meta = json.loads((fp32.parent / "export.json").read_text())
    assert meta["parity_min_cosine"] >= 0.9999 and meta["source"] == str(folder.resolve())
    mtime = fp32.stat().st_mtime_ns
    assert ensure_onnx_model(folder, False) == fp32 and fp32.stat().st_mtime_ns == mtime   # reused, not redone
    assert not list(fp32.parent.glob("*.tmp"))                       # nothing half-written left behind


def test_same_tokens_and_chunks_as_torch(onnx_data, embedder, scenario_chunks):
    from core.rag import loaders
    from core.rag.chunkers import get_chunker
    from core.rag.embedders import get_embedder
    onnx = get_embedder("onnx")
    assert (onnx.dimension, onnx.max_tokens) == (embedder.dimension, embedder.max_tokens)
    for text in scenario_chunks[:40]:
        assert onnx.count_tokens(text) == embedder.count_tokens(text)
        assert onnx.token_offsets(text) == embedder.token_offsets(text)
    ch = get_chunker(None, None, None, max_tokens=onnx.max_tokens)
    mine = []
    for f, doc_id in loaders.expand_paths([KNOWLEDGE]):
        mine += [p.text for p in ch.chunk(loaders.load_path(f, doc_id=doc_id).text, onnx)]
    assert mine == scenario_chunks


def test_vector_parity_on_every_scenario_chunk(onnx_data, embedder, scenario_chunks):
    from core.rag.embedders import get_embedder
    ref = embedder._model.encode(scenario_chunks, normalize_embeddings=True, convert_to_numpy=True)
    for name, floor in (("onnx", 0.9999), ("onnx-int8", 0.99)):
        got = get_embedder(name).encode(scenario_chunks)
        assert got.shape == ref.shape and got.dtype == np.float32
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cos = (got * ref).sum(1)
        assert cos.min() >= floor, f"{name}: min cosine {cos.min():.6f} < {floor}"
        q = ["How much is an SMS top-up pack?"]                         # the 1-thread query path too
        qcos = float(get_embedder(name).encode(q)[0] @ embedder._model.encode(q, normalize_embeddings=True)[0])
        assert qcos >= floor


def test_unsupported_layout_is_a_typed_error(tmp_path, data_dir):
    from core.rag.embedders import get_embedder
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "modules.json").write_text(json.dumps(
        [{"path": "", "type": "sentence_transformers.models.Transformer"},
         {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "m" / "1_Pooling").mkdir()
    (tmp_path / "m" / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    from core.rag.embedders import onnx_cache_dir
    with pytest.raises(ModelNotFound, match="mean pooling"):
        get_embedder(f"onnx:st:{tmp_path / 'm'}")
    assert not onnx_cache_dir(tmp_path / "m").exists()                # refused before any export work


QUERY_PROBE = """
import json, sys, time
from core.rag.embedders import get_embedder
t0 = time.perf_counter()
emb = get_embedder(sys.argv[1])
load = time.perf_counter() - t0
emb.encode(["warm up"])
ts = []
for _ in range(20):
    t = time.perf_counter()
    v = emb.encode(["How much is an SMS top-up pack?"])
    ts.append(time.perf_counter() - t)
out = {"load_s": load, "shape": list(v.shape), "heavy": sorted({m.split('.')[0] for m in sys.modules}
       & {"torch", "transformers", "sentence_transformers"})}
if len(sys.argv) > 2:
    from core.rag.retriever import retrieve
    r = retrieve("How much is an SMS top-up pack?", sys.argv[2], mode="hybrid", k=3)
    out["hits"] = len(r.chunks)
    out["embedder"] = r.embedder
    out["heavy"] = sorted({m.split('.')[0] for m in sys.modules} & {"torch", "transformers", "sentence_transformers"})
print(json.dumps(out))
"""


def probe(data: Path, *args: str) -> dict:
    p = subprocess.run([sys.executable, "-c", QUERY_PROBE, *args], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, WORKBENCH_DATA=str(data)), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_query_embedding_and_retrieval_import_no_torch(onnx_data):
    from core.rag.api import ingest_paths
    res = ingest_paths([KNOWLEDGE / "sms-reminders.md", KNOWLEDGE / "plans-and-limits.md"], "onnxq",
                       embedder="onnx")
    assert all(r.ok for r in res)
    for name in ("onnx", "onnx-int8"):
        out = probe(onnx_data, name)
        assert out["shape"] == [1, 384]
        assert out["heavy"] == [], f"embedding a query with {name} imported {out['heavy']}"
    out = probe(onnx_data, "onnx", "onnxq")
    assert out["hits"] == 3 and out["embedder"] == "onnx:all-MiniLM-L6-v2"
    assert out["heavy"] == [], f"a hybrid search over an ONNX index imported {out['heavy']}"


def test_indexes_are_kept_apart_per_backend(onnx_data, embedder):
    from core.rag import api, store
    from core.rag.embedders import get_embedder
    docs = [KNOWLEDGE / "sms-reminders.md", KNOWLEDGE / "error-codes.txt"]
    assert all(r.ok for r in api.ingest_paths(docs, "both"))                    # torch (default)
    torch_cfg = store.get_active("both")
    assert all(r.ok for r in api.ingest_paths(docs, "both", embedder="onnx-int8"))
    onnx_cfg = store.get_active("both")
    assert torch_cfg.embedder == "all-MiniLM-L6-v2" and onnx_cfg.embedder == "onnx-int8:all-MiniLM-L6-v2"
    assert torch_cfg.table_name != onnx_cfg.table_name                          # two tables, never mixed
    names = {c.embedder for c in store.list_index_configs() if c.collection == "both"}
    assert names == {"all-MiniLM-L6-v2", "onnx-int8:all-MiniLM-L6-v2"}
    # each table holds its own backend's vectors (int8: dynamic activation scales are per batch, so a vector
    # depends slightly on the other texts of its batch: cosine >= 0.99, not bit-equal)
    for cfg, emb in ((torch_cfg, embedder), (onnx_cfg, get_embedder("onnx-int8"))):
        t = store.open_table(cfg.table_name).search().select(["text", "vector"]).limit(5).to_arrow()
        stored = np.stack(t.column("vector").to_numpy(zero_copy_only=False))
        fresh = emb.encode(t.column("text").to_pylist())
        if emb.backend == "torch":
            assert np.abs(stored - fresh).max() < 1e-5
        else:
            assert (stored * fresh).sum(1).min() >= 0.99
            assert (stored * embedder.encode(t.column("text").to_pylist())).sum(1).min() >= 0.99
    # the active index answers with its own embedder; switching back reads the torch table again
    assert api.retrieve("SMS top-up pack", "both", mode="vector", k=2).embedder == "onnx-int8:all-MiniLM-L6-v2"
    info = api.use_index("both", torch_cfg.chunker, torch_cfg.chunk_size, torch_cfg.overlap)
    assert info.table_name == torch_cfg.table_name
    assert api.retrieve("SMS top-up pack", "both", mode="vector", k=2).embedder == "all-MiniLM-L6-v2"


def test_retrieval_metrics_within_one_question_of_torch(onnx_data):
    from core.rag import api
    counts = {}
    for name in ("all-MiniLM-L6-v2", "onnx", "onnx-int8"):
        coll = "ev_" + name.replace(":", "_").replace("-", "_")[:20]
        assert all(r.ok for r in api.ingest_paths([KNOWLEDGE], coll, embedder=name))
        rep = api.evaluate(coll, QUESTIONS)
        counts[name] = {m: (round(s.hit_at_1 * rep.n_questions), round(s.hit_at_5 * rep.n_questions))
                        for m, s in rep.modes.items()}
    for name in ("onnx", "onnx-int8"):
        for mode, (h1, h5) in counts[name].items():
            t1, t5 = counts["all-MiniLM-L6-v2"][mode]
            assert abs(h1 - t1) <= 1 and abs(h5 - t5) <= 1, (name, mode, counts)


def test_a_torch_index_is_queried_through_its_onnx_twin_without_torch(onnx_data, embedder):
    """The same rankings as querying with torch, and a search process that never imports torch."""
    from core.config import get_settings
    from core.rag import api
    from core.rag.embedders import get_embedder, query_embedder
    assert all(r.ok for r in api.ingest_paths([KNOWLEDGE], "twin"))                 # torch (default) index
    assert api.retrieve("SMS top-up pack", "twin", mode="vector", k=2).embedder == "all-MiniLM-L6-v2"
    assert query_embedder("all-MiniLM-L6-v2").name == "onnx:all-MiniLM-L6-v2"
    assert query_embedder("onnx-int8").name == "onnx-int8:all-MiniLM-L6-v2"       # other backends: their own
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    from core.rag import store
    table = store.open_table(store.get_active("twin").table_name)
    onnx = get_embedder("onnx")
    for q in questions:
        ids = [[r["id"] for r in table.search(e.encode([q])[0], vector_column_name="vector")
                .distance_type("cosine").limit(5).to_list()] for e in (embedder, onnx)]
        assert ids[0] == ids[1], q
    out = probe(onnx_data, "all-MiniLM-L6-v2", "twin")      # the probe's own encode loads torch: check retrieve
    assert out["hits"] == 3 and out["embedder"] == "all-MiniLM-L6-v2"
    p = subprocess.run([sys.executable, "-c", SEARCH_ONLY, "twin"], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, WORKBENCH_DATA=str(onnx_data)), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"hits": 3, "heavy": []}
    p = subprocess.run([sys.executable, "-c", SEARCH_ONLY, "twin"], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, WORKBENCH_DATA=str(onnx_data), WORKBENCH_QUERY_BACKEND="same"),
                       timeout=300)
    assert p.returncode == 0 and json.loads(p.stdout.strip().splitlines()[-1])["heavy"] != []   # the switch works
    assert get_settings().query_backend == "auto"


SEARCH_ONLY = """
import json, sys
from core.rag.retriever import retrieve
r = retrieve("How much is an SMS top-up pack?", sys.argv[1], mode="hybrid", k=3)
print(json.dumps({"hits": len(r.chunks), "heavy": sorted({m.split('.')[0] for m in sys.modules}
                  & {"torch", "transformers", "sentence_transformers"})}))
"""


def test_a_bad_query_backend_setting_is_a_typed_error(monkeypatch, data_dir):
    from core.errors import ConfigError
    from core.rag.embedders import query_embedder
    monkeypatch.setenv("WORKBENCH_QUERY_BACKEND", "fastest")
    with pytest.raises(ConfigError, match="auto' or 'same"):
        query_embedder("all-MiniLM-L6-v2")
