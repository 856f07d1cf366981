"""Creating, starting, reading, cancelling and waiting for jobs of any kind.

Liveness is the run lock (see core.jobs.lock). Readers reconcile as they read: a job whose status says it was
working but whose lock nobody holds is marked "interrupted" (or "cancelled", if a cancel was asked), and a
cancel request older than its grace period while the lock is still held is escalated to a SIGKILL of the
worker's process group. Reading never starts a process: queued jobs are started by explicit actions only --
creating or starting a job, a worker that ends (it starts the next one of its queue), cancel, and
`reconcile()` (what `python -m core jobs list` calls). Nothing here imports torch.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from core.config import PROJECT_ROOT, get_settings
from core.errors import JobError
from core.fileio import file_lock, write_json_atomic
from core.jobs import lock, states
from core.jobs.folder import RunFolder, new_id, validate_id
from core.jobs.registry import ENV_KINDS, Kind, extra_kinds_env, get_kind, kinds, load_callable
from core.jobs.runtime import STARTING, execute

WORKER_MODULE = "core.jobs.worker"
_CHILDREN: dict[int, subprocess.Popen] = {}       # workers this process started (reaped, so no zombies pile up)


# --- the job as callers see it -----------------------------------------------------------------------------------
@dataclass
class Job:
    id: str
    kind: str
    folder: RunFolder
    status: dict = field(default_factory=dict)
    alive: bool = False                           # a process holds the run lock right now

    @property
    def dir(self) -> Path:
        return self.folder.path

    @property
    def spec(self) -> dict:
        return self.folder.read_spec()

    state = property(lambda self: self.status.get("state", states.QUEUED))
    active = property(lambda self: self.state in states.ACTIVE)
    name = property(lambda self: self.status.get("name") or self.id)
    created = property(lambda self: float(self.status.get("created") or 0.0))
    started = property(lambda self: self.status.get("started"))
    finished = property(lambda self: self.status.get("finished"))
    message = property(lambda self: self.status.get("message") or "")
    error = property(lambda self: self.status.get("error") or "")
    items = property(lambda self: self.status.get("items") or [])
    result = property(lambda self: self.status.get("result"))
    held = property(lambda self: self.state == states.QUEUED and bool(self.status.get("hold")))
    pid = property(lambda self: self.status.get("pid"))

    @property
    def progress(self) -> float:
        try:
            return min(1.0, max(0.0, float(self.status.get("progress") or 0.0)))
        except (TypeError, ValueError):
            return 0.0

    @property
    def seconds(self) -> float:
        if not self.started:
            return 0.0
        return float((self.finished or time.time()) - self.started)

    @property
    def cancel_requested(self) -> bool:
        return self.active and self.folder.cancel_path.exists()

    def log_tail(self, n: int = 20) -> list[str]:
        return self.folder.log_tail(n)

    def to_dict(self) -> dict:
        return {"id": self.id, "run_id": self.id, "kind": self.kind, "dir": str(self.dir), "alive": self.alive,
                "cancel_requested": self.cancel_requested, **self.status}


# --- where jobs live ---------------------------------------------------------------------------------------------
def root(kind: str | Kind) -> Path:
    k = get_kind(kind) if isinstance(kind, str) else kind
    return k.root_dir()


def resource_lock_path(kind: Kind | str, value: str) -> Path:
    """The lock that lets one job per resource value (e.g. per collection) of a kind run at a time."""
    k = get_kind(kind) if isinstance(kind, str) else kind
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(value))[:100] or "_"
    folder = root(k) / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{safe}.lock"


def _locate(job_id: str, kind: str | None = None) -> tuple[Kind, RunFolder]:
    validate_id(job_id)
    candidates = [get_kind(kind)] if kind else sorted(
        kinds().values(), key=lambda k: not job_id.startswith(k.id_prefix + "-"))
    for k in candidates:
        f = RunFolder(root(k) / job_id)
        if f.exists():
            return k, f
    what = f"{get_kind(kind).title or kind} job" if kind else "job"
    raise JobError(f"No {what} {job_id!r}: see `python -m core jobs list`.")


def _view(k: Kind, f: RunFolder, status: dict | None = None) -> Job:
    st = dict(status if status is not None else f.read_status())
    st.setdefault("kind", k.name)
    if not st.get("pid"):
        st["pid"] = f.worker_info().get("pid")
    return Job(f.id, k.name, f, st, lock.is_held(f.lock_path))


# --- reconciling (called by every reader) -------------------------------------------------------------------------
def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            _CHILDREN.pop(pid, None)


def _hint(k: Kind, status: dict) -> str:
    return k.interrupted_hint.format_map(_Blank(status)) if k.interrupted_hint else ""


def _gone_reason(k: Kind, f: RunFolder, status: dict, tail: list[str]) -> str:
    pid = f.worker_info().get("pid") or status.get("pid")
    who = f"The {k.title or k.name} worker" + (f" (pid {pid})" if pid else "")
    reason = (f"{who} stopped before finishing: it crashed or was killed (out of memory, a kill, or the machine "
              "restarted).")
    if k.interrupted_hint:
        reason += " " + _hint(k, status)
    if tail:
        reason += " Last log lines: " + " | ".join(tail[-5:])
    return reason


class _Blank(dict):
    def __missing__(self, key):
        return "?"


def _reconcile(k: Kind, f: RunFolder, status: dict) -> tuple[dict, bool]:
    """(status, changed): mark a job whose worker is gone; escalate an unanswered cancel."""
    if status.get("state") in states.TERMINAL or not status:
        return status, False
    if lock.is_held(f.lock_path):
        _escalate(k, f)
        return status, False
    if status.get("state") == states.QUEUED and not status.get("spawned"):
        return status, False                      # waiting for its turn: no process is expected
    fd = lock.try_acquire(f.lock_path, wait_s=0)
    if fd is None:                                # a worker took it this instant
        return f.read_status(), False
    try:
        fresh = f.read_status()
        if fresh.get("state") in states.TERMINAL or (
                fresh.get("state") == states.QUEUED and not fresh.get("spawned")):
            return fresh, False
        tail = f.log_tail(12)
        if f.cancel_request() is not None:
            fresh.update(state=states.CANCELLED, message="cancelled by the user (the worker was stopped)",
                         error=None)
        else:
            reason = _gone_reason(k, f, fresh, tail)
            hint = _hint(k, fresh)
            fresh.update(state=states.INTERRUPTED, error=reason,
                         message="the worker stopped before finishing" + (f": {hint}" if hint else ""))
        fresh.update(finished=time.time(), log_tail=tail)
        f.remove_inputs()
        f.clear_cancel()
        f.write_status(fresh)
        return fresh, True
    finally:
        lock.release(fd)


def _escalate(k: Kind, f: RunFolder) -> bool:
    """SIGKILL the worker's process group when its cancel request is older than the grace period. Only when the
    lock is still held and the pid is still the process that was started (never a stranger)."""
    req = f.cancel_request()
    if not req or req.get("killed"):
        return False
    grace = float(req.get("grace_s", k.cancel_grace_s))
    if time.time() - float(req.get("requested") or 0) < grace:
        return False
    info = f.worker_info()
    pid = info.get("pid")
    if not pid or info.get("inline") or not lock.is_held(f.lock_path) or not lock.same_process(info):
        return False
    try:
        pgid = os.getpgid(int(pid))
        if pgid == int(pid):                      # the worker leads its own process group (start_new_session)
            os.killpg(pgid, signal.SIGKILL)
        else:
            os.kill(int(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    write_json_atomic(f.cancel_path, {**req, "killed": time.time(), "killed_pid": pid})
    return True


# --- listing and reading ------------------------------------------------------------------------------------------
def _scan(k: Kind) -> list[tuple[RunFolder, dict]]:
    r = root(k)
    if not r.is_dir():
        return []
    out = []
    for d in r.iterdir():
        if d.name.startswith(".") or not d.is_dir():
            continue
        f = RunFolder(d)
        st = f.read_status()
        if st:
            out.append((f, st))
    return out


def read(job_id: str, kind: str | None = None, reconcile: bool = True) -> Job:
    """One job's current state (reconciled first: a dead worker shows as interrupted, never as running)."""
    _reap()
    k, f = _locate(job_id, kind)
    st = f.read_status()
    if reconcile:
        st, _ = _reconcile(k, f, st)
    return _view(k, f, st)


