"""Running one job: the state machine around a kind's `run(spec, report)` function.

`execute()` runs in the worker process (`python -m core.jobs.worker`) or, for the CLI, tests and benchmarks, in
the calling process (`core.jobs.run_inline`). Either way the caller holds the run lock for the whole time.

The kind's function gets the spec (spec.json) and a Reporter:
    report(progress=0.4, message="...", items=[...], any_field=...)   merge fields into status.json (throttled,
                                                                       atomic); raises Cancelled when a cancel
                                                                       was asked (pass check=False not to)
    report.check()              raise Cancelled if a cancel was asked (a safe point)
    report.cancel_requested()   the same as a bool, for code that must stop on its own terms (a training loop)
    report.log(msg)             a time-stamped line in worker.log
    report.event(row, name)     append a JSON line to <run>/<name> (metrics.jsonl, answers ...)
    report.dir                  the run folder (for the kind's own files)
It returns a dict (kept as status["result"]) or None. Raising Cancelled ends the job cancelled, JobFailed (or any
WorkbenchError) failed with its message; any other exception failed with its type, and the traceback goes to
worker.log. Whatever happens, the job ends in a final state, its log tail is recorded and inputs/ is deleted.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Callable

from core.errors import JobError, WorkbenchError
from core.jobs import lock, states
from core.jobs.folder import RunFolder, append_jsonl
from core.jobs.registry import Kind

RESERVED = frozenset({"id", "kind", "state", "created", "started", "finished", "error", "result", "spawned",
                      "updated", "log_tail", "pid"})
WRITE_EVERY_S = 0.3
STARTING = "starting the worker"


class Cancelled(BaseException):
    """A cancel was asked: the job stops at this safe point. The message (optional) becomes the job's message.
    A BaseException (like KeyboardInterrupt), so a kind's `except Exception` around one item does not swallow it."""


class JobFailed(WorkbenchError):
    """The kind ends its job as failed with this message; what it wrote so far is kept."""


class Reporter:
    def __init__(self, folder: RunFolder, status: dict, should_stop: Callable[[], bool] | None = None):
        self.folder = folder
        self.status = status
        self._should_stop = should_stop
        self._last = 0.0

    @property
    def dir(self):
        return self.folder.path

    @property
    def job_id(self) -> str:
        return self.folder.id

    def __call__(self, *, force: bool = False, check: bool = True, **fields) -> None:
        bad = RESERVED & set(fields)
        if bad:
            raise JobError(f"report() cannot set {', '.join(sorted(bad))}: the job layer owns them.")
        self.status.update(fields)
        if force or time.monotonic() - self._last >= WRITE_EVERY_S:
            self.flush()
        if check:
            self.check()

    def flush(self) -> None:
        self.folder.write_status(self.status)
        self._last = time.monotonic()

    def cancel_requested(self) -> bool:
        return self.folder.cancel_path.exists() or bool(self._should_stop and self._should_stop())

    def check(self) -> None:
        if self.cancel_requested():
            raise Cancelled()

    def log(self, msg: str) -> None:
        print(time.strftime("%H:%M:%S ") + str(msg), file=sys.stderr, flush=True)

    def event(self, row: dict, name: str = "events.jsonl", fsync: bool = False) -> None:
        append_jsonl(self.dir / name, row, fsync=fsync)


def _set_state(status: dict, new: str, **fields) -> dict:
    states.check(status.get("state"), new)
    status.update(state=new, **fields)
    return status


def execute(folder: RunFolder, kind: Kind, *, run_fn: Callable | None = None,
            should_stop: Callable[[], bool] | None = None, resource_lock: Callable | None = None) -> dict:
    """Run the job in this process (the caller holds the run lock). Returns the final status."""
    status = folder.read_status()
    spec = folder.read_spec()
    status.update(pid=os.getpid(), kind=kind.name)
    if status.get("state") in states.TERMINAL:
        raise JobError(f"Job {folder.id} has already ended ({status['state']}).")
    rep = Reporter(folder, status, should_stop)
    res_fd = None
    result = None
    try:
        if kind.resource and spec.get(kind.resource) and resource_lock is not None:
            path = resource_lock(kind, str(spec[kind.resource]))
            res_fd = lock.try_acquire(path, wait_s=0)
            if res_fd is None:
                _set_state(status, states.QUEUED, message=kind.waiting.format(resource=spec[kind.resource]))
                rep.flush()
                while res_fd is None:
                    rep.check()
                    time.sleep(0.2)
                    res_fd = lock.try_acquire(path, wait_s=0)
        if status["state"] != states.RUNNING:
            _set_state(status, states.RUNNING, started=time.time(), message="running")
        elif status.get("message") in (None, "", STARTING):
            status["message"] = "running"
        status.setdefault("started", time.time())
        rep.flush()
        fn = run_fn or kind.load()
        result = fn(spec, rep)
        final, fields = states.SUCCEEDED, {"error": None}
    except Cancelled as exc:
        final, fields = states.CANCELLED, {"message": str(exc) or "cancelled by the user", "error": None}
    except KeyboardInterrupt:
        final, fields = states.INTERRUPTED, {"message": "interrupted (Ctrl-C)", "error": "interrupted (Ctrl-C)"}
        _finish(folder, status, final, fields, result, res_fd)
        raise
    except WorkbenchError as exc:      # JobFailed included: a clear message, no traceback needed
        final, fields = states.FAILED, {"message": str(exc), "error": str(exc)}
        print(f"failed: {exc}", file=sys.stderr, flush=True)
    except BaseException as exc:  # noqa: BLE001 - every way out is recorded in status.json
        traceback.print_exc()
        msg = f"Unexpected error: {type(exc).__name__}: {exc}"
        final, fields = states.FAILED, {"message": msg, "error": msg}
    return _finish(folder, status, final, fields, result, res_fd)


def _finish(folder: RunFolder, status: dict, final: str, fields: dict, result, res_fd) -> dict:
    sys.stdout.flush()
    sys.stderr.flush()
    if result is not None:
        status["result"] = result
    _set_state(status, final, finished=time.time(), **fields)
    status["log_tail"] = folder.log_tail(12)
    folder.remove_inputs()                 # before the final state is visible: a finished job has no copies
    folder.clear_cancel()
    folder.write_status(status)
    lock.release(res_fd)
    return status
