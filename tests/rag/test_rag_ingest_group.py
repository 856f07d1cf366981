"""The grouped ingest path: one merge_insert per group of documents (store.replace_documents), its per-document
fallback, and the same index as writing each document on its own."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from core.rag import api, ingest, store

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "sample_docs" / "knowledge"


def _table(collection: str):
    return store.open_table(store.get_active(collection).table_name)


def _all_rows(collection: str) -> dict[str, dict]:
    rows = (_table(collection).search().select(["id", "doc_id", "position", "start", "end", "heading", "text",
                                                "tokens", "doc_hash", "vector"]).limit(None).to_arrow().to_pylist())
    return {r["id"]: r for r in rows}


def _corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    for f in sorted(KNOWLEDGE.glob("*.md"))[:4] + sorted(KNOWLEDGE.glob("*.txt"))[:2]:
        shutil.copy(f, d / f.name)
    return d


def _data(doc_id: str, ids: list[str], dim: int = 4):
    n = len(ids)
    vec = np.ones((n, dim), dtype=np.float32).reshape(-1)
    return pa.table({"id": ids, "doc_id": [doc_id] * n, "source": [doc_id] * n, "position": list(range(n)),
                     "start": [0] * n, "end": [0] * n, "heading": [""] * n, "text": [f"t {i}" for i in ids],
                     "tokens": [1] * n, "doc_hash": ["h"] * n, "ingested_at": [0.0] * n, "ingest_s": [0.1] * n,
                     "vector": pa.FixedSizeListArray.from_arrays(pa.array(vec, type=pa.float32()), dim)},
                    schema=store.chunk_schema(dim))


def test_replace_documents_makes_each_listed_document_exactly_its_rows_in_one_commit(data_dir):
    table, _ = store.get_index("grp", "fake", 4, "structure", 200, 32)
    store.replace_document(table, "a", _data("a", ["a1", "a2", "a3"]))
    store.replace_document(table, "b", _data("b", ["b1", "b2"]))
    store.replace_document(table, "keep", _data("keep", ["k1"]))
    v = table.version
    data = pa.concat_tables([_data("a", ["a1", "a4"]), _data("c", ["c1"])])
    store.replace_documents(table, ["a", "b", "c"], data)     # b is listed with no rows: all its rows go
    assert table.version == v + 1
    ids = sorted(table.search().select(["id"]).limit(None).to_arrow().column("id").to_pylist())
    assert ids == ["a1", "a4", "c1", "k1"]                      # an unlisted document is untouched


def test_group_write_failure_falls_back_per_document_and_isolates_the_bad_one(data_dir, tmp_path, monkeypatch):
    corpus = _corpus(tmp_path)
    files = sorted(corpus.iterdir())
    bad = files[2].name

    def group_fails(*a, **k):
        raise RuntimeError("group write refused")

    real_one = store.replace_document

    def one(table, doc_id, data):
        if doc_id == bad:
            raise RuntimeError("this document cannot be written")
        return real_one(table, doc_id, data)

    monkeypatch.setattr(store, "replace_documents", group_fails)
    monkeypatch.setattr(store, "replace_document", one)
    seen = []
    results = ingest.run_items(ingest.plan_items(files), "fallback", on_result=lambda i, r: seen.append(i))
    by = {r.file: r for r in results}
    assert not by[bad].ok and "cannot be written" in by[bad].error
    assert all(r.ok and r.chunks > 0 for n, r in by.items() if n != bad)
    assert sorted(seen) == list(range(len(files)))
    docs = {d["doc_id"]: d["chunks"] for d in api.list_documents("fallback")}
    assert bad not in docs and docs == {n: r.chunks for n, r in by.items() if n != bad}


def test_grouped_ingest_writes_the_same_index_as_one_document_at_a_time(data_dir, tmp_path, monkeypatch):
    corpus = _corpus(tmp_path)
    grouped = ingest.run_items(ingest.plan_items([corpus]), "grouped")
    calls = []
    real = store.replace_documents

    def spy(table, doc_ids, data):
        calls.append(list(doc_ids))
        return real(table, doc_ids, data)

    monkeypatch.setattr(store, "replace_documents", spy)
    monkeypatch.setattr(ingest, "GROUP_CHUNKS", 1)             # every document flushed (and written) alone
    single = ingest.run_items(ingest.plan_items([corpus]), "single")
    assert calls and all(len(c) == 1 for c in calls)
    assert [(r.doc_id, r.ok, r.chunks, r.tokens, r.embedded) for r in grouped] == \
        [(r.doc_id, r.ok, r.chunks, r.tokens, r.embedded) for r in single]
    a, b = _all_rows("grouped"), _all_rows("single")
    assert sorted(a) == sorted(b) and len(a) == sum(r.chunks for r in grouped)
    for cid, row in a.items():
        other = b[cid]
        assert {k: v for k, v in row.items() if k != "vector"} == {k: v for k, v in other.items() if k != "vector"}
        # the same text embedded in a different padded batch: equal up to float noise
        assert np.allclose(row["vector"], other["vector"], atol=1e-5)


def test_grouped_reingest_embeds_only_changed_chunks_of_changed_documents(data_dir, tmp_path):
    corpus = _corpus(tmp_path)
    first = api.ingest_paths([corpus], "regroup")
    assert all(r.ok and r.embedded == r.chunks for r in first)
    target = sorted(corpus.glob("*.md"))[0]
    target.write_text(target.read_text(encoding="utf-8") + "\n\n## Added\n\nA brand new closing paragraph.\n",
                      encoding="utf-8")
    again = {r.file: r for r in api.ingest_paths([corpus], "regroup")}
    assert all(r.skipped_unchanged and r.embedded == 0 for n, r in again.items() if n != target.name)
    changed = again[target.name]
    assert changed.ok and not changed.skipped_unchanged and 0 < changed.embedded < changed.chunks
    rows = [r for r in _all_rows("regroup").values() if r["doc_id"] == target.name]
    assert len(rows) == changed.chunks and any("brand new closing" in r["text"] for r in rows)