def list_jobs(kind: str | None = None, *, reconcile: bool = True, where: Callable[[Job], bool] | None = None,
              limit: int | None = None) -> list[Job]:
    """Jobs newest first (of one kind or all), reconciled (never started: see reconcile())."""
    _reap()
    out: list[Job] = []
    for k in ([get_kind(kind)] if kind else list(kinds().values())):
        for f, st in _scan(k):
            if reconcile:
                st, _ = _reconcile(k, f, st)
            out.append(_view(k, f, st))
    out.sort(key=lambda j: (j.created, j.id), reverse=True)
    if where:
        out = [j for j in out if where(j)]
    return out[:limit] if limit else out


def reconcile(kind: str | None = None, start: bool = True) -> list[str]:
    """Mark every job whose worker is gone, then (with `start`) start the queued jobs whose turn it is -- the
    supervisor step after an app restart or a crash. Returns the ids it moved to a final state."""
    _reap()
    changed = []
    for k in ([get_kind(kind)] if kind else list(kinds().values())):
        for f, st in _scan(k):
            if _reconcile(k, f, st)[1]:
                changed.append(f.id)
        if start:
            # dispatch reconciles every job again under the queue lock: a worker that died in between (a SIGKILL
            # lands a moment after kill() returns) is marked there, and counts as changed here too
            dispatch(k.name, changed)
    return changed


