"""The ingest pipeline: load -> clean -> chunk -> embed -> store, each document atomic. Loading/chunking and storing
run on their own threads, overlapping with embedding, and chunks of several documents are embedded together.

A failing file gets a FileResult with its error; the rest of the batch goes on. An unchanged file (same bytes,
same index configuration) embeds nothing; a changed file only embeds the chunks whose text changed and replaces
its rows with one merge_insert.
"""
from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from core.errors import EmptyDocument, IngestError, WorkbenchError
from core.rag import loaders, store
from core.rag.chunkers import get_chunker
from core.rag.embedders import get_embedder

log = logging.getLogger(__name__)
GROUP_CHUNKS = 256     # embed once this many chunks (of one or more documents) are pending
EMBED_SLICE = 64       # chunks per embedding call (progress moves after each)
PREFETCH_DOCS = 32     # documents the loader thread may prepare ahead of the embedder


@dataclass
class IngestProgress:
    file: str                 # display name of the file being processed
    index: int                # 0-based position in the batch
    total: int                # files in the batch
    stage: str                # load | chunk | embed | store | done | skipped | error
    file_fraction: float      # 0..1 within this file
    overall_fraction: float   # 0..1 over the batch
    message: str = ""


@dataclass
class FileResult:
    file: str                 # display name (the original name)
    doc_id: str = ""          # sanitised name used as the key in the index
    ok: bool = False
    chunks: int = 0
    tokens: int = 0
    seconds: float = 0.0
    error: str = ""
    skipped_unchanged: bool = False
    embedded: int = 0         # chunks actually sent to the embedder (0 when unchanged)
    error_type: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def chunk_id(doc_id: str, text: str, position: int) -> str:
    """Content-derived id: the same chunk of the same document always gets the same id."""
    return hashlib.sha256(f"{doc_id}\x00{position}\x00{text}".encode("utf-8")).hexdigest()


# An item to ingest: (display name, doc id, loader returning a Document)
Item = tuple[str, str, Callable[[], loaders.Document]]


def _items_from_paths(paths: Iterable[Path], max_mb: int) -> list[Item]:
    items: list[Item] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            items.append((p.name or str(p), loaders.sanitize_name(p.name),
                          lambda p=p: (_ for _ in ()).throw(IngestError(f"{p}: no such file or folder."))))
            continue
        for f, doc_id in loaders.expand_paths([p]):
            items.append((f.name, doc_id, lambda f=f, d=doc_id: loaders.load_path(f, max_mb=max_mb, doc_id=d)))
    return items


def _items_from_uploads(files: Iterable[tuple[str, bytes]], max_mb: int) -> list[Item]:
    items: list[Item] = []
    for name, data in files:
        doc_id = loaders.sanitize_name(name)
        items.append((str(name), doc_id, lambda n=name, b=data, d=doc_id: loaders.load_bytes(b, n, max_mb=max_mb, doc_id=d)))
    return items


def _items_from_saved(entries: Iterable[dict], max_mb: int) -> list[Item]:
    """Uploads already saved to disk (by an ingest job): {"name": original name, "doc_id", "path", "error"}."""
    items: list[Item] = []
    for e in entries:
        name, doc_id = str(e.get("name") or "document"), str(e.get("doc_id") or loaders.sanitize_name(e.get("name")))
        if e.get("error") or not e.get("path"):
            err = IngestError(str(e.get("error") or f"{name}: the upload was not saved."))
            items.append((name, doc_id, lambda err=err: (_ for _ in ()).throw(err)))
        else:
            items.append((name, doc_id, lambda p=Path(e["path"]), n=name, d=doc_id:
                          loaders.load_path(p, max_mb=max_mb, doc_id=d, display=n)))
    return items


def plan_items(paths: Iterable[Path] = (), saved: Iterable[dict] = ()) -> list[Item]:
    """The files a batch will ingest, in order: (display name, doc id, loader). Cheap: nothing is read yet."""
    from core.config import get_settings
    max_mb = get_settings().max_upload_mb
    return _items_from_paths(paths, max_mb) + _items_from_saved(saved, max_mb)


def run_items(items: list[Item], collection: str, chunker: str | None = None, chunk_size: int | None = None,
              overlap: int | None = None, progress: Callable[[IngestProgress], None] | None = None,
              embedder: str | None = None,
              on_result: Callable[[int, FileResult], None] | None = None) -> list[FileResult]:
    """Ingest planned items (see plan_items) -- what an ingest job's worker process runs. `on_result(index,
    FileResult)` is called as soon as each file is finished (stored, skipped or failed)."""
    return _run(items, collection, chunker, chunk_size, overlap, progress, embedder, on_result)


