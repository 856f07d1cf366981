"""The job layer with real worker processes: one folder layout, one state machine, results, failures, queues,
resource locks, inputs deleted at the end, resume, inline runs and the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from core import jobs
from core.errors import JobError
from core.jobs import lock, registry, states
from tests.jobs.conftest import wait_for

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_state_machine_vocabulary_and_transitions():
    assert states.STATES == ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
    for old, new in [("queued", "running"), ("queued", "cancelled"), ("running", "succeeded"),
                     ("running", "interrupted"), ("cancelled", "queued"), ("interrupted", "queued")]:
        states.check(old, new)
    for old, new in [("succeeded", "running"), ("queued", "succeeded"), ("failed", "cancelled"),
                     ("cancelled", "running")]:
        with pytest.raises(JobError, match="cannot go from"):
            states.check(old, new)
    # what the replaced job systems wrote still reads in today's words
    assert [states.normalise(s) for s in ("done", "stopped", "created", "stopping", None)] == \
        ["succeeded", "cancelled", "queued", "running", "queued"]


def test_ids_are_sortable_and_validated():
    a = jobs.new_id("ft")
    assert a.startswith("ft-") and len(a.split("-")) == 4 and len(a.split("-")[-1]) == 6
    for bad in ("../x", ".hidden", "a/b", "", "x" * 200, "a..b"):
        with pytest.raises(JobError):
            jobs.validate_id(bad)
    with pytest.raises(JobError, match="No job"):
        jobs.read("nope-20260101-000000-abcdef")
    with pytest.raises(JobError, match="Unknown job kind"):
        jobs.create("no-such-kind", {})


def test_job_runs_in_its_own_process_to_success(data_dir):
    job = jobs.create("t-echo", {"n": 4, "sleep": 0.05}, name="four items")
    assert job.state in ("queued", "running") and job.dir.parent == data_dir / "jobs" / "t-echo"
    seen = set()
    job = jobs.wait(job.id, timeout=60, poll=0.02, on_update=lambda j: seen.add(j.state))
    assert job.state == "succeeded" and "running" in seen, (job.status, seen)
    assert job.result == {"sum": 6} and job.progress == 1.0 and job.message == "4/4 items"
    assert [i["stage"] for i in job.items] == ["done"] * 4
    assert job.finished >= job.started >= job.created and job.name == "four items"
    raw = json.loads((job.dir / "status.json").read_text())
    assert raw["state"] == "succeeded" and raw["pid"] > 0 and raw["pid"] != os.getpid() and raw["kind"] == "t-echo"
    assert json.loads((job.dir / "spec.json").read_text()) == {"n": 4, "sleep": 0.05}
    assert any("item 3 done" in ln for ln in raw["log_tail"])
    wait_for(lambda: not jobs.is_alive(job.id), timeout=10)          # the worker exits right after its last word
    assert not [p.name for p in job.dir.iterdir() if p.name.endswith(".tmp")]
    assert [j.id for j in jobs.list_jobs("t-echo")] == [job.id]


def test_failures_end_as_failed_with_their_reason(data_dir):
    a = jobs.wait(jobs.create("t-fail", {}).id, timeout=60)
    assert a.state == "failed" and a.error == "the input is wrong: fix it and start again"
    assert a.status["progress"] == 0.5                       # what the job reported before is kept
    b = jobs.wait(jobs.create("t-crash", {}).id, timeout=60)
    assert b.state == "failed" and b.error == "Unexpected error: ValueError: boom"
    assert any("Traceback" in ln or "ValueError: boom" in ln for ln in b.log_tail(20))


def test_inputs_are_deleted_when_the_job_ends(data_dir):
    with jobs.creating("t-input") as new:
        (new.inputs / "upload.txt").write_bytes(b"x" * 1234)
        new.spec = {"input": "inputs/upload.txt"}
    job = jobs.wait(new.id, timeout=60)
    assert job.state == "succeeded" and job.result == {"bytes": 1234, "inputs_existed": True}
    assert not (job.dir / "inputs").exists()


def test_a_failed_creation_leaves_nothing_behind(data_dir):
    with pytest.raises(RuntimeError):
        with jobs.creating("t-echo") as new:
            (new.inputs / "half.txt").write_text("x")
            raise RuntimeError("upload broke")
    assert not list((data_dir / "jobs" / "t-echo").iterdir())


def test_serial_kind_runs_one_job_at_a_time_in_order(data_dir):
    ids = [jobs.create("t-serial", {"sleep": 0.4}).id for _ in range(3)]
    first = jobs.read(ids[0])
    assert first.state == "running" and first.alive
    assert [jobs.read(i).state for i in ids[1:]] == ["queued", "queued"]     # waiting, with no process
    assert not any(jobs.read(i).alive for i in ids[1:])
    done = [jobs.wait(i, timeout=90) for i in ids]
    assert all(j.state == "succeeded" for j in done)
    spans = [(j.result["start"], j.result["end"]) for j in done]
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2)), spans


def test_resource_lock_keeps_the_second_job_queued_while_held(data_dir):
    fd = lock.try_acquire(jobs.resource_lock_path("t-res", "shared"), wait_s=0)
    assert fd is not None          # as if another job were using the resource
    try:
        job = jobs.create("t-res", {"key": "shared", "n": 1})
        job = wait_for(lambda: (j := jobs.read(job.id)).message == "waiting for shared" and j)
        assert job.state == "queued" and job.alive and job.pid
        time.sleep(0.5)
        assert jobs.read(job.id).state == "queued"
    finally:
        lock.release(fd)
    assert jobs.wait(job.id, timeout=60).state == "succeeded"


def test_resume_skips_done_work_and_inline_runs_hold_the_lock(data_dir):
    job = jobs.create("t-resume", {"n": 5, "cancel_after": 2}, start=False)
    st = jobs.run_inline(job.id)
    assert st["state"] == "cancelled" and st["message"] == "stopped after 2 answers"
    (job.dir / "resumed").touch()
    job = jobs.wait(jobs.start(job.id).id, timeout=60)        # resume in a worker, on the same folder
    assert job.state == "succeeded" and job.result == {"ran": [2, 3, 4]}
    assert [r["i"] for r in jobs.read_jsonl(job.dir / "answers.jsonl")] == [0, 1, 2, 3, 4]
    # a job is executed by one process at a time
    wait_for(lambda: not jobs.is_alive(job.id), timeout=10)          # the worker exits after its last word
    fd = lock.try_acquire(job.folder.lock_path, wait_s=0)
    assert fd is not None                                            # now this test is "the other process"
    try:
        with pytest.raises(JobError, match="already being executed"):
            jobs.run_inline(job.id)
        with pytest.raises(JobError, match="already running"):
            jobs.start(job.id)
    finally:
        lock.release(fd)
    with pytest.raises(JobError, match="has ended"):
        jobs.start(jobs.wait(jobs.create("t-echo", {"n": 1}).id, timeout=60).id)   # not a resumable kind


def test_cli_lists_shows_and_cancels_jobs_of_every_kind(data_dir):
    done = jobs.wait(jobs.create("t-echo", {"n": 2}).id, timeout=60)
    loop = jobs.create("t-loop", {})
    wait_for(lambda: jobs.read(loop.id).state == "running")
    env = dict(os.environ, WORKBENCH_DATA=str(data_dir), **{registry.ENV_KINDS: registry.extra_kinds_env()})

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "core", "jobs", *args, "--json"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    listed = {r["id"]: (r["kind"], r["state"]) for r in cli("list")["runs"]}
    assert listed == {done.id: ("t-echo", "succeeded"), loop.id: ("t-loop", "running")}
    assert [r["id"] for r in cli("list", "--kind", "t-echo")["runs"]] == [done.id]
    shown = cli("show", done.id)
    assert shown["status"]["result"] == {"sum": 1} and shown["spec"] == {"n": 2} and shown["kind"] == "t-echo"
    assert cli("cancel", loop.id) == {"run_id": loop.id, "kind": "t-loop", "state": "cancelled"}
    assert jobs.read(loop.id).state == "cancelled" and not jobs.is_alive(loop.id)
