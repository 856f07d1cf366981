"""The ingest pipeline: load -> clean -> chunk -> embed -> store, each document atomic.

Documents are read (in the parse sandbox) on a prefetch thread while earlier ones embed; their chunks are
embedded in groups of ~GROUP_CHUNKS chunks across documents, longest first; a group is stored with one
merge_insert (store.replace_documents), falling back to one write per document if that fails.

A failing file gets a FileResult with its error; the rest of the batch goes on. An unchanged file (same bytes,
same index configuration) embeds nothing; a changed file only embeds the chunks whose text changed and its rows
are replaced in one commit.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from core import limits
from core.errors import EmptyDocument, IngestError, PathNotAllowed, WorkbenchError
from core.paths import check_batch_size
from core.rag import loaders, store
from core.rag.chunkers import get_chunker
from core.rag.embedders import get_embedder

log = logging.getLogger(__name__)
# Embed once this many chunks (of one or more documents) are pending. The group is embedded sorted by length,
# so the bigger it is, the less padding: with bench/rag.py's corpus the padded tokens are 1.19x the real ones for
# 128 chunks unsorted, 1.11x sorted, 1.07x for 256 sorted (1.02x for bare encode's one call over everything).
GROUP_CHUNKS = 256
EMBED_SLICE = 64


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


def _failing(exc: Exception) -> Callable[[], loaders.Document]:
    def load() -> loaders.Document:
        raise exc
    return load


def _items_from_paths(paths: Iterable[Path], max_mb: int, roots: list[Path] | None = None) -> list[Item]:
    """`roots` (the UI's allowed folders, core.paths.path_roots()): every file, after its symlinks are followed,
    must lie under one of them; one that does not gets an error item instead of being read."""
    from core.paths import is_under
    items: list[Item] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            items.append((p.name or str(p), loaders.sanitize_name(p.name),
                          _failing(IngestError(f"{p}: no such file or folder."))))
            continue
        for f, doc_id in loaders.expand_paths([p]):
            if roots is not None and not is_under(f.resolve(), roots):
                items.append((f.name, doc_id, _failing(PathNotAllowed(
                    f"{f.name}: it links to a place outside the folders this app may read; it was not read."))))
                continue
            items.append((f.name, doc_id, lambda f=f, d=doc_id: limits.load_path(f, max_mb=max_mb, doc_id=d)))
    if roots is not None:
        check_batch_size(len(items))
    return items


def _items_from_uploads(files: Iterable[tuple[str, bytes]], max_mb: int) -> list[Item]:
    items: list[Item] = []
    for name, data in files:
        doc_id = loaders.sanitize_name(name)
        items.append((str(name), doc_id, lambda n=name, b=data, d=doc_id: limits.load_bytes(b, n, max_mb=max_mb, doc_id=d)))
    check_batch_size(len(items), "uploaded files")
    return items


def _items_from_saved(entries: Iterable[dict], max_mb: int) -> list[Item]:
    """Uploads already saved to disk (by an ingest job): {"name": original name, "doc_id", "path", "error"}."""
    items: list[Item] = []
    for e in entries:
        name, doc_id = str(e.get("name") or "document"), str(e.get("doc_id") or loaders.sanitize_name(e.get("name")))
        if e.get("error") or not e.get("path"):
            err = IngestError(str(e.get("error") or f"{name}: the upload was not saved."))
            items.append((name, doc_id, _failing(err)))
        else:
            items.append((name, doc_id, lambda p=Path(e["path"]), n=name, d=doc_id:
                          limits.load_path(p, max_mb=max_mb, doc_id=d, display=n)))
    check_batch_size(len(items), "uploaded files")
    return items


def plan_items(paths: Iterable[Path] = (), saved: Iterable[dict] = (), roots: list[Path] | None = None) -> list[Item]:
    """The files a batch will ingest, in order: (display name, doc id, loader). Cheap: nothing is read yet.
    `roots`: for paths typed in the UI, the allowed folders (core.paths.path_roots()); None = no limit (CLI)."""
    from core.config import get_settings
    max_mb = get_settings().max_upload_mb
    return _items_from_paths(paths, max_mb, roots) + _items_from_saved(saved, max_mb)


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
    # Every file is parsed in a child process with a per-file time and memory limit (core.limits).
    with limits.active_sandbox():
        return _run_batch(items, collection, chunker_name, size, overlap, progress, embedder_name, on_result)


def _run_batch(items: list[Item], collection: str, chunker_name: str | None, size: int | None, overlap: int | None,
               progress: Callable[[IngestProgress], None] | None, embedder_name: str | None,
               on_result: Callable[[int, FileResult], None] | None = None) -> list[FileResult]:
    store.validate_collection(collection)
    emb = get_embedder(embedder_name)
    ch = get_chunker(chunker_name, size, overlap, max_tokens=emb.max_tokens)
    table, cfg = store.get_index(collection, emb.name, emb.dimension, ch.name, ch.size, ch.overlap)
    total = len(items)

    fractions = [0.0] * total

    def report(i: int, name: str, stage: str, frac: float, msg: str = "") -> None:
        fractions[i] = max(fractions[i], frac)
        if progress:
            progress(IngestProgress(name, i, total, stage, frac, sum(fractions) / total if total else 1.0, msg))

    results: list[FileResult | None] = [None] * total
    changed = False
    group: list[_Prepared] = []      # documents chunked and waiting for one shared embedding call

    def finished(i: int, res: FileResult) -> None:
        results[i] = res
        if on_result:
            on_result(i, res)

    def fail(i: int, name: str, res: FileResult, exc: BaseException, t0: float | None) -> None:
        if isinstance(exc, WorkbenchError):
            res.error, res.error_type = str(exc), type(exc).__name__
        else:
            log.error("ingest of %s failed: %r", name, exc)
            res.error, res.error_type = f"{name}: unexpected error ({type(exc).__name__}: {exc})", type(exc).__name__
        res.ok = False
        if t0 is not None:
            res.seconds += time.perf_counter() - t0
        finished(i, res)
        report(i, name, "error", 1.0, res.error)

    def flush() -> None:
        nonlocal changed
        if not group:
            return
        _embed_group(group, emb, report)
        for prep in group:
            report(prep.index, prep.res.file, "store", 0.95, "writing")
        for prep, exc in _store_group(group, table, emb):
            if exc is None:
                changed = True
                finished(prep.index, prep.res)
                report(prep.index, prep.res.file, "done", 1.0, f"{prep.res.chunks} chunks")
            else:
                fail(prep.index, prep.res.file, prep.res, exc, None)
        group.clear()

    # Reading (the parse sandbox) and looking up each document's stored rows run on a thread, ahead of the
    # chunk/embed/store loop here, so they overlap the embedding of the previous documents. Progress and
    # results are still reported from this thread, in batch order.
    with _Prefetch(items, table) as ahead:
        for i, (name, doc_id, _) in enumerate(items):
            res = FileResult(file=name, doc_id=doc_id)
            report(i, name, "load", 0.0, "reading")
            doc, state, exc, seconds = ahead.get(i)
            res.seconds += seconds
            if exc is not None:
                if not isinstance(exc, Exception):
                    raise exc               # KeyboardInterrupt and the like end the batch, as before
                fail(i, name, res, exc, None)
                continue
            t0 = time.perf_counter()
            try:
                prep = _prepare(doc, table, emb, ch, res, i, state)
                res.seconds += time.perf_counter() - t0
                if prep is None:
                    finished(i, res)
                    report(i, name, "skipped", 1.0, "unchanged")
                    continue
                report(i, name, "chunk", 0.1, f"{len(prep.pieces)} chunks, {len(prep.todo)} to embed")
                group.append(prep)
                if sum(len(p.todo) for p in group) >= GROUP_CHUNKS:
                    flush()
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
                fail(i, name, res, exc, t0)
        flush()
    if changed:
        store.maintain(table)           # indexes up to date, old table versions cleaned up (under the lock)
    return [r for r in results if r is not None]


PREFETCH_DOCS = 32      # documents read ahead of the embedding loop (bounds the memory of waiting texts)


class _Prefetch:
    """Reads the batch's documents (limits.load_*, i.e. the parse sandbox) and their stored state
    (store.doc_state) on one thread, in order, at most PREFETCH_DOCS ahead of the consumer. Chunking stays on
    the consumer's thread: the chunker uses the embedder's tokenizer, which must not run while encode() does.
    get(i) -> (doc, state, exception, seconds spent on it)."""

    def __init__(self, items: list[Item], table):
        import contextvars
        import queue
        import threading

        self.items, self.table = items, table
        self._q: "queue.Queue" = queue.Queue(maxsize=PREFETCH_DOCS)
        self._stop = threading.Event()
        ctx = contextvars.copy_context()     # the active parse sandbox is a context variable
        self._thread = threading.Thread(target=ctx.run, args=(self._work,), name="ingest-prefetch", daemon=True)

    def __enter__(self) -> "_Prefetch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import queue
        self._stop.set()
        while self._thread.is_alive():     # unblock a producer waiting on a full queue
            try:
                self._q.get(timeout=0.05)
            except queue.Empty:
                pass

    def _put(self, entry) -> bool:
        import queue
        while not self._stop.is_set():
            try:
                self._q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        seen: dict[str, str] = {}
        for i, (name, doc_id, load) in enumerate(self.items):
            if self._stop.is_set():
                return
            t0 = time.perf_counter()
            doc = state = exc = None
            try:
                if doc_id in seen:
                    raise IngestError(f"{name}: another file in this batch ({seen[doc_id]}) has the same name "
                                      f"{doc_id!r}; rename one of them.")
                seen[doc_id] = name
                doc = load()
                state = store.doc_state(self.table, doc.doc_id)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer, which records it for this file
                exc = e
            if not self._put((i, doc, state, exc, time.perf_counter() - t0)):
                return

    def get(self, i: int):
        entry = self._q.get()
        assert entry[0] == i, (entry[0], i)       # one producer, in order
        return entry[1:]


@dataclass
class _Prepared:
    index: int
    doc: loaders.Document
    pieces: list
    ids: list[str]
    todo: list[int]                 # positions whose vectors must be computed
    vectors: list
    res: FileResult


def _prepare(doc: loaders.Document, table, emb, ch, res: FileResult, index: int,
             state: dict | None = None) -> "_Prepared | None":
    """Chunk a document and find which chunks need embedding; None when the document is unchanged.
    `state`: store.doc_state of the document when already read."""
    if state is None:
        state = store.doc_state(table, doc.doc_id)
    if state["rows"] and state["hashes"] == {doc.content_hash}:
        res.ok, res.skipped_unchanged, res.chunks = True, True, state["rows"]
        return None
    pieces = ch.chunk(doc.text, emb, kind=doc.kind)
    if not pieces:
        raise EmptyDocument(f"{doc.display_name}: no text to index after cleaning.")
    ids = [chunk_id(doc.doc_id, p.text, p.position) for p in pieces]
    reuse = state["vectors"]
    todo = [k for k, cid in enumerate(ids) if cid not in reuse]
    return _Prepared(index, doc, pieces, ids, todo, [reuse.get(cid) for cid in ids], res)


def _embed_group(group: list["_Prepared"], emb, report) -> None:
    """One embedding pass over the pending chunks of several documents (large batches are ~2x faster on CPU
    than one small call per document), longest first (texts of similar length share a padded batch, as in
    SentenceTransformer.encode's own sort), in slices so progress keeps moving."""
    jobs = [(p, k) for p in group for k in p.todo]
    if not jobs:
        return
    jobs.sort(key=lambda j: -j[0].pieces[j[1]].tokens)
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


def _rows(prep: "_Prepared", emb, measured: bool):
    """The document's rows as an Arrow table of the chunk schema."""
    import numpy as np
    import pyarrow as pa

    doc, pieces, res = prep.doc, prep.pieces, prep.res
    now = time.time()
    mat = np.asarray(np.stack([np.asarray(v, dtype=np.float32) for v in prep.vectors]), dtype=np.float32)
    return pa.table({
        "id": prep.ids, "doc_id": [doc.doc_id] * len(pieces), "source": [doc.display_name] * len(pieces),
        "position": [p.position for p in pieces], "start": [p.start for p in pieces], "end": [p.end for p in pieces],
        "heading": [p.heading for p in pieces], "text": [p.text for p in pieces], "tokens": [p.tokens for p in pieces],
        "doc_hash": [doc.content_hash] * len(pieces), "ingested_at": [now] * len(pieces),
        # measured seconds so far for this document: reading + chunking + its share of the embedding pass
        **({"ingest_s": [round(res.seconds, 4)] * len(pieces)} if measured else {}),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1), type=pa.float32()), emb.dimension),
    }, schema=store.chunk_schema(emb.dimension, measured))