def queued_waiting(kind: str) -> list[Job]:
    """Queued jobs of a kind that no process serves yet (for a "start the next queued job" action)."""
    return [j for j in list_jobs(kind) if j.state == states.QUEUED and not j.status.get("spawned") and not j.held]


def is_alive(job_id: str, kind: str | None = None) -> bool:
    _, f = _locate(job_id, kind)
    return lock.is_held(f.lock_path)


# --- creating -----------------------------------------------------------------------------------------------------
@dataclass
class NewJob:
    """Filled by the caller inside `creating()`: write inputs under `inputs`, set `spec` and `status`."""
    id: str
    kind: str
    path: Path                      # the folder being built (moved into place at the end)
    spec: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    name: str = ""

    @property
    def inputs(self) -> Path:
        p = self.path / "inputs"
        p.mkdir(parents=True, exist_ok=True)
        return p


@contextlib.contextmanager
def creating(kind: str, *, start: bool = True, name: str = "") -> Iterator[NewJob]:
    """Build a job folder in a hidden temp folder, then move it into place in one rename (readers never see half
    a job), start it (or queue it) and apply retention. Nothing is left behind if the block raises."""
    k = get_kind(kind)
    r = root(k)
    r.mkdir(parents=True, exist_ok=True)
    job_id = new_id(k.id_prefix)
    tmp = r / f".{job_id}.tmp"
    tmp.mkdir()
    new = NewJob(job_id, k.name, tmp, name=name)
    try:
        yield new
        now = time.time()
        write_json_atomic(tmp / "spec.json", new.spec)
        status = {**new.status, "id": job_id, "kind": k.name, "name": new.name or new.status.get("name") or job_id,
                  "state": states.QUEUED, "created": now, "started": None, "finished": None, "spawned": None,
                  "pid": None, "error": None, "hold": not start}
        status.setdefault("message", "queued" if start else "created; not started yet")
        write_json_atomic(tmp / "status.json", status)
        os.replace(tmp, r / job_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    new.path = r / job_id
    if start:
        dispatch(k.name)
    from core.jobs.retention import cleanup
    cleanup(k.name, keep_ids={job_id})


def create(kind: str, spec: dict, *, start: bool = True, name: str = "", **status_fields) -> Job:
    with creating(kind, start=start, name=name) as new:
        new.spec = spec
        new.status = status_fields
    return read(new.id, kind, reconcile=False)


# --- starting -----------------------------------------------------------------------------------------------------
def _worker_env(k: Kind) -> dict:
    env = dict(os.environ, WORKBENCH_DATA=str(get_settings().data_dir), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    for name, value in k.env_defaults:
        env.setdefault(name, value)
    env.update(dict(k.env))
    extra = extra_kinds_env()
    if extra:
        env[ENV_KINDS] = extra
    return env


def _requeue(k: Kind, status: dict) -> dict:
    if not k.resumable:
        raise JobError(f"This {k.title or k.name} job has ended ({status['state']}); start a new one.")
    states.check(status["state"], states.QUEUED)
    status.update(state=states.QUEUED, finished=None, error=None, result=None, spawned=None)
    return status


def _spawn(k: Kind, f: RunFolder, requeue: bool = False) -> int:
    """Start the worker process of one job (taking its lock first and handing it down). Returns the pid."""
    fd = lock.try_acquire(f.lock_path, wait_s=1.0)
    if fd is None:
        raise JobError(f"{(k.title or k.name).capitalize()} job {f.id} is already running.")
    log = None
    try:
        st = f.read_status()
        if st.get("state") == states.RUNNING:      # we hold the lock, so its worker is gone
            st["state"] = states.INTERRUPTED
        if st.get("state") in states.TERMINAL:
            if not requeue:
                raise JobError(f"Job {f.id} has already ended ({st['state']}).")
            _requeue(k, st)
        f.clear_cancel()
        f.clear_worker_info()
        now = time.time()
        st.update(spawned=now, pid=None, message=STARTING, hold=False)
        if not k.resource:
            st.update(state=states.RUNNING, started=now)
        f.write_status(st)
        log = open(f.log_path, "ab")
        try:
            proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(f.path), "--lock-fd", str(fd)],
                                    cwd=str(PROJECT_ROOT), env=_worker_env(k), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, pass_fds=(fd,), start_new_session=True)
        except OSError as exc:
            st.update(state=states.FAILED, finished=time.time(), error=f"The worker could not start: {exc}",
                      message="the worker could not start")
            f.write_status(st)
            raise JobError(f"The {k.title or k.name} worker could not start: {exc}") from exc
        f.write_worker_info({**lock.identity(proc.pid), "spawned": now, "inline": False})
        _CHILDREN[proc.pid] = proc
        return proc.pid
    finally:
        if log:
            log.close()
        lock.release(fd)


