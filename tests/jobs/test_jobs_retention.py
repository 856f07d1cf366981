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


def test_runs_a_comparison_references_are_kept(data_dir, tmp_path, monkeypatch):
    """Real kinds: a fine-tuning run whose adapter a comparison used, and a comparison another one names as its
    baseline, survive cleanup; the unreferenced ones beyond the bound go."""
    from core.compare import approach as A
    from core.compare import runner as compare
    from core.compare.questions import Question
    from core.finetune import runner as finetune
    from core.finetune.datasets import load_file
    from core.finetune.spec import preset_spec
    from tests.finetune.ft_helpers import small_train_file

    ds = load_file(small_train_file(tmp_path, 4))
    runs = [finetune.create_run(preset_spec("quick"), ds) for _ in range(3)]
    for r in runs:                                    # finished (as if trained), without spending training time
        folder = jobs.RunFolder(r.dir)
        folder.write_status({**folder.read_status(), "state": "succeeded", "finished": 1.0})
    qs = [Question("q1", "How long is an invitation valid?", "Seven days")]
    base = compare.create_run([A.ApproachSpec("plain", prompt="zero_shot")], qs)
    used = compare.create_run([A.ApproachSpec("plain", prompt="zero_shot")], qs, baseline=base)
    spec_path = compare.run_dir(used) / "spec.json"
    spec = json.loads(spec_path.read_text())
    spec["approaches"][0]["adapter"] = {"name": runs[0].run_id}       # the comparison used the oldest adapter
    spec_path.write_text(json.dumps(spec))
    other = compare.create_run([A.ApproachSpec("plain", prompt="zero_shot")], qs)
    for run_id in (base, used, other):
        folder = jobs.RunFolder(compare.run_dir(run_id))
        folder.write_status({**folder.read_status(), "state": "succeeded", "finished": 1.0})
    assert compare.referenced_jobs("finetune") == {runs[0].run_id}
    assert compare.referenced_jobs("compare") == {base}
    assert sorted(jobs.cleanup("finetune", keep=1)) == [runs[1].run_id]
    assert {r.run_id for r in finetune.list_runs()} == {runs[0].run_id, runs[2].run_id}
    assert jobs.cleanup("compare", keep=1) == [used]            # the newest is kept, the baseline is referenced
    assert {r["run_id"] for r in compare.list_runs()} == {base, other}
