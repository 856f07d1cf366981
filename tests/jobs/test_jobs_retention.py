"""Retention: a bounded number of finished folders per kind; running and still-referenced jobs are never removed."""
from __future__ import annotations

import json

from core import jobs
from tests.jobs.conftest import wait_for


def _finished(n: int, kind: str = "t-keep") -> list[str]:
    ids = []
    for _ in range(n):
        job = jobs.create(kind, {"n": 1}, start=False)
        assert jobs.run_inline(job.id)["state"] == "succeeded"
        ids.append(job.id)
    return ids


def test_cleanup_keeps_the_newest_the_running_and_the_referenced(data_dir):
    old = _finished(5)
    (data_dir / "protected.json").write_text(json.dumps([old[0]]))       # "a comparison still references it"
    running = jobs.create("t-loop", {})
    wait_for(lambda: jobs.read(running.id).state == "running")
    deleted = jobs.cleanup("t-keep", keep=2)
    assert sorted(deleted) == sorted(old[1:3])
    assert {j.id for j in jobs.list_jobs("t-keep")} == {old[0], old[3], old[4]}
    assert jobs.cleanup("t-loop", keep=0) == [] and jobs.read(running.id).state == "running"
    jobs.cancel(running.id)
    wait_for(lambda: not jobs.is_alive(running.id), timeout=10)          # the worker exits after its last word
    assert jobs.cleanup("t-loop", keep=0) == [running.id]


def test_creating_a_job_applies_the_bound_from_the_settings(data_dir, monkeypatch):
    monkeypatch.setenv("WORKBENCH_JOBS_KEEP", "3")
    ids = _finished(3, "t-echo")
    newest = jobs.create("t-echo", {"n": 1}, start=False)                # queued: never counted, never removed
    assert {j.id for j in jobs.list_jobs("t-echo")} == set(ids) | {newest.id}
    assert jobs.run_inline(newest.id)["state"] == "succeeded"
    jobs.create("t-echo", {"n": 1}, start=False)
    remaining = {j.id for j in jobs.list_jobs("t-echo")}
    assert ids[0] not in remaining and {ids[1], ids[2], newest.id} <= remaining and len(remaining) == 4


def test_unreadable_references_delete_nothing(data_dir):
    _finished(4)
    (data_dir / "protect-broken").touch()
    assert jobs.cleanup("t-keep", keep=1) == []
    assert len(jobs.list_jobs("t-keep")) == 4