def dispatch(kind: str, changed: list[str] | None = None) -> list[str]:
    """Start queued jobs of a kind: all of them, or for a kind with a queue the oldest one when none runs.
    `changed` collects the ids of jobs its reconcile pass moved to a final state."""
    k = get_kind(kind)
    if not root(k).is_dir():
        return []
    started = []
    with file_lock(root(k) / ".locks" / "queue.lock"):
        jobs = []
        for f, st in _scan(k):
            st, moved = _reconcile(k, f, st)
            jobs.append((f, st))
            if moved and changed is not None and f.id not in changed:
                changed.append(f.id)
        waiting = sorted(((f, st) for f, st in jobs if st.get("state") == states.QUEUED and not st.get("spawned")
                          and not st.get("hold")), key=lambda x: (x[1].get("created") or 0, x[0].id))
        if not waiting:
            return []
        if k.serial:
            busy = any(st.get("state") in states.ACTIVE and st.get("spawned") for _, st in jobs
                       if not (st.get("state") == states.QUEUED and not st.get("spawned")))
            if busy:
                return []
            waiting = waiting[:1]
        for f, _ in waiting:
            try:
                _spawn(k, f)
                started.append(f.id)
            except JobError:
                continue
    return started


def start(job_id: str, kind: str | None = None) -> Job:
    """Start a queued job now, or resume a finished one of a resumable kind on the same folder."""
    k, f = _locate(job_id, kind)
    job = read(job_id, k.name)
    if job.state in states.TERMINAL and not k.resumable:
        # said first: the worker of a job that just ended may still hold its lock for its last words
        raise JobError(f"This {k.title or k.name} job has ended ({job.state}); start a new one.")
    if job.alive:
        raise JobError(f"{(k.title or k.name).capitalize()} job {job_id} is already running.")
    if k.serial:
        if job.state in states.TERMINAL or job.status.get("hold"):
            fd = lock.try_acquire(f.lock_path)
            if fd is None:
                raise JobError(f"Job {job_id} is in use by another process.")
            try:
                st = f.read_status()
                if st.get("state") in states.TERMINAL:
                    _requeue(k, st)
                st["hold"] = False
                f.write_status(st)
            finally:
                lock.release(fd)
        dispatch(k.name)
    else:
        _spawn(k, f, requeue=True)
    return read(job_id, k.name, reconcile=False)


