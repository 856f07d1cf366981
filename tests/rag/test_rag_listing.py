"""core/rag/listing.py: a listing is reused (across processes, through its JSON file) only while the LanceDB folder's
fingerprint is unchanged; a write to a table's _versions/ or a new table makes the next listing live again. No
lancedb: the folder layout is built by hand and the live read is a counter."""
from __future__ import annotations

import os
import time

from core.rag import listing as rag_listing


def _touch_versions(root, table: str, n: int, age_s: float = 10.0) -> None:
    v = root / f"{table}.lance" / "_versions"
    v.mkdir(parents=True, exist_ok=True)
    (v / f"{n}.manifest").write_text("x")
    old = time.time() - age_s
    for p in (v, v.parent, root):
        os.utime(p, (old, old))


def test_listing_is_reused_until_the_store_changes(data_dir, monkeypatch):
    root = data_dir / "lancedb"
    _touch_versions(root, "wb_collections", 1)
    _touch_versions(root, "support__abc", 1)
    calls = []

    def live():
        calls.append(1)
        return [f"read {len(calls)}"]

    assert rag_listing._cached("collections", "", live) == ["read 1"]
    rag_listing.forget()                                  # a new process: only the JSON file is left
    assert rag_listing._cached("collections", "", live) == ["read 1"] and len(calls) == 1
    assert (data_dir / "cache" / rag_listing.FILE).is_file()

    _touch_versions(root, "support__abc", 2)              # an ingest wrote a new table version
    assert rag_listing._cached("collections", "", live) == ["read 2"]
    _touch_versions(root, "handbook__def", 1)             # a new collection's table
    assert rag_listing._cached("collections", "", live) == ["read 3"]
    assert rag_listing._cached("collections", "", live) == ["read 3"] and len(calls) == 3


def test_a_just_written_store_is_not_cached(data_dir):
    root = data_dir / "lancedb"
    _touch_versions(root, "support__abc", 1, age_s=0.0)   # newer than SETTLE_S: a write could hide in the tick
    calls = []
    live = lambda: calls.append(1) or len(calls)          # noqa: E731
    assert rag_listing._cached("documents", "support", live) == 1
    assert rag_listing._cached("documents", "support", live) == 2       # not even kept in this process
    rag_listing.forget()
    assert rag_listing._cached("documents", "support", live) == 3
    assert not (data_dir / "cache" / rag_listing.FILE).exists()


def test_object_store_listings_are_always_live(data_dir, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LANCEDB_URI", "s3://bucket/prefix")
    calls = []
    live = lambda: calls.append(1) or len(calls)          # noqa: E731
    assert rag_listing._cached("collections", "", live) == 1
    assert rag_listing._cached("collections", "", live) == 2


def test_the_collections_command_lists_from_the_cache_without_importing_lancedb(data_dir, small_corpus, embedder):
    """`python -m core collections` reads through the listing cache: a second call in a fresh process prints the
    same listing and never imports lancedb; after a write the next call reads the store again."""
    import json
    import subprocess
    import sys

    from core.config import PROJECT_ROOT
    from core.rag.api import delete_document, ingest_paths

    assert all(r.ok for r in ingest_paths([small_corpus], "cli"))
    code = ("import json, sys\nfrom core.cli import main\nrc = main(['collections', '--json', '--docs'])\n"
            "print(json.dumps({'rc': rc, 'lancedb': 'lancedb' in sys.modules}))\n")

    def call() -> tuple[dict, dict]:
        p = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, WORKBENCH_DATA=str(data_dir)))
        assert p.returncode == 0, p.stderr[-2000:]
        lines = p.stdout.strip().splitlines()
        return json.loads("\n".join(lines[:-1])), json.loads(lines[-1])

    time.sleep(rag_listing.SETTLE_S + 0.1)              # a just-written store is never cached
    live, how = call()
    assert how == {"rc": 0, "lancedb": True}
    cached, how = call()
    assert how == {"rc": 0, "lancedb": False} and cached == live
    assert {d["doc_id"] for d in cached["collections"][0]["docs"]} == set(os.listdir(small_corpus))
    delete_document("cli", "error-codes.txt")
    after, how = call()
    assert how["lancedb"] is True and len(after["collections"][0]["docs"]) == len(live["collections"][0]["docs"]) - 1
