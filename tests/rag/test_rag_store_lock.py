"""The per-collection write lock (every writer takes it), a delete racing an ingest in another process, version
cleanup that keeps what comparison runs pin, and the collection's size on disk."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core.errors import CollectionBusy
from core.fileio import write_json_atomic
from core.rag import api, store

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "sample_docs" / "knowledge"

HOLDER = textwrap.dedent("""
    import sys, time
    from core.rag import store
    with store.collection_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _env(data_dir: Path) -> dict:
    return dict(os.environ, WORKBENCH_DATA=str(data_dir), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def test_lock_is_reentrant_in_a_thread_and_excludes_other_threads(data_dir):
    order = []
    with store.collection_lock("kb"):
        with store.collection_lock("kb"):          # re-entrant: an api call inside another one
            order.append("inner")

        def other():
            with store.collection_lock("kb", timeout=10):
                order.append("thread")

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.3)
        order.append("outer-release")
    t.join(10)
    assert order == ["inner", "outer-release", "thread"]
    with store.collection_lock("other"):            # another collection is independent
        pass


def test_a_writer_in_another_process_makes_us_wait_then_busy(data_dir):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, "kb", "3"], cwd=ROOT, env=_env(data_dir),
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(CollectionBusy, match="being written by another task"):
            with store.collection_lock("kb", timeout=0.5):
                pass
        assert 0.4 < time.monotonic() - t0 < 3
        with store.collection_lock("kb", timeout=30):     # ... and gets it once the other writer is done
            waited = time.monotonic() - t0
        assert waited >= 2
    finally:
        p.wait(10)


DELETER = textwrap.dedent("""
    import json, random, sys, time
    from pathlib import Path
    from core.errors import CollectionNotFound
    from core.rag import api
    stop, deleted, tries = Path(sys.argv[1]), [], 0
    random.seed(7)
    t0 = time.time()
    while not stop.exists() and time.time() - t0 < 300:
        try:
            docs = api.list_documents("race")
        except CollectionNotFound:
            docs = []
        if docs:
            d = random.choice(docs)["doc_id"]
            tries += 1
            if api.delete_document("race", d):
                deleted.append(d)
        time.sleep(0.02)
    print(json.dumps({"deleted": deleted, "tries": tries}))
""")


def _assert_consistent(collection: str) -> list[dict]:
    cfg = store.get_active(collection)
    t = store.open_table(cfg.table_name)
    rows = t.search().select(["id", "doc_id", "position", "doc_hash", "source"]).limit(None).to_arrow().to_pylist()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate chunk rows"
    by_doc: dict[str, list[dict]] = {}
    for r in rows:
        by_doc.setdefault(r["doc_id"], []).append(r)
    for doc, rs in by_doc.items():
        assert sorted(r["position"] for r in rs) == list(range(len(rs))), f"{doc}: chunks missing or doubled"
        assert len({r["doc_hash"] for r in rs}) == 1, f"{doc}: rows of two versions mixed"
    t.to_lance().validate()
    return rows


