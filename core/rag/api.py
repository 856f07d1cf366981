"""The stable RAG API the pages, the CLI and the Compare package code against. Import from here."""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import CollectionNotFound
from core.rag import store
from core.rag.answer import AnswerResult, AnswerStream, answer, default_prompt  # noqa: F401
from core.rag.chunkers import (DEFAULT_CHUNKER, DEFAULT_OVERLAP, DEFAULT_SIZE, chunker_descriptions,  # noqa: F401
                               chunker_names, get_chunker)
from core.rag.context import CitationCheck, build_context, check_citations, citation_spans  # noqa: F401
from core.rag.embedders import PACKAGED as DEFAULT_EMBEDDER, EmbedderInfo, embedder_options, get_embedder  # noqa: F401
from core.rag.embedders import describe as describe_embedder  # noqa: F401
from core.rag.evaluate import EvalReport, evaluate, load_questions  # noqa: F401
from core.rag.evaluate import parse_questions as parse_eval_questions  # noqa: F401
from core.rag.ingest import FileResult, IngestProgress, ingest_paths, ingest_uploads  # noqa: F401
from core.rag.retriever import MODES, RetrievedChunk, Retrieval, only_found_by, retrieve, retrieve_modes  # noqa: F401

SAMPLE_COLLECTION = "support"


@dataclass
class CollectionInfo:
    name: str
    embedder: str
    dimension: int
    chunker: str
    chunk_size: int
    overlap: int
    rows: int
    documents: int
    table_version: int
    table_name: str
    ingest_seconds: float | None = None    # measured ingest time of the documents below (None: not recorded)
    n_docs: int = 0                        # documents whose ingest time was measured
    disk_bytes: int | None = None      # the index table's folder on disk (None on an object store)

    @property
    def chunk_settings(self) -> str:
        return f"{self.chunker} {self.chunk_size}/{self.overlap} tokens"

    def to_dict(self) -> dict:
        return asdict(self)


def _info(cfg: store.IndexConfig) -> CollectionInfo:
    t = store.open_table(cfg.table_name)
    rows = t.count_rows()
    docs = store.list_documents(t) if rows else []
    timed = [d["ingest_s"] for d in docs if d.get("ingest_s") is not None]
    return CollectionInfo(cfg.collection, cfg.embedder, cfg.dimension, cfg.chunker, cfg.chunk_size, cfg.overlap,
                          rows, len(docs), t.version, cfg.table_name,
                          ingest_seconds=round(sum(timed), 4) if timed else None, n_docs=len(timed),
                          disk_bytes=store.table_disk_bytes(cfg.table_name))


def list_collections() -> list[CollectionInfo]:
    """Every collection with the index it currently reads (sorted by name)."""
    out = []
    for name, cfg in sorted(store.active_configs().items()):
        try:
            out.append(_info(cfg))
        except CollectionNotFound:
            continue
    return out


def list_indexes(collection: str) -> list[CollectionInfo]:
    """Every index (embedder x chunker settings) built for a collection, the active one first."""
    cfgs = [c for c in store.list_index_configs() if c.collection == collection]
    if not cfgs:
        raise CollectionNotFound(f"No collection named {collection!r}.")
    return [_info(c) for c in sorted(cfgs, key=lambda c: -c.activated)]


def get_collection(collection: str) -> CollectionInfo:
    return _info(store.get_active(collection))


def use_index(collection: str, chunker: str, chunk_size: int, overlap: int, embedder: str | None = None) -> CollectionInfo:
    """Make the collection read the index built with these settings (created empty if it does not exist)."""
    emb = get_embedder(embedder)
    ch = get_chunker(chunker, chunk_size, overlap, max_tokens=emb.max_tokens)
    _, cfg = store.get_index(collection, emb.name, emb.dimension, ch.name, ch.size, ch.overlap, activate=True)
    return _info(cfg)


def list_documents(collection: str) -> list[dict]:
    cfg = store.get_active(collection)
    return store.list_documents(store.open_table(cfg.table_name))


def document_chunks(collection: str, doc_id: str) -> list[dict]:
    cfg = store.get_active(collection)
    return store.document_chunks(store.open_table(cfg.table_name), doc_id)


def delete_document(collection: str, doc_id: str) -> int:
    """Delete a document's chunks from the collection's active index (under the collection's write lock, so it
    waits for an ingest's write in progress). Returns the number of rows deleted."""
    with store.collection_lock(collection):
        cfg = store.get_active(collection)
        table = store.open_table(cfg.table_name)
        n = store.delete_document(table, doc_id)
        if n:
            store.cleanup_versions(table)
    return n


def drop_collection(collection: str) -> int:
    return store.drop_collection(collection)


def scenario() -> dict:
    """The scenario file's raw mapping (core.scenario is its one reader)."""
    from core.scenario import load_scenario
    return load_scenario().raw


def sample_paths() -> tuple[str, Path, Path]:
    """(collection, knowledge folder, questions file) of the sample scenario."""
    from core.scenario import load_scenario
    sc = load_scenario()
    return sc.collection or SAMPLE_COLLECTION, sc.knowledge_dir, sc.questions_path


_SAMPLE_LOCK = threading.Lock()


def ensure_sample_collection(progress=None) -> str:
    """Ingest sample_docs/knowledge into the "support" collection unless it already has documents (idempotent;
    safe to call from several sessions at once), in this process. If an ingest job (core.rag.jobs) is indexing
    the collection right now, it waits for that job instead. Returns the collection name."""
    from core.rag import jobs

    name, folder, _ = sample_paths()
    for job in jobs.active_jobs(name):
        jobs.wait(job.id, timeout=1800)
    with _SAMPLE_LOCK:
        cfg = store.active_configs().get(name)
        if cfg is not None and store.open_table(cfg.table_name).count_rows() > 0:
            return name
        ingest_paths([folder], name, progress=progress)
    return name
