"""Fine-tuning jobs: one run folder each, one running job at a time, every job in its own process.

Run folder `<data>/runs/<run_id>/`:
    spec.json       the JobSpec (plus data summary)
    data/train.jsonl, data/val.jsonl   the validated chat rows it trains on
    status.json     state queued|running|succeeded|failed|cancelled, pid, started, finished, step, max_steps, eta_s,
                    error, log_tail, trainer (unsloth | peft+trl), note, final metrics ... (written atomically)
    metrics.jsonl   one line per logging step / evaluation: step, loss, eval_loss, learning_rate, tokens_per_s,
                    rss_mb, elapsed
    train.log       the worker's stdout/stderr
    adapter/        the PEFT adapter;  export/  exported files
    cancel          present once a cancel was asked

The UI and the CLI only read these files, so a page refresh, a second tab or an app restart shows the same job.
`reconcile()` marks a "running" job whose process is gone as failed (with its last log lines) and starts the next
queued job. No torch import here.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.config import PROJECT_ROOT, Settings, get_settings
from core.errors import JobError
from core.fileio import read_json, write_json_atomic
from core.finetune.convert import file_lock
from core.finetune.datasets import Dataset, split, write_jsonl
from core.finetune.spec import JobSpec

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
_CHILDREN: dict[int, subprocess.Popen] = {}      # processes this process started (reaped in reconcile)


def read_metrics(run_dir: Path) -> list[dict]:
    """metrics.jsonl lines (a half-written last line is skipped)."""
    out = []
    try:
        with open(run_dir / "metrics.jsonl", encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        pass
    return out


def append_metrics(run_dir: Path, row: dict) -> None:
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=float) + "\n")
        f.flush()


def log_tail(run_dir: Path, n: int = 20, max_bytes: int = 32_768) -> list[str]:
    path = run_dir / "train.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    # progress bars rewrite one line with \r: keep the last state of each line
    lines = [ln.rsplit("\r", 1)[-1] for ln in text.splitlines()]
    return [ln for ln in lines if ln.strip()][-n:]


# --- runs -----------------------------------------------------------------------------------------------------
@dataclass
class Run:
    run_id: str
    dir: Path
    spec: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)

    @property
    def state(self) -> str:
        return self.status.get("state", "failed")

    @property
    def metrics(self) -> list[dict]:
        return read_metrics(self.dir)

    def to_dict(self, with_metrics: bool = False) -> dict:
        d = {"run_id": self.run_id, "dir": str(self.dir), "spec": self.spec, "status": self.status}
        if with_metrics:
            d["metrics"] = self.metrics
        return d


def runs_dir(settings: Settings | None = None) -> Path:
    d = (settings or get_settings()).runs_dir
    d.mkdir(parents=True, exist_ok=True)
    return d


def new_run_id() -> str:
    return time.strftime("ft-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def load_run(run_id: str, settings: Settings | None = None) -> Run:
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise JobError(f"Invalid run id {run_id!r}.")
    d = runs_dir(settings) / run_id
    status = read_json(d / "status.json")
    if status is None:
        raise JobError(f"No fine-tuning run {run_id!r} under {runs_dir(settings)}: see `python -m core jobs list`.")
    return Run(run_id, d, read_json(d / "spec.json", {}), status)


def list_runs(settings: Settings | None = None) -> list[Run]:
    """All runs, newest first."""
    out = []
    for st in runs_dir(settings).glob("*/status.json"):
        status = read_json(st)
        if status is None:
            continue
        out.append(Run(st.parent.name, st.parent, read_json(st.parent / "spec.json", {}), status))
    return sorted(out, key=lambda r: r.status.get("created", 0), reverse=True)


def update_status(run_dir: Path, **changes) -> dict:
    """Merge changes into status.json (atomic replace). The worker and the runner both use it."""
    status = read_json(run_dir / "status.json", {}) or {}
    status.update(changes)
    status["updated"] = time.time()
    write_json_atomic(run_dir / "status.json", status)
    return status


def create_run(spec: JobSpec, dataset: Dataset, settings: Settings | None = None) -> Run:
    """Validate the spec and dataset, write the run folder in the queued state. Nothing starts yet."""
    s = settings or get_settings()
    spec.validate()
    dataset.raise_for_problems()
    train, val = split(dataset.rows, spec.val_fraction, spec.seed)
    if len(train) < 1:
        raise JobError("No training rows left after the validation split: add rows or lower val_fraction.")
    run_id = new_run_id()
    d = runs_dir(s) / run_id
    d.mkdir(parents=True)
    write_jsonl(train, d / "data" / "train.jsonl")
    write_jsonl(val, d / "data" / "val.jsonl")
    spec_d = spec.to_dict()
    spec_d["data_summary"] = {**dataset.summary(), "train_rows": len(train), "val_rows": len(val)}
    write_json_atomic(d / "spec.json", spec_d)
    steps = planned_steps(spec, len(train))
    status = {"run_id": run_id, "name": spec.name or run_id, "state": "queued", "created": time.time(),
              "pid": None, "started": None, "finished": None, "step": 0, "max_steps": steps, "eta_s": None,
              "error": None, "log_tail": [], "trainer": None, "note": "", "device": None}
    write_json_atomic(d / "status.json", status)
    return Run(run_id, d, spec_d, status)


def planned_steps(spec: JobSpec, n_train: int) -> int:
    if spec.max_steps > 0:
        return spec.max_steps
    per_epoch = max(1, -(-n_train // (spec.batch_size * spec.grad_accum)))
    return max(1, int(round(per_epoch * spec.epochs)))


# --- processes ------------------------------------------------------------------------------------------------
def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            _CHILDREN.pop(pid, None)


def pid_alive(pid: int | None, run_id: str | None = None) -> bool:
    """True when `pid` is a live (not zombie) worker process (of this run, when run_id is given)."""
    if not pid:
        return False
    _reap()
    try:
        import psutil
        p = psutil.Process(int(pid))
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        cmd = " ".join(p.cmdline())
        return "core.finetune.worker" in cmd and (run_id is None or run_id in cmd)
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied, psutil missing
        try:
            os.kill(int(pid), 0)
            return True
        except OSError:
            return False


def _spawn(run: Run, settings: Settings) -> int:
    env = dict(os.environ, WORKBENCH_DATA=str(settings.data_dir), PYTHONUNBUFFERED="1",
               UNSLOTH_AUTO_INSTALL="0", UNSLOTH_LLAMA_CPP_OFFLINE="1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               # on a shared, busy CPU, spinning OpenMP threads wait on each other for seconds per step
               OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    log = open(run.dir / "train.log", "ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "core.finetune.worker", str(run.dir)], cwd=str(PROJECT_ROOT),
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    finally:
        log.close()
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _running(settings: Settings) -> list[Run]:
    return [r for r in list_runs(settings) if r.state == "running"]


def reconcile(settings: Settings | None = None, start: bool = True) -> list[str]:
    """Mark runs whose worker process is gone as failed (with their last log lines); then start the next queued
    job if no job runs. Returns the ids of runs it marked failed. Cheap: call it on every page poll."""
    s = settings or get_settings()
    failed = []
    with file_lock(runs_dir(s) / ".queue.lock"):
        for run in _running(s):
            if pid_alive(run.status.get("pid"), run.run_id):
                continue
            fresh = read_json(run.dir / "status.json", {})         # the worker may have just finished
            if fresh.get("state") != "running":
                continue
            tail = log_tail(run.dir, 12)
            cancelled = (run.dir / "cancel").exists()
            update_status(run.dir, state="cancelled" if cancelled else "failed", finished=time.time(), eta_s=None,
                          error=None if cancelled else "The training process ended without reporting a result "
                                "(crashed or was killed). Last log lines: " + " | ".join(tail[-5:]),
                          log_tail=tail)
            if not cancelled:
                failed.append(run.run_id)
        if start:
            _start_next_locked(s)
    return failed


def _start_next_locked(s: Settings) -> Run | None:
    if any(pid_alive(r.status.get("pid"), r.run_id) for r in _running(s)):
        return None
    queued = sorted((r for r in list_runs(s) if r.state == "queued"), key=lambda r: r.status.get("created", 0))
    if not queued:
        return None
    run = queued[0]
    pid = _spawn(run, s)
    run.status = update_status(run.dir, state="running", pid=pid, started=time.time(), note="starting ...")
    return run


def start_next(settings: Settings | None = None) -> Run | None:
    """Start the oldest queued job when no job is running (process-safe)."""
    s = settings or get_settings()
    with file_lock(runs_dir(s) / ".queue.lock"):
        return _start_next_locked(s)


def submit(spec: JobSpec, dataset: Dataset, settings: Settings | None = None) -> Run:
    """Create the run and start it now, or queue it behind the running job."""
    s = settings or get_settings()
    run = create_run(spec, dataset, s)
    reconcile(s, start=True)
    return load_run(run.run_id, s)


def cancel(run_id: str, settings: Settings | None = None, timeout: float = 20.0) -> Run:
    """Cancel a queued or running job. A running worker gets SIGTERM (it stops at the next step and writes
    'cancelled'); if it has not ended after `timeout` seconds it is killed."""
    s = settings or get_settings()
    run = load_run(run_id, s)
    if run.state in TERMINAL:
        return run
    (run.dir / "cancel").write_text(str(time.time()), encoding="utf-8")
    with file_lock(runs_dir(s) / ".queue.lock"):
        run = load_run(run_id, s)
        if run.state == "queued":
            update_status(run.dir, state="cancelled", finished=time.time(), note="cancelled before it started")
            return load_run(run_id, s)
    pid = run.status.get("pid")
    if pid and pid_alive(pid, run_id):
        try:
            os.killpg(int(pid), signal.SIGTERM)
        except OSError:
            pass
        deadline = time.time() + timeout
        while time.time() < deadline and pid_alive(pid, run_id):
            time.sleep(0.2)
        if pid_alive(pid, run_id):
            try:
                os.killpg(int(pid), signal.SIGKILL)
            except OSError:
                pass
            time.sleep(0.3)
    if load_run(run_id, s).state not in TERMINAL:
        update_status(run.dir, state="cancelled", finished=time.time(), eta_s=None, log_tail=log_tail(run.dir, 12))
    reconcile(s, start=True)
    return load_run(run_id, s)


def wait(run_id: str, settings: Settings | None = None, poll: float = 1.0, timeout: float | None = None,
         on_update: Callable[[Run, list[dict]], None] | None = None) -> Run:
    """Block until the run reaches a final state; `on_update(run, new_metric_rows)` is called on each poll."""
    s = settings or get_settings()
    seen = 0
    t0 = time.time()
    while True:
        reconcile(s, start=True)
        run = load_run(run_id, s)
        rows = run.metrics
        if on_update:
            on_update(run, rows[seen:])
        seen = len(rows)
        if run.state in TERMINAL:
            return run
        if timeout is not None and time.time() - t0 > timeout:
            raise JobError(f"Run {run_id} did not finish within {timeout:.0f} s (state {run.state}).")
        time.sleep(poll)


def delete_run(run_id: str, settings: Settings | None = None) -> None:
    import shutil
    run = load_run(run_id, settings)
    if run.state in ("queued", "running"):
        raise JobError(f"Run {run_id} is {run.state}: cancel it first.")
    shutil.rmtree(run.dir, ignore_errors=True)