@pytest.mark.slow
def test_delete_racing_a_foreground_ingest_in_another_process(data_dir, tmp_path):
    """`python -m core ingest` (one process) while another process keeps deleting documents of the same
    collection: both finish without error and the table holds whole documents only."""
    stop = tmp_path / "stop"
    env = _env(data_dir)
    deleter = subprocess.Popen([sys.executable, "-c", DELETER, str(stop)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ingest = subprocess.run([sys.executable, "-m", "core", "ingest", str(KNOWLEDGE), "--collection", "race",
                             "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    stop.write_text("1")
    out, err = deleter.communicate(timeout=120)
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    res = json.loads(ingest.stdout)
    assert res["failed"] == 0 and res["ok"] == len(res["files"]) >= 15
    assert deleter.returncode == 0, err[-3000:]
    stats = json.loads(out)
    assert stats["deleted"], "the deleter never overlapped the ingest"
    rows = _assert_consistent("race")
    # every file is either whole in the index or was deleted after it was written
    present = {r["doc_id"] for r in rows}
    for f in res["files"]:
        assert f["doc_id"] in present or f["doc_id"] in stats["deleted"]
    assert api.retrieve("how do refunds work", "race", mode="hybrid", k=3).table_version >= 1


@pytest.mark.slow
def test_cleanup_keeps_pinned_versions_and_reports_size(data_dir, tmp_path, monkeypatch):
    src = tmp_path / "docs"
    src.mkdir()
    for i in range(3):
        (src / f"n{i}.md").write_text(f"# Note {i}\n\n" + f"Note {i} says the quota is {i * 10} units. " * 20)
    api.ingest_paths([src], "vers")
    info = api.get_collection("vers")
    pinned = info.table_version
    # a stored comparison run pins that version
    run = data_dir / "compare" / "run-1"
    run.mkdir(parents=True)
    write_json_atomic(run / "spec.json", {"approaches": [{"name": "rag", "rag": {"collection": "vers", "mode": "hybrid",
                                                                                   "k": 3, "table_version": pinned}}]})
    for i in range(3):                                   # more versions: edits and deletes
        (src / f"n{i}.md").write_text(f"# Note {i}\n\nEdited: the quota is now {i * 11} units. " * 15)
        api.ingest_paths([src / f"n{i}.md"], "vers")
    api.delete_document("vers", "n0.md")
    t = store.open_table(info.table_name)
    before = len(t.to_lance().versions())
    size_before = store.table_disk_bytes(info.table_name)
    monkeypatch.setattr(store, "VERSION_KEEP_S", 0)
    out = store.cleanup_versions(t, keep_s=0)
    assert out["removed"] > 0 and out["bytes_removed"] > 0 and pinned in out["kept_pinned"]
    versions = [v["version"] for v in t.to_lance().versions()]
    assert len(versions) < before and pinned in versions and t.version in versions
    # the pinned version still reads, exactly as the run saw it
    old, v = store.pinned_table(info.table_name, pinned)
    assert v == pinned and old.count_rows() == info.rows
    assert store.table_disk_bytes(info.table_name) < size_before
    assert api.get_collection("vers").disk_bytes == store.table_disk_bytes(info.table_name) > 0
    # once the run is deleted, its version can go too
    (run / "spec.json").unlink()
    out = store.cleanup_versions(t, keep_s=0)
    assert [v["version"] for v in t.to_lance().versions()] == [t.version]
    _assert_consistent("vers")


def _rows(doc: str, n: int, dim: int = 4):
    import numpy as np
    import pyarrow as pa
    vec = np.random.default_rng(0).random((n, dim), dtype=np.float32)
    return pa.table({
        "id": [f"{doc}-{i}" for i in range(n)], "doc_id": [doc] * n, "source": [doc] * n,
        "position": list(range(n)), "start": [0] * n, "end": [1] * n, "heading": [""] * n,
        "text": [f"text of {doc} part {i}" for i in range(n)], "tokens": [4] * n, "doc_hash": [doc] * n,
        "ingested_at": [0.0] * n, "ingest_s": [0.01] * n,
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vec.reshape(-1), type=pa.float32()), dim),
    }, schema=store.chunk_schema(dim))


def test_deletes_never_preempt_compaction_and_index_builds(data_dir):
    """Without the lock, a delete landing during compaction makes Lance drop the compaction and skip that round's
    FTS update ("Retryable commit conflict ... This Rewrite transaction was preempted by concurrent transaction
    Delete"; seen on this test's pattern with the lock switched off). With every writer under the collection lock,
    each round's maintenance completes."""
    table, _ = store.get_index("locked", "test-embedder", 4, "fixed", 50, 0)
    errors: list[str] = []
    results: list[dict] = []
    deletes = []
    done = threading.Event()

    def writer():
        try:
            for r in range(10):
                for k in range(30):                       # > 16 fragments per round: update_indexes compacts
                    store.replace_document(table, f"r{r}d{k}", _rows(f"r{r}d{k}", 3))
                results.append(store.update_indexes(table))
        finally:
            done.set()

    def deleter():
        t = store.open_table(table.name)
        while not done.is_set():
            docs = [d["doc_id"] for d in store.list_documents(t)]
            if len(docs) > 40:
                try:
                    deletes.append(store.delete_document(t, docs[len(docs) // 2]))
                except Exception as exc:  # noqa: BLE001
                    errors.append(f"delete: {exc}")

    threads = [threading.Thread(target=writer), threading.Thread(target=deleter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(results) == 10 and sum("compacted" in r for r in results) >= 5
    assert not [r["error"] for r in results if "error" in r] and not errors, (results, errors[:3])
    assert len(deletes) >= 10 and all(n == 3 for n in deletes)
    _assert_consistent("locked")
