"""Liveness is the run lock, never a pid; cancel is cooperative first, then a SIGKILL of the worker's process
group -- and never reaches a process that is not the job's."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core import jobs
from core.jobs import lock
from tests.jobs.conftest import wait_for


def _fake_running(job, pid: int, worker: dict | None = None) -> None:
    """Status as a worker leaves it when it dies without a word: 'running', a pid, no lock held."""
    st = job.folder.read_status()
    st.update(state="running", pid=pid, spawned=time.time(), started=time.time())
    job.folder.write_status(st)
    job.folder.write_worker_info(worker or lock.identity(pid))


def _stranger() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)


def test_running_status_without_the_lock_is_interrupted_even_if_the_pid_is_alive(data_dir):
    """A pid-reuse-like case: after a reboot the recorded pid belongs to a live stranger (here: this very test
    process). Only the lock counts, so the job reads as interrupted and its log tail explains it."""
    job = jobs.create("t-resume", {"n": 3}, start=False)
    (job.dir / "worker.log").write_text("loading\nRuntimeError: out of memory\n")
    _fake_running(job, os.getpid())
    assert jobs.reconcile("t-resume") == [job.id]
    job = jobs.read(job.id)
    assert job.state == "interrupted" and job.finished
    assert f"pid {os.getpid()}" in job.error and "stopped before finishing" in job.error
    assert "crashed or was killed" in job.error and "out of memory" in job.error and "resume to finish" in job.error
    assert job.status["log_tail"][-1].endswith("out of memory")
    assert jobs.reconcile("t-resume") == []                     # marked once


def test_a_worker_that_dies_during_reconcile_is_reported_as_changed(data_dir, monkeypatch):
    """A SIGKILL lands a moment after kill() returns: reconcile's first pass can still see the lock held, and the
    pass dispatch makes under the queue lock then marks the job. reconcile() must report that job too (it used
    to return [] for it, and the next call [] again, since the job had already ended)."""
    from core.jobs import control
    job = jobs.create("t-resume", {"n": 3}, start=False)
    _fake_running(job, os.getpid())
    fd = lock.try_acquire(job.folder.lock_path, wait_s=0)     # "the worker" is alive at the first pass ...
    real_dispatch = control.dispatch

    def dispatch_after_death(kind, changed=None):
        lock.release(fd)                                       # ... and dies before dispatch's pass
        return real_dispatch(kind, changed)
    monkeypatch.setattr(control, "dispatch", dispatch_after_death)
    assert jobs.reconcile("t-resume") == [job.id]
    assert jobs.read(job.id).state == "interrupted"
    assert jobs.reconcile("t-resume") == []


def test_cancel_never_signals_a_stranger(data_dir):
    stranger = _stranger()
    try:
        # 1. no lock held: the job is simply gone; nothing is signalled
        a = jobs.create("t-resume", {"n": 3}, start=False)
        _fake_running(a, stranger.pid)
        assert jobs.cancel(a.id, grace_s=0).state in ("interrupted", "cancelled")
        # 2. the lock IS held (a live worker), but the recorded pid is now someone else (another start time):
        #    the SIGKILL escalation must not fire at that pid
        b = jobs.create("t-resume", {"n": 3}, start=False)
        fd = lock.try_acquire(b.folder.lock_path, wait_s=0)
        try:
            _fake_running(b, stranger.pid, {**lock.identity(stranger.pid), "start": 1})
            jobs.cancel(b.id, wait=False, grace_s=0)
            for _ in range(5):
                assert jobs.read(b.id).state == "running"       # still held: alive, and not killed by us
                time.sleep(0.1)
        finally:
            lock.release(fd)
        assert stranger.poll() is None, "a process that is not the job's was signalled"
        assert jobs.read(b.id).state == "cancelled"             # the holder let go after the cancel request
    finally:
        stranger.kill()
        stranger.wait()


def test_cancel_is_honoured_at_the_next_safe_point(data_dir):
    job = jobs.create("t-loop", {})
    pid = wait_for(lambda: (j := jobs.read(job.id)).state == "running" and j.message.startswith("step") and j.pid)
    t0 = time.time()
    done = jobs.cancel(job.id)                                  # grace 30 s: the job must stop on its own
    assert done.state == "cancelled" and done.message == "cancelled by the user"
    assert time.time() - t0 < 10 and not jobs.is_alive(job.id)
    assert lock.is_zombie_or_gone(pid)
    assert not (job.dir / "cancel").exists()


def test_cancel_escalates_to_sigkill_of_a_stuck_worker_and_its_children(data_dir):
    job = jobs.create("t-stuck", {})
    wait_for(lambda: jobs.read(job.id).message == "stuck now" and (job.dir / "child.pid").is_file())
    worker, child = jobs.read(job.id).pid, int((job.dir / "child.pid").read_text())
    os.kill(worker, signal.SIGTERM)                             # ignored: a plain kill does not stop it
    time.sleep(0.3)
    assert jobs.read(job.id).state == "running"
    t0 = time.time()
    done = jobs.cancel(job.id, grace_s=1.0)
    assert done.state == "cancelled" and 1.0 <= time.time() - t0 < 15
    wait_for(lambda: lock.is_zombie_or_gone(worker) and lock.is_zombie_or_gone(child), timeout=10)
    assert "stopped" in done.message


def test_a_non_blocking_cancel_is_escalated_by_whoever_reads_the_job(data_dir):
    job = jobs.create("t-stuck", {})
    wait_for(lambda: jobs.read(job.id).message == "stuck now")
    assert jobs.cancel(job.id, wait=False, grace_s=0.5).cancel_requested
    t0 = time.time()
    done = wait_for(lambda: (j := jobs.read(job.id)).state == "cancelled" and j, timeout=20)
    assert done.finished and time.time() - t0 < 15


def test_killed_worker_is_interrupted_and_a_queued_job_is_cancelled_before_it_starts(data_dir):
    first = jobs.create("t-serial-loop", {})
    second = jobs.create("t-serial-loop", {})
    third = jobs.create("t-serial-loop", {})
    pid = wait_for(lambda: (j := jobs.read(first.id)).state == "running" and j.message.startswith("step") and j.pid)
    assert jobs.read(second.id).state == "queued" and not Path(second.dir / "worker.json").exists()
    assert jobs.cancel(third.id).state == "cancelled"            # never started
    assert not (third.dir / "worker.json").exists() and not jobs.read(third.id).started
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not jobs.is_alive(first.id), timeout=10)
    assert jobs.read(first.id).state == "interrupted"
    assert jobs.read(second.id).state == "queued"                 # reading never starts a process ...
    assert [j.id for j in jobs.queued_waiting("t-serial-loop")] == [second.id]
    jobs.reconcile("t-serial-loop")                               # ... the supervisor step does
    assert wait_for(lambda: jobs.read(second.id).state == "running")
    assert jobs.read(third.id).state == "cancelled"
    assert jobs.cancel(second.id).state == "cancelled"
