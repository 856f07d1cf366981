"""One run folder layout for every job kind, and the small file helpers around it.

    <kind root>/<job id>/
        spec.json      what to do: the kind's own dict, written once when the job is created
        status.json    id, kind, name, state, created/started/finished, progress, message, error, items (per-item
                       lines), log_tail, result, plus the kind's own fields -- written atomically, and only by the
                       process holding the run lock (so there is never a lost update)
        worker.json    pid, process start time and boot id of the process that runs the job
        cancel         present once a cancel was asked: {"requested": time, "grace_s": seconds}
        worker.log     the worker's stdout/stderr
        metrics.jsonl  (or another *.jsonl) rows a kind appends as it goes: training metrics, answers ...
        inputs/        copies of uploaded inputs; deleted when the job ends
        .lock          the run lock (flock): held by the worker for as long as it runs

Ids: "<prefix>-YYYYMMDD-HHMMSS-<6 hex>", e.g. ft-20261201-101500-3fa2c1 (sortable by creation time).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from core.errors import JobError
from core.fileio import read_json, write_json_atomic
from core.jobs import states

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def new_id(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def validate_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not _ID_RE.match(job_id) or ".." in job_id:
        raise JobError(f"{job_id!r} is not a job id.")
    return job_id


class RunFolder:
    """Paths and file access of one job's folder (no liveness logic here: see core.jobs.control)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    spec_path = property(lambda self: self.path / "spec.json")
    status_path = property(lambda self: self.path / "status.json")
    worker_path = property(lambda self: self.path / "worker.json")
    cancel_path = property(lambda self: self.path / "cancel")
    log_path = property(lambda self: self.path / "worker.log")
    lock_path = property(lambda self: self.path / ".lock")
    inputs = property(lambda self: self.path / "inputs")

    def exists(self) -> bool:
        return self.status_path.is_file()

    def read_spec(self) -> dict:
        spec = read_json(self.spec_path)
        return spec if isinstance(spec, dict) else {}

    def write_spec(self, spec: dict) -> None:
        write_json_atomic(self.spec_path, spec)

    def read_status(self) -> dict:
        """status.json with the state in today's vocabulary ({} when missing or unreadable)."""
        st = read_json(self.status_path)
        if not isinstance(st, dict):
            return {}
        st["state"] = states.normalise(st.get("state"))
        st.setdefault("id", self.id)
        return st

    def write_status(self, status: dict) -> dict:
        status["updated"] = time.time()
        write_json_atomic(self.status_path, status)
        return status

    def worker_info(self) -> dict:
        info = read_json(self.worker_path)
        return info if isinstance(info, dict) else {}

    def write_worker_info(self, info: dict) -> None:
        write_json_atomic(self.worker_path, info)

    def clear_worker_info(self) -> None:
        self.worker_path.unlink(missing_ok=True)

    def cancel_request(self) -> dict | None:
        if not self.cancel_path.exists():
            return None
        req = read_json(self.cancel_path)
        return req if isinstance(req, dict) else {"requested": self.cancel_path.stat().st_mtime}

    def request_cancel(self, grace_s: float) -> dict:
        req = self.cancel_request() or {"requested": time.time(), "grace_s": float(grace_s)}
        write_json_atomic(self.cancel_path, req)
        return req

    def clear_cancel(self) -> None:
        self.cancel_path.unlink(missing_ok=True)

    def remove_inputs(self) -> None:
        shutil.rmtree(self.inputs, ignore_errors=True)

    def log_tail(self, n: int = 20) -> list[str]:
        return log_tail(self.log_path, n)


def log_tail(path: Path, n: int = 20, max_bytes: int = 32_768) -> list[str]:
    """The last n non-empty lines of a log (a progress bar rewriting its line with \\r keeps its last state)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    lines = [ln.rsplit("\r", 1)[-1] for ln in text.splitlines()]
    return [ln for ln in lines if ln.strip()][-n:]


def append_jsonl(path: Path, row: dict, fsync: bool = False) -> None:
    """Append one JSON line; a line cut by a kill before it is closed with a newline first, so it stays alone."""
    line = (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    with open(path, "ab+") as fh:
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write(line)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict]:
    """Every complete JSON object line (a half-written or damaged line is skipped)."""
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    out.append(row)
    except OSError:
        pass
    return out
