"""Ingest jobs: each long ingest runs in its own process (`python -m core.rag.worker JOB_DIR`) and reports
progress through files, so a page refresh, a closed tab or an app restart loses nothing.

Job folder `<data>/jobs/ingest/<job_id>/`:
    spec.json     what to ingest: collection, chunker settings, embedder, folder/file paths, saved uploads
    inputs/       uploads, saved under sanitised names (inputs/<n>/<safe name>) before the worker starts
    pid           the worker's process id (written by the starter)
    status.json   state queued|running|succeeded|failed, pid, times, overall progress, one entry per file
                  (stage, fraction, message, then its result: chunks, tokens, seconds, error) -- written
                  atomically (temp file + os.replace), so a reader never sees half a file
    worker.log    the worker's stdout/stderr

"succeeded" means the batch ran to its end; files that could not be ingested carry their error in their entry
(`failed` counts them). "failed" means the job itself stopped (bad settings, embedder missing, worker killed).
One worker per collection ingests at a time (a lock file under jobs/ingest/locks/); a second one waits, queued.
Nothing here imports torch: the page can start and watch jobs without loading the embedder.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.config import PROJECT_ROOT, get_settings
from core.errors import FileTooLarge, JobError
from core.fileio import file_lock, read_json, write_json_atomic
from core.rag import loaders, store

STATES = ("queued", "running", "succeeded", "failed")
ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed")
WORKER_MODULE = "core.rag.worker"
START_GRACE_S = 120           # a job with no live worker after this long (since creation) is failed by reconcile
_CHILDREN: dict[int, subprocess.Popen] = {}     # workers this process started (reaped by reconcile)


# --- files ------------------------------------------------------------------------------------------------------
def jobs_root() -> Path:
    return get_settings().data_dir / "jobs" / "ingest"


def job_dir(job_id: str) -> Path:
    if not job_id or "/" in job_id or job_id.startswith("."):
        raise JobError(f"{job_id!r} is not an ingest job id.")
    return jobs_root() / job_id


def collection_lock_path(collection: str) -> Path:
    return jobs_root() / "locks" / f"{store.validate_collection(collection)}.lock"


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


def _job_from(job_id: str, status: dict | None, spec: dict | None) -> IngestJob:
    st = status or {}
    sp = spec or {}
    return IngestJob(id=job_id, collection=st.get("collection") or sp.get("collection", ""),
                     state=st.get("state", "queued"), created=st.get("created") or sp.get("created") or 0.0,
                     started=st.get("started"), finished=st.get("finished"), pid=st.get("pid"),
                     label=st.get("label") or sp.get("label", ""), message=st.get("message", ""),
                     error=st.get("error", ""), overall=float(st.get("overall") or 0.0), files=st.get("files") or [],
                     settings={k: sp.get(k) for k in ("chunker", "chunk_size", "overlap", "embedder")})


# --- starting ---------------------------------------------------------------------------------------------------------
def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _save_uploads(folder: Path, uploads: list[tuple[str, bytes]], max_mb: int) -> list[dict]:
    """Write uploads under sanitised names (one sub-folder each, so equal names cannot overwrite each other).
    A file over the size limit is not written; its entry carries the error."""
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
            target = sub / safe
            tmp = sub / f".{safe}.part"
            tmp.write_bytes(data)
            os.replace(tmp, target)
            entry["path"] = str(target)
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
    settings = get_settings()
    job_id = new_job_id()
    folder = jobs_root() / job_id
    folder.mkdir(parents=True)
    saved = _save_uploads(folder / "inputs", uploads, settings.max_upload_mb) if uploads else []
    now = time.time()
    spec = {"id": job_id, "kind": "ingest", "collection": collection, "paths": paths, "uploads": saved,
            "chunker": chunker, "chunk_size": chunk_size, "overlap": overlap, "embedder": embedder,
            "label": label or _default_label(paths, saved), "created": now}
    write_json_atomic(folder / "spec.json", spec)
    # the file list is known before the worker starts (folders are only listed here, nothing is read)
    planned = [(f.name, doc_id) for f, doc_id in loaders.expand_paths([Path(p) for p in paths])]
    files = [{"name": name, "doc_id": doc_id, "stage": "waiting", "fraction": 0.0, "message": "", "result": None}
             for name, doc_id in planned + [(e["name"], e["doc_id"]) for e in saved]]
    write_json_atomic(folder / "status.json", {
        "id": job_id, "collection": collection, "state": "queued", "created": now, "label": spec["label"],
        "message": "starting the ingest worker", "overall": 0.0, "files": files, "pid": None})
    log = open(folder / "worker.log", "ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(folder)], cwd=str(PROJECT_ROOT),
                                env=dict(os.environ), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        _finish_failed(folder, f"The ingest worker could not start: {exc}")
        raise JobError(f"The ingest worker could not start: {exc}") from exc
    finally:
        log.close()
    _CHILDREN[proc.pid] = proc
    (folder / "pid").write_text(str(proc.pid), encoding="utf-8")
    return job_id


def _default_label(paths: list[str], saved: list[dict]) -> str:
    parts = []
    if paths:
        parts.append(Path(paths[0]).name + (f" (+{len(paths) - 1})" if len(paths) > 1 else ""))
    if saved:
        parts.append(f"{len(saved)} uploaded file" + ("s" if len(saved) != 1 else ""))
    return ", ".join(parts)


def _finish_failed(folder: Path, reason: str) -> None:
    st = read_json(folder / "status.json", {}) or {}
    st.update(state="failed", error=reason, message=reason, finished=time.time())
    write_json_atomic(folder / "status.json", st)


# --- reading ----------------------------------------------------------------------------------------------------------
def _pid_of(folder: Path, status: dict) -> int | None:
    pid = status.get("pid")
    if not pid:
        try:
            pid = int((folder / "pid").read_text().strip())
        except (OSError, ValueError):
            return None
    return int(pid)


def _alive(pid: int) -> bool:
    """Is `pid` a live ingest worker? (reaps our own finished children; rejects zombies and reused pids)."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        return WORKER_MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return True            # no /proc (not Linux): trust os.kill