def ingest_paths(paths: list[Path], collection: str, chunker: str | None = None, chunk_size: int | None = None,
                 overlap: int | None = None, progress: Callable[[IngestProgress], None] | None = None,
                 embedder: str | None = None) -> list[FileResult]:
    """Ingest files and folders (folders recursively: txt, md, html, pdf, docx)."""
    from core.config import get_settings
    return _run(_items_from_paths(paths, get_settings().max_upload_mb), collection, chunker, chunk_size, overlap,
                progress, embedder)


def ingest_uploads(files: list[tuple[str, bytes]], collection: str, chunker: str | None = None,
                   chunk_size: int | None = None, overlap: int | None = None,
                   progress: Callable[[IngestProgress], None] | None = None,
                   embedder: str | None = None) -> list[FileResult]:
    """Ingest in-memory uploads [(original file name, bytes)]; names are sanitised before any use."""
    from core.config import get_settings
    return _run(_items_from_uploads(files, get_settings().max_upload_mb), collection, chunker, chunk_size, overlap,
                progress, embedder)


def _run(items: list[Item], collection: str, chunker_name: str | None, size: int | None, overlap: int | None,
         progress: Callable[[IngestProgress], None] | None, embedder_name: str | None,
         on_result: Callable[[int, FileResult], None] | None = None) -> list[FileResult]:
    """Three stages that overlap: a loader thread reads, cleans and chunks the next documents (and looks up
    which chunks are already stored) while this thread embeds a group of chunks from one or more documents; a
    writer thread stores each embedded group while the next one embeds. Each document is still written by one
    atomic merge_insert; callbacks are serialised (one at a time, from any of the three threads)."""
    store.validate_collection(collection)
    emb = get_embedder(embedder_name)
    ch = get_chunker(chunker_name, size, overlap, max_tokens=emb.max_tokens)
    table, cfg = store.get_index(collection, emb.name, emb.dimension, ch.name, ch.size, ch.overlap)
    total = len(items)

    fractions = [0.0] * total
    cb_lock = threading.Lock()

    def report(i: int, name: str, stage: str, frac: float, msg: str = "") -> None:
        with cb_lock:
            fractions[i] = max(fractions[i], frac)
            if progress:
                progress(IngestProgress(name, i, total, stage, frac, sum(fractions) / total if total else 1.0, msg))

    results: list[FileResult | None] = [None] * total
    changed = [False]

    def finished(i: int, res: FileResult) -> None:
        with cb_lock:
            results[i] = res
            if on_result:
                on_result(i, res)

    def fail(i: int, name: str, res: FileResult, exc: BaseException, t0: float) -> None:
        if isinstance(exc, WorkbenchError):
            res.error, res.error_type = str(exc), type(exc).__name__
        else:
            log.error("ingest of %s failed: %r", name, exc)
            res.error, res.error_type = f"{name}: unexpected error ({type(exc).__name__}: {exc})", type(exc).__name__
        res.ok = False
        res.seconds += time.perf_counter() - t0
        finished(i, res)
        report(i, name, "error", 1.0, res.error)

    # -- stage 1 (thread): load, clean, chunk, find what needs embedding ---------------------------------------
    ready: "queue.Queue[tuple | None]" = queue.Queue(maxsize=PREFETCH_DOCS)
    stop = threading.Event()

    def load_all() -> None:
        seen: dict[str, str] = {}
        try:
            for i, (name, doc_id, load) in enumerate(items):
                if stop.is_set():
                    return
                t0 = time.perf_counter()
                res = FileResult(file=name, doc_id=doc_id)
                try:
                    if doc_id in seen:
                        raise IngestError(f"{name}: another file in this batch ({seen[doc_id]}) has the same name "
                                          f"{doc_id!r}; rename one of them.")
                    seen[doc_id] = name
                    report(i, name, "load", 0.0, "reading")
                    doc = load()
                    prep = _prepare(doc, table, emb, ch, res, i)
                    res.seconds += time.perf_counter() - t0
                    ready.put((i, name, res, prep, None, t0))
                except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
                    ready.put((i, name, res, None, exc, t0))
        finally:
            ready.put(None)

    # -- stage 3 (thread): store embedded groups, one atomic write per document ---------------------------------
    to_store: "queue.Queue[list | None]" = queue.Queue(maxsize=2)

    def store_all() -> None:
        while True:
            grp = to_store.get()
            if grp is None:
                return
            for prep in grp:
                t0 = time.perf_counter()
                try:
                    report(prep.index, prep.res.file, "store", 0.95, "writing")
                    _store(prep, table, emb)
                    changed[0] = True
                    prep.res.seconds += time.perf_counter() - t0
                    finished(prep.index, prep.res)
                    report(prep.index, prep.res.file, "done", 1.0, f"{prep.res.chunks} chunks")
                except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
                    fail(prep.index, prep.res.file, prep.res, exc, t0)

    loader = threading.Thread(target=load_all, name="ingest-load", daemon=True)
    writer = threading.Thread(target=store_all, name="ingest-store", daemon=True)
    loader.start()
    writer.start()

    # -- stage 2 (this thread): embed groups of chunks across documents -----------------------------------------
    group: list[_Prepared] = []

    def flush() -> None:
        if not group:
            return
        _embed_group(group, emb, report)     # an embedder failure (e.g. its server went away) ends the batch
        to_store.put(list(group))
        group.clear()

    try:
        while True:
            item = ready.get()
            if item is None:
                break
            i, name, res, prep, exc, t0 = item
            if exc is not None:
                fail(i, name, res, exc, t0)
                continue
            if prep is None:
                finished(i, res)
                report(i, name, "skipped", 1.0, "unchanged")
                continue
            report(i, name, "chunk", 0.1, f"{len(prep.pieces)} chunks, {len(prep.todo)} to embed")
            group.append(prep)
            # embed when enough chunks are pending, or when the loader has nothing ready (do not sit idle)
            pending = sum(len(p.todo) for p in group)
            if pending >= GROUP_CHUNKS or (pending >= EMBED_SLICE and ready.empty()):
                flush()
        flush()
    finally:
        stop.set()
        while loader.is_alive():            # unblock a loader waiting on a full queue, then let it end
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
        to_store.put(None)
        writer.join()
    if changed[0]:
        store.update_indexes(table)
    return [r for r in results if r is not None]