def run_inline(job_id: str, kind: str | None = None, run_fn: Callable | None = None,
               should_stop: Callable[[], bool] | None = None) -> dict:
    """Run (or resume) a job in this process instead of a worker (CLI foreground, tests, benchmarks). Holds the
    run lock meanwhile, so a second runner gets a clear error. Returns the final status."""
    k, f = _locate(job_id, kind)
    fd = lock.try_acquire(f.lock_path, wait_s=0.5)
    if fd is None:
        raise JobError(f"{(k.title or k.name).capitalize()} job {job_id} is already being executed by another "
                       "process.")
    try:
        st = f.read_status()
        if st.get("state") == states.RUNNING:
            st["state"] = states.INTERRUPTED
        if st.get("state") in states.TERMINAL:
            _requeue(k, st)
        f.clear_cancel()             # running is an explicit request: a stale cancel request is void
        f.write_worker_info({**lock.identity(os.getpid()), "spawned": time.time(), "inline": True})
        st.update(spawned=time.time(), pid=os.getpid(), hold=False)
        f.write_status(st)
        return execute(f, k, run_fn=run_fn, should_stop=should_stop, resource_lock=resource_lock_path)
    finally:
        lock.release(fd)


# --- cancelling, waiting, deleting --------------------------------------------------------------------------------
def cancel(job_id: str, kind: str | None = None, *, wait: bool = True, grace_s: float | None = None,
           timeout: float | None = None) -> Job:
    """Ask the job to stop. A queued job that has no process yet is cancelled at once. A running worker stops at
    its next safe point; one that does not within the grace period (a stuck native call) is killed with its
    process group. With wait=False this returns at once: readers escalate after the grace period."""
    k, f = _locate(job_id, kind)
    job = read(job_id, k.name)
    if job.state in states.TERMINAL:
        return job
    if job.state == states.QUEUED and not job.status.get("spawned") and not job.alive:
        fd = lock.try_acquire(f.lock_path, wait_s=1.0)
        if fd is not None:
            try:
                st = f.read_status()
                if st.get("state") == states.QUEUED and not st.get("spawned"):
                    st.update(state=states.CANCELLED, finished=time.time(), message="cancelled before it started")
                    f.remove_inputs()
                    f.write_status(st)
                    return _view(k, f, st)
            finally:
                lock.release(fd)
    grace = k.cancel_grace_s if grace_s is None else float(grace_s)
    req = f.request_cancel(grace)
    if not wait:
        return read(job_id, k.name)
    deadline = float(req["requested"]) + float(req.get("grace_s", grace)) + (10.0 if timeout is None else timeout)
    while True:
        job = read(job_id, k.name)
        if job.state in states.TERMINAL:
            break
        if time.time() > deadline:
            raise JobError(f"Job {job_id} did not stop (state {job.state}); it is asked to stop and will be "
                           "killed by the next reader.")
        time.sleep(0.1)
    exit_by = time.time() + 10                    # its last word is written: let the process exit, too
    while lock.is_held(f.lock_path) and time.time() < exit_by:
        time.sleep(0.05)
    if k.serial:
        dispatch(k.name)
    return read(job_id, k.name)


def wait(job_id: str, kind: str | None = None, *, timeout: float | None = None, poll: float = 0.25,
         on_update: Callable[[Job], None] | None = None) -> Job:
    """Block until the job reaches a final state (JobError after `timeout` seconds; the job keeps running)."""
    t0 = time.time()
    while True:
        job = read(job_id, kind)
        if on_update:
            on_update(job)
        if job.state in states.TERMINAL:
            return job
        if timeout is not None and time.time() - t0 > timeout:
            raise JobError(f"Job {job_id} did not finish within {timeout:.0f} s (state {job.state}); it keeps "
                           "running.")
        time.sleep(poll)


def delete(job_id: str, kind: str | None = None) -> None:
    """Remove a finished job's folder (JobError while it is queued or running)."""
    k, f = _locate(job_id, kind)
    job = read(job_id, k.name)
    if job.active or job.alive:
        raise JobError(f"Job {job_id} is {job.state}: cancel it first.")
    fd = lock.try_acquire(f.lock_path, wait_s=0.5)
    if fd is None:
        raise JobError(f"Job {job_id} is in use by another process.")
    try:
        shutil.rmtree(f.path, ignore_errors=True)
    finally:
        lock.release(fd)


def protected_ids(kind: str) -> set[str] | None:
    """Ids of a kind that something still references (None when that cannot be determined: keep everything)."""
    k = get_kind(kind)
    if not k.protect:
        return set()
    try:
        return set(load_callable(k.protect)(k.name) or ())
    except Exception:  # noqa: BLE001 - an unreadable reference set must never lead to deleting a referenced run
        return None