def _log_tail(folder: Path, n: int = 8) -> str:
    try:
        with open(folder / "worker.log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join(x for x in lines[-n:] if x.strip())


def _reconcile_one(folder: Path, status: dict) -> dict:
    if status.get("state") not in ACTIVE:
        return status
    pid = _pid_of(folder, status)
    if pid is not None and _alive(pid):
        return status
    if pid is None and time.time() - float(status.get("created") or 0) < START_GRACE_S:
        return status          # being started right now
    fresh = read_json(folder / "status.json", status) or status   # it may have just finished
    if fresh.get("state") not in ACTIVE:
        return fresh
    tail = _log_tail(folder)
    reason = (f"The ingest worker (pid {pid}) stopped before finishing (killed, out of memory, or the app was "
              "stopped). Files finished before that are in the index; ingest the batch again for the rest."
              if pid else "The ingest worker never started.")
    if tail:
        reason += f" Last log lines:\n{tail}"
    fresh.update(state="failed", error=reason, message="worker stopped", finished=time.time())
    for f in fresh.get("files") or []:
        if not f.get("result"):
            f["stage"] = "not ingested"
    write_json_atomic(folder / "status.json", fresh)
    return fresh


def cancel(job_id: str) -> IngestJob:
    """Stop a queued or running ingest job. Files already finished stay in the index (each file's rows are
    written in one atomic merge), the rest are marked not ingested."""
    import signal

    folder = job_dir(job_id)
    status = read_json(folder / "status.json", {}) or {}
    if status.get("state") in ACTIVE:
        pid = _pid_of(folder, status)
        if pid is not None and _alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)      # the worker leads its own session (start_new_session=True)
            except (ProcessLookupError, PermissionError):
                pass
            deadline = time.time() + 10
            while _alive(pid) and time.time() < deadline:
                time.sleep(0.05)
        fresh = read_json(folder / "status.json", status) or status
        if fresh.get("state") in ACTIVE:
            fresh.update(state="cancelled", message="cancelled by the user", finished=time.time())
            for f in fresh.get("files") or []:
                if not f.get("result"):
                    f["stage"] = "not ingested"
            write_json_atomic(folder / "status.json", fresh)
    return read_job(job_id, reconcile=False)