def _stored(prep: "_Prepared") -> None:
    res, pieces = prep.res, prep.pieces
    res.ok, res.chunks, res.tokens, res.embedded = True, len(pieces), sum(p.tokens for p in pieces), len(prep.todo)


def _store_group(group: list["_Prepared"], table, emb) -> list[tuple["_Prepared", BaseException | None]]:
    """Write a whole group of documents with ONE merge_insert (store.replace_documents: one commit, each
    document all or nothing). If that fails, every document is written on its own, so a bad one only fails
    itself. The write's time is shared among the documents by rows. Returns (document, error or None) in order."""
    import pyarrow as pa

    measured = store.has_ingest_times(table)    # tables from before ingest times were recorded have no column
    t0 = time.perf_counter()
    out: list[tuple[_Prepared, BaseException | None]] = []
    tables, ok = [], []
    for prep in group:
        try:
            tables.append(_rows(prep, emb, measured))
            ok.append(prep)
        except Exception as exc:  # noqa: BLE001 - this document fails, the group goes on
            out.append((prep, exc))
    if ok:
        try:
            store.replace_documents(table, [p.doc.doc_id for p in ok], pa.concat_tables(tables))
            for prep in ok:
                _stored(prep)
            out.extend((p, None) for p in ok)
        except Exception as exc:  # noqa: BLE001 - retry one by one: isolate the bad document
            log.warning("group write of %d documents failed (%r); writing them one by one", len(ok), exc)
            for prep, data in zip(ok, tables):
                try:
                    store.replace_document(table, prep.doc.doc_id, data)
                    _stored(prep)
                    out.append((prep, None))
                except Exception as exc1:  # noqa: BLE001 - one bad file never stops the batch
                    out.append((prep, exc1))
    share = (time.perf_counter() - t0) / max(1, sum(len(p.pieces) for p in group))
    for prep in group:
        prep.res.seconds += share * len(prep.pieces)
    order = {id(p): n for n, p in enumerate(group)}
    return sorted(out, key=lambda e: order[id(e[0])])
