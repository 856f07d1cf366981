"""Job lifecycle with real worker processes: queue, cancel (queued and running), crash -> interrupted, recovery
from a fresh process (an app restart). The workers are stopped while they load, so no training time is spent."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from core import jobs
from core.errors import JobError
from core.finetune import runner
from core.finetune.datasets import load_file
from core.finetune.spec import preset_spec
from tests.finetune.ft_helpers import ROOT, small_train_file


def _wait(pred, timeout=60.0, what="condition"):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _cli(*args) -> dict:
    out = subprocess.run([sys.executable, "-m", "core", *args, "--json"], cwd=ROOT, env=dict(os.environ),
                         capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)


@pytest.mark.slow
def test_queue_cancel_crash_and_recovery(data_dir, hf_base, tmp_path):
    ds = load_file(small_train_file(tmp_path))
    spec = preset_spec("quick").replace(max_steps=500, eval_steps=0, val_fraction=0.0)
    a = runner.submit(spec, ds)
    b = runner.submit(spec, ds)
    c = runner.submit(spec, ds)
    assert a.state == "running" and a.status["pid"]
    assert b.state == "queued" and c.state == "queued"          # one job at a time

    # a second process (another tab / an app restart) reads the same state from the run folder
    listed = {r["run_id"]: r["state"] for r in _cli("jobs", "list")["runs"]}
    assert listed == {a.run_id: "running", b.run_id: "queued", c.run_id: "queued"}

    # cancel a queued job: it never starts
    assert runner.cancel(c.run_id).state == "cancelled"

    # crash: kill A's process hard once it is working; reconcile marks it interrupted with its last log lines
    _wait(lambda: "Run " in (a.dir / "worker.log").read_text(errors="replace"), 90, "worker A to log")
    os.killpg(runner.load_run(a.run_id).status["pid"], signal.SIGKILL)
    _wait(lambda: not jobs.is_alive(a.run_id), 10, "A to die")
    # the reconcile happens in a fresh process, as after an app restart
    states = {r["run_id"]: r["state"] for r in _cli("jobs", "list")["runs"]}
    assert states[a.run_id] == "interrupted"
    fa = runner.load_run(a.run_id).status
    assert "crashed or was killed" in fa["error"] and fa["log_tail"] and fa["finished"]

    # the queue moved on: B was started by that reconcile
    _wait(lambda: runner.load_run(b.run_id).state == "running", 30, "B to start")
    rb = runner.load_run(b.run_id)
    assert rb.status["pid"] != a.status["pid"]

    # cancel a running job: the worker stops and records 'cancelled' (never left 'running')
    _wait(lambda: (rb.dir / "worker.log").exists() and (rb.dir / "worker.log").stat().st_size > 0, 90, "B to log")
    t0 = time.time()
    done = runner.cancel(b.run_id, timeout=30)
    assert done.state == "cancelled" and time.time() - t0 < 35
    _wait(lambda: not jobs.is_alive(b.run_id), 10, "B's worker to exit")
    assert not [r for r in runner.list_runs() if r.state in ("queued", "running")]
    with pytest.raises(JobError, match="No fine-tuning run"):
        runner.load_run("ft-nope")


def test_reconcile_marks_a_dead_pid_interrupted(data_dir, tmp_path):
    """A status.json left 'running' by a process that no longer exists (machine reboot) becomes interrupted."""
    ds = load_file(small_train_file(tmp_path, 4))
    run = runner.create_run(preset_spec("quick"), ds)
    (run.dir / "worker.log").write_text("loading\nRuntimeError: out of memory\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = jobs.RunFolder(run.dir)
    folder.write_status({**folder.read_status(), "state": "running", "pid": dead.pid})
    assert runner.reconcile(start=False) == [run.run_id]
    st = runner.load_run(run.run_id).status
    assert st["state"] == "interrupted" and "out of memory" in st["error"]
    assert st["log_tail"][-1].endswith("out of memory")