def read_job(job_id: str, reconcile: bool = True) -> IngestJob:
    """The job's current state from its status.json (a job whose worker died is marked failed first)."""
    folder = job_dir(job_id)
    status = read_json(folder / "status.json")
    if status is None:
        if not folder.is_dir():
            raise JobError(f"No ingest job {job_id!r}.")
        status = {}
    if reconcile:
        status = _reconcile_one(folder, status)
    return _job_from(job_id, status, read_json(folder / "spec.json", {}))


def list_jobs(collection: str | None = None, limit: int | None = None) -> list[IngestJob]:
    """Ingest jobs, newest first (reconciled), optionally of one collection."""
    root = jobs_root()
    if not root.is_dir():
        return []
    out = []
    for d in sorted((p for p in root.iterdir() if p.is_dir() and p.name != "locks"), key=lambda p: p.name,
                    reverse=True):
        status = read_json(d / "status.json")
        if status is None:
            continue
        if collection and status.get("collection") != collection:
            continue
        status = _reconcile_one(d, status)
        out.append(_job_from(d.name, status, read_json(d / "spec.json", {})))
        if limit and len(out) >= limit:
            break
    return out


def reconcile() -> list[str]:
    """Mark every queued/running job whose worker is gone as failed. Returns the ids it changed."""
    root = jobs_root()
    changed = []
    if not root.is_dir():
        return changed
    for d in root.iterdir():
        status = read_json(d / "status.json") if d.is_dir() else None
        if status and status.get("state") in ACTIVE and _reconcile_one(d, status).get("state") not in ACTIVE:
            changed.append(d.name)
    return changed


def active_jobs(collection: str | None = None) -> list[IngestJob]:
    return [j for j in list_jobs(collection) if j.active]


def wait(job_id: str, timeout: float = 600.0, poll: float = 0.25) -> IngestJob:
    """Block until the job ends (for the CLI, tests and other core packages). Raises JobError on timeout."""
    deadline = time.time() + timeout
    while True:
        job = read_job(job_id)
        if not job.active:
            return job
        if time.time() > deadline:
            raise JobError(f"Ingest job {job_id} did not finish within {timeout:.0f} s (it keeps running).")
        time.sleep(poll)


def ensure_sample_job(retry_failed: bool = False) -> str | None:
    """Start ingesting sample_docs/knowledge into the sample collection unless it already has documents or a job
    is already doing it (safe from several sessions and processes at once). After a failed sample job it starts
    again only with `retry_failed` (so a broken setup does not restart a worker on every page visit).
    Returns the id of the job that is indexing it, or None."""
    from core.rag.api import sample_paths

    name, folder, _ = sample_paths()
    if not folder.is_dir():
        return None
    with file_lock(jobs_root() / "locks" / "sample-start.lock"):
        jobs = list_jobs(name)
        for j in jobs:
            if j.active:
                return j.id
        cfg = store.active_configs().get(name)
        if cfg is not None:
            try:
                if store.open_table(cfg.table_name).count_rows() > 0:
                    return None
            except Exception:  # noqa: BLE001 - a missing table: ingest again
                pass
        if jobs and jobs[0].state in ("failed", "cancelled") and not retry_failed:
            return None
        return start_ingest_job([folder], name, label="sample documents")