@dataclass
class _Prepared:
    index: int
    doc: loaders.Document
    pieces: list
    ids: list[str]
    todo: list[int]                 # positions whose vectors must be computed
    vectors: list
    res: FileResult


def _prepare(doc: loaders.Document, table, emb, ch, res: FileResult, index: int) -> "_Prepared | None":
    """Chunk a document and find which chunks need embedding; None when the document is unchanged."""
    state = store.doc_state(table, doc.doc_id)
    if state["rows"] and state["hashes"] == {doc.content_hash}:
        res.ok, res.skipped_unchanged, res.chunks = True, True, state["rows"]
        return None
    pieces = ch.chunk(doc.text, emb)
    if not pieces:
        raise EmptyDocument(f"{doc.display_name}: no text to index after cleaning.")
    ids = [chunk_id(doc.doc_id, p.text, p.position) for p in pieces]
    reuse = state["vectors"]
    todo = [k for k, cid in enumerate(ids) if cid not in reuse]
    return _Prepared(index, doc, pieces, ids, todo, [reuse.get(cid) for cid in ids], res)


def _embed_group(group: list["_Prepared"], emb, report) -> None:
    """One embedding pass over the pending chunks of several documents (large batches are ~2x faster on CPU
    than one small call per document), in slices so progress keeps moving."""
    jobs = [(p, k) for p in group for k in p.todo]
    if not jobs:
        return
    # longest first across the whole group (what SentenceTransformer.encode does within one call): each slice then
    # holds chunks of similar length, so little of the batch is padding
    jobs.sort(key=lambda j: -len(j[0].pieces[j[1]].text))
    t0 = time.perf_counter()
    done: dict[int, int] = {}
    for s in range(0, len(jobs), EMBED_SLICE):
        part = jobs[s:s + EMBED_SLICE]
        vecs = emb.encode([p.pieces[k].text for p, k in part])
        for (p, k), v in zip(part, vecs):
            p.vectors[k] = v
            done[p.index] = done.get(p.index, 0) + 1
        for p in {id(p): p for p, _ in part}.values():
            report(p.index, p.res.file, "embed", 0.1 + 0.8 * done[p.index] / len(p.todo),
                   f"embedded {done[p.index]}/{len(p.todo)}")
    share = (time.perf_counter() - t0) / len(jobs)
    for p in group:
        p.res.seconds += share * len(p.todo)


def _store(prep: "_Prepared", table, emb) -> None:
    import numpy as np
    import pyarrow as pa

    doc, pieces, res = prep.doc, prep.pieces, prep.res
    now = time.time()
    mat = np.asarray(np.stack([np.asarray(v, dtype=np.float32) for v in prep.vectors]), dtype=np.float32)
    data = pa.table({
        "id": prep.ids, "doc_id": [doc.doc_id] * len(pieces), "source": [doc.display_name] * len(pieces),
        "position": [p.position for p in pieces], "start": [p.start for p in pieces], "end": [p.end for p in pieces],
        "heading": [p.heading for p in pieces], "text": [p.text for p in pieces], "tokens": [p.tokens for p in pieces],
        "doc_hash": [doc.content_hash] * len(pieces), "ingested_at": [now] * len(pieces),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1), type=pa.float32()), emb.dimension),
    }, schema=store.chunk_schema(emb.dimension))
    store.replace_document(table, doc.doc_id, data)
    res.ok, res.chunks, res.tokens, res.embedded = True, len(pieces), sum(p.tokens for p in pieces), len(prep.todo)
