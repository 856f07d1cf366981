"""Ingest jobs: the "ingest" kind of the job layer (core.jobs) -- what to ingest, and how its files are shown.

A job ingests files, folders and/or uploads into one collection in its own worker process, so a page refresh, a
closed tab or an app restart loses nothing. Its folder (<data>/jobs/ingest/<id>/, layout in core.jobs.folder)
keeps the uploads under sanitised names in inputs/<n>/<name> until the job ends; status.json carries one item
per file (name, doc_id, stage, fraction, message, then its FileResult). One ingest per collection runs at a time
(the kind's resource lock); a second one waits, queued.

"succeeded" means the batch ran to its end; files that could not be ingested carry their error in their item
(`failed` counts them). "failed" means the job itself stopped (bad settings, embedder missing). Nothing here
imports torch: the page can start and watch jobs without loading the embedder.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import jobs as joblayer
from core.config import get_settings
from core.errors import FileTooLarge, JobError
from core.fileio import file_lock
from core.jobs import states
from core.rag import loaders, store

KIND = "ingest"
STATES = states.STATES
ACTIVE = states.ACTIVE
TERMINAL = states.TERMINAL


def jobs_root() -> Path:
    return joblayer.root(KIND)


def job_dir(job_id: str) -> Path:
    return joblayer.read(job_id, KIND, reconcile=False).dir


def collection_lock_path(collection: str) -> Path:
    """The lock an ingest job holds on its collection while it writes (one ingest per collection at a time)."""
    return joblayer.resource_lock_path(KIND, store.validate_collection(collection))


# --- the job as the UI sees it --------------------------------------------------------------------------------------
@dataclass
class IngestJob:
    id: str
    collection: str
    state: str
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    label: str = ""
    message: str = ""
    error: str = ""
    overall: float = 0.0
    files: list[dict] = field(default_factory=list)    # name, doc_id, stage, fraction, message, result|None
    settings: dict = field(default_factory=dict)
    cancel_requested: bool = False

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def results(self) -> list[dict]:
        """The FileResult dicts of the files finished so far (in batch order)."""
        return [f["result"] for f in self.files if f.get("result")]

    @property
    def ok(self) -> int:
        return sum(1 for r in self.results if r.get("ok"))

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.get("ok"))

    @property
    def done(self) -> int:
        return len(self.results)

    @property
    def seconds(self) -> float:
        if not self.started:
            return 0.0
        return (self.finished or time.time()) - self.started

    def to_dict(self) -> dict:
        return {"id": self.id, "collection": self.collection, "state": self.state, "created": self.created,
                "started": self.started, "finished": self.finished, "pid": self.pid, "label": self.label,
                "message": self.message, "error": self.error, "overall": self.overall, "files": self.files,
                "settings": self.settings, "ok": self.ok, "failed": self.failed}


def from_job(job: joblayer.Job) -> IngestJob:
    st, sp = job.status, job.spec
    files = [dict(f) for f in st.get("items") or []]
    if not job.active:                          # files the job never reached
        for f in files:
            if not f.get("result"):
                f["stage"] = "not ingested"
    return IngestJob(id=job.id, collection=sp.get("collection", ""), state=job.state, created=job.created,
                     started=job.started, finished=job.finished, pid=job.pid, label=job.name, message=job.message,
                     error=job.error, overall=job.progress, files=files,
                     settings={k: sp.get(k) for k in ("chunker", "chunk_size", "overlap", "embedder")},
                     cancel_requested=job.cancel_requested)


# --- starting ---------------------------------------------------------------------------------------------------------
def _save_uploads(folder: Path, uploads: list[tuple[str, bytes]], max_mb: int) -> list[dict]:
    """Write uploads under sanitised names (one sub-folder each, so equal names cannot overwrite each other).
    A file over the size limit is not written; its entry carries the error. Paths are relative to the job."""
    out = []
    for i, (name, data) in enumerate(uploads):
        safe = loaders.sanitize_name(name)
        entry = {"name": str(name), "doc_id": safe, "path": None, "error": ""}
        if len(data) > max_mb * 1024 * 1024:
            entry["error"] = str(FileTooLarge(f"{name}: {len(data) / 1024 / 1024:.1f} MB is over the {max_mb} MB "
                                              "limit. Split the document or raise WORKBENCH_MAX_UPLOAD_MB."))
        else:
            sub = folder / f"{i:04d}"
            sub.mkdir(parents=True, exist_ok=True)
            tmp = sub / f".{safe}.part"
            tmp.write_bytes(data)
            os.replace(tmp, sub / safe)
            entry["path"] = f"inputs/{i:04d}/{safe}"
        out.append(entry)
    return out


def start_ingest_job(paths: list[Path | str] | None = None, collection: str = "", chunker: str | None = None,
                     chunk_size: int | None = None, overlap: int | None = None, embedder: str | None = None,
                     uploads: list[tuple[str, bytes]] | None = None, label: str = "") -> str:
    """Start a worker process that ingests `paths` (files or folders) and/or `uploads` [(original name, bytes)]
    into `collection`. Returns the job id at once; read progress with read_job(job_id)."""
    collection = store.validate_collection(collection)
    paths = [str(Path(p).expanduser().resolve()) for p in (paths or [])]
    uploads = list(uploads or [])
    if not paths and not uploads:
        raise JobError("Nothing to ingest: give files, a folder or uploads.")
    for p in paths:
        if not Path(p).exists():
            raise JobError(f"{p}: no such file or folder on this machine.")
    with joblayer.creating(KIND) as new:
        saved = _save_uploads(new.inputs, uploads, get_settings().max_upload_mb) if uploads else []
        new.name = label or _default_label(paths, saved)
        new.spec = {"collection": collection, "paths": paths, "uploads": saved, "chunker": chunker,
                    "chunk_size": chunk_size, "overlap": overlap, "embedder": embedder}
        # the file list is known before the worker starts (folders are only listed here, nothing is read)
        planned = [(f.name, doc_id) for f, doc_id in loaders.expand_paths([Path(p) for p in paths])]
        new.status = {"items": [_item(name, doc_id) for name, doc_id in planned + [(e["name"], e["doc_id"])
                                                                                  for e in saved]],
                      "progress": 0.0, "message": "starting the ingest worker"}
    return new.id


def _item(name: str, doc_id: str) -> dict:
    return {"name": name, "doc_id": doc_id, "stage": "waiting", "fraction": 0.0, "message": "", "result": None}


def _default_label(paths: list[str], saved: list[dict]) -> str:
    parts = []
    if paths:
        parts.append(Path(paths[0]).name + (f" (+{len(paths) - 1})" if len(paths) > 1 else ""))
    if saved:
        parts.append(f"{len(saved)} uploaded file" + ("s" if len(saved) != 1 else ""))
    return ", ".join(parts)


# --- the kind's run function (in the worker process) -----------------------------------------------------------------
def run(spec: dict, report) -> dict:
    from core.rag import ingest

    collection = spec["collection"]
    uploads = [{**e, "path": str(report.dir / e["path"]) if e.get("path") else None}
               for e in spec.get("uploads") or []]
    items = ingest.plan_items([Path(p) for p in spec.get("paths") or []], uploads)
    files = [_item(name, doc_id) for name, doc_id, _ in items]
    report(items=files, progress=0.0, message="loading the embedding model", force=True)
    report.log(f"ingest job {report.job_id}: {len(items)} files into {collection}")

    def progress(p: ingest.IngestProgress) -> None:
        f = files[p.index]
        f.update(stage=p.stage, fraction=round(p.file_fraction, 4), message=p.message)
        report(force=p.stage in ("done", "skipped", "error"), progress=round(p.overall_fraction, 4),
               message=f"{p.file}: {p.message or p.stage}")

    def on_result(i: int, r) -> None:
        files[i].update(result=r.to_dict(), fraction=1.0,
                        stage="unchanged" if r.skipped_unchanged else ("done" if r.ok else "error"))
        report(items=files, force=True, check=False)

    results = ingest.run_items(items, collection, spec.get("chunker"), spec.get("chunk_size"), spec.get("overlap"),
                               progress=progress, embedder=spec.get("embedder"), on_result=on_result)
    ok = sum(r.ok for r in results)
    report(items=files, progress=1.0, message=f"{ok} of {len(results)} files ingested", check=False)
    for r in results:
        report.log(f"{'ok' if r.ok else 'FAILED':7} {r.file}: {r.error or f'{r.chunks} chunks'}")
    return {"ok": ok, "failed": len(results) - ok}


# --- reading ----------------------------------------------------------------------------------------------------------
def read_job(job_id: str, reconcile: bool = True) -> IngestJob:
    """The job's current state (a job whose worker died is marked interrupted first)."""
    return from_job(joblayer.read(job_id, KIND, reconcile=reconcile))


