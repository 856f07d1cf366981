"""Collection, index and document listings for a page's first render without importing lancedb (~1.3 s).

The listings are read through core.rag.api as usual, then kept as JSON in <data>/cache/rag_listing.json together
with a fingerprint of the local LanceDB folder: the folder's own mtime (a table created or dropped) and, for every
`<table>.lance`, the mtime and entry count of its `_versions/` folder (every write of a Lance table -- an ingest,
a delete, an index build, a registry change -- adds a manifest there). A later process (a cold start) reuses the
JSON only while that fingerprint is unchanged; any write makes the next listing a live one. A fingerprint whose
newest mtime is under 2 s old is never stored (a write in the same clock tick could hide behind it). On an object
store (s3://, gs://, ...) there is no cheap fingerprint: every listing is live.

Pages call `collections()`, `indexes(name)`, `documents(name)`, `chunks(name, doc_id)`; nothing else changes (the same CollectionInfo
objects and document rows as core.rag.api returns). No lancedb, torch or pandas import here.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from core.config import get_settings
from core.fileio import read_json, write_json_atomic

FILE = "rag_listing.json"
SETTLE_S = 2.0
_LOCK = threading.Lock()
_MEMO: dict[str, dict] = {}        # path -> the loaded listing (this process)


def _fingerprint(uri: str) -> list | None:
    """Cheap stat-only fingerprint of a local LanceDB folder; None when there is none (object store, no folder)."""
    from core.rag.store import is_object_store

    if is_object_store(uri) or uri.startswith("file://"):
        return None
    root = Path(uri)
    try:
        fp: list = [root.stat().st_mtime_ns]
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.name.endswith(".lance"):
                v = os.path.join(entry.path, "_versions")
                try:
                    fp.append([entry.name, os.stat(v).st_mtime_ns, len(os.listdir(v))])
                except OSError:
                    fp.append([entry.name, None, 0])
    except OSError:
        return None
    return fp


def _newest_ns(fp: list) -> int:
    return max([fp[0]] + [e[1] or 0 for e in fp[1:]])


def _path() -> Path:
    return get_settings().cache_dir / FILE


def _load(uri: str, fp: list | None) -> dict:
    """The cached listing for this fingerprint, or a fresh empty one bound to it."""
    path = str(_path())
    if fp is None:
        return {"uri": uri, "fp": None}
    data = _MEMO.get(path)
    if data is None or data.get("fp") != fp or data.get("uri") != uri:
        data = read_json(Path(path)) or {}
        if data.get("fp") != fp or data.get("uri") != uri:
            data = {"uri": uri, "fp": fp}
        _MEMO[path] = data
    return data


def _settled(fp: list) -> bool:
    return time.time_ns() - _newest_ns(fp) >= SETTLE_S * 1e9


def _write(data: dict) -> None:
    try:
        _path().parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(_path(), data, indent=0)
    except OSError:
        pass                                   # a read-only data folder: the listing is kept in this process only


def _cached(section: str, name: str, compute):
    uri = get_settings().lancedb_uri
    with _LOCK:
        fp = _fingerprint(uri)
        data = _load(uri, fp)
        part = data.setdefault(section, {})
        if name in part:
            return part[name]
    value = compute()                          # live read (imports lancedb), outside the lock
    with _LOCK:
        # kept (in this process and in the file) only when the folder did not change during the read and its
        # last change is older than SETTLE_S, so a later write always gives a different fingerprint
        if fp is not None and _settled(fp) and _fingerprint(uri) == fp:
            data.setdefault(section, {})[name] = value
            _write(data)
    return value


def _collection_rows() -> list[dict]:
    def live():
        from core.rag import api
        return [c.to_dict() for c in api.list_collections()]
    return _cached("collections", "", live)


def collections() -> list:
    """core.rag.api.list_collections(), from the cache while the store is unchanged."""
    from core.rag import api

    return [api.CollectionInfo(**r) for r in _collection_rows()]


def collection_names() -> list[str]:
    """The names of collections() (without importing core.rag.api -- numpy -- on a cache hit)."""
    return [r["name"] for r in _collection_rows()]


def indexes(collection: str) -> list:
    """core.rag.api.list_indexes(collection) (raises CollectionNotFound the same way; not cached then)."""
    from core.rag import api

    rows = _cached("indexes", collection, lambda: [c.to_dict() for c in api.list_indexes(collection)])
    return [api.CollectionInfo(**r) for r in rows]


def documents(collection: str) -> list[dict]:
    """core.rag.api.list_documents(collection), from the cache while the store is unchanged."""
    from core.rag import api

    return _cached("documents", collection, lambda: api.list_documents(collection))


def chunks(collection: str, doc_id: str) -> list[dict]:
    """core.rag.api.document_chunks(collection, doc_id) (the chunk browser), cached the same way."""
    from core.rag import api

    return _cached("chunks", f"{collection}/{doc_id}", lambda: api.document_chunks(collection, doc_id))


def forget() -> None:
    """Drop this process's copy (the file is checked against the folder on every call anyway)."""
    with _LOCK:
        _MEMO.clear()