def list_jobs(collection: str | None = None, limit: int | None = None) -> list[IngestJob]:
    """Ingest jobs, newest first (reconciled), optionally of one collection."""
    where = (lambda j: j.spec.get("collection") == collection) if collection else None
    return [from_job(j) for j in joblayer.list_jobs(KIND, where=where, limit=limit)]


def reconcile() -> list[str]:
    """Mark every queued/running job whose worker is gone. Returns the ids it changed."""
    return joblayer.reconcile(KIND)


def active_jobs(collection: str | None = None) -> list[IngestJob]:
    return [j for j in list_jobs(collection) if j.active]


def cancel(job_id: str, wait: bool = True) -> IngestJob:
    """Stop a queued or running ingest job. Files already finished stay in the index (each file's rows are
    written in one atomic merge), the rest are not ingested."""
    return from_job(joblayer.cancel(job_id, KIND, wait=wait))


def wait(job_id: str, timeout: float = 600.0, poll: float = 0.25) -> IngestJob:
    """Block until the job ends (for the CLI, tests and other core packages). Raises JobError on timeout."""
    return from_job(joblayer.wait(job_id, KIND, timeout=timeout, poll=poll))


def ensure_sample_job(retry_failed: bool = False) -> str | None:
    """Start ingesting sample_docs/knowledge into the sample collection unless it already has documents or a job
    is already doing it (safe from several sessions and processes at once). After a failed, cancelled or
    interrupted sample job it starts again only with `retry_failed` (so a broken setup does not restart a worker
    on every page visit). Returns the id of the job that is indexing it, or None."""
    from core.rag.api import sample_paths

    name, folder, _ = sample_paths()
    if not folder.is_dir():
        return None
    with file_lock(jobs_root() / ".locks" / "sample-start.lock"):
        found = list_jobs(name)
        for j in found:
            if j.active:
                return j.id
        cfg = store.active_configs().get(name)
        if cfg is not None:
            try:
                if store.open_table(cfg.table_name).count_rows() > 0:
                    return None
            except Exception:  # noqa: BLE001 - a missing table: ingest again
                pass
        if found and found[0].state in (states.FAILED, states.CANCELLED, states.INTERRUPTED) and not retry_failed:
            return None
        return start_ingest_job([folder], name, label="sample documents")
