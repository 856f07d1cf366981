"""Repeated runs: create_run(..., repeats=N) answers every question N times with seeds base+0..N-1, results are
keyed by (question, approach, repeat), a resume skips finished triples, and runs stored before repeats existed
read as repeat 0."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.compare import approach as A
from core.compare import runner
from core.compare.summary import matrix_rows, matrix_wide
from core.errors import CompareError
from core.scenario import scenario_questions
from tests.compare.run_helpers import add_answer, make_run

ROOT = Path(__file__).resolve().parents[2]


def test_repeats_are_bounded_and_refused_at_temperature_zero(data_dir):
    qs = scenario_questions()[:2]
    spec = [A.ApproachSpec("zs", prompt="zero_shot")]
    for bad in (0, 21, -1, True, 2.5, "3"):
        with pytest.raises(CompareError, match="repeats must be a whole number from 1 to 20"):
            runner.create_run(spec, qs, repeats=bad)
    with pytest.raises(CompareError, match="need a temperature above 0") as exc:
        runner.create_run(spec, qs, repeats=2, temperature=0.0)
    assert "zs" in str(exc.value)
    assert runner.list_runs() == []                                  # nothing half-written left behind
    rid = runner.create_run(spec, qs, repeats=3, temperature=0.7)
    run = runner.load_run(rid)
    assert run.spec["params"]["repeats"] == 3 and run.repeats == 3
    assert run.status["total"] == 2 * 1 * 3
    rid1 = runner.create_run(spec, qs, temperature=0.0)             # one repeat at temperature 0 is fine
    assert runner.load_run(rid1).spec["params"]["repeats"] == 1


def test_old_runs_without_repeat_read_as_repeat_zero(data_dir):
    rid, qs = make_run(2)
    spec_path = runner.run_dir(rid) / "spec.json"
    spec = json.loads(spec_path.read_text())
    del spec["params"]["repeats"]                                    # a run stored before repeats existed
    spec_path.write_text(json.dumps(spec))
    for q in qs:
        add_answer(rid, q.id, "prompt_only", 0.5)                    # records without a "repeat" field
    run = runner.load_run(rid)
    assert run.repeats == 1
    assert run.result(qs[0].id, "prompt_only") is run.result(qs[0].id, "prompt_only", 0) is not None
    assert run.result(qs[0].id, "prompt_only", 1) is None
    assert runner.done_pairs(run.dir / "results.jsonl") == {(q.id, "prompt_only", 0) for q in qs}
    rows = matrix_rows(run)
    assert {(r["qid"], r["approach"], r["repeat"]) for r in rows} == {(q.id, a, 0) for q in qs
                                                                    for a in ("prompt_only", "short")}


def test_matrix_has_a_row_per_repeat_and_the_wide_view_averages(data_dir):
    rid, qs = make_run(2)
    add_answer(rid, qs[0].id, "prompt_only", 0.2, repeat=0)
    add_answer(rid, qs[0].id, "prompt_only", 0.6, repeat=1)
    add_answer(rid, qs[1].id, "prompt_only", 0.4)                   # no "repeat": repeat 0
    run = runner.load_run(rid)
    assert run.repeats == 2
    assert run.result(qs[0].id, "prompt_only", 1)["quality"] == 0.6
    rows = {(r["qid"], r["approach"], r["repeat"]): r for r in matrix_rows(run)}
    assert len(rows) == 2 * 2 * 2
    assert rows[(qs[0].id, "prompt_only", 1)]["status"] == "ok"
    assert rows[(qs[1].id, "prompt_only", 1)]["status"] == "pending"
    wide = {w["id"]: w for w in matrix_wide(list(rows.values()))}
    assert wide[qs[0].id]["prompt_only"] == pytest.approx(0.4)
    assert wide[qs[1].id]["prompt_only"] == pytest.approx(0.4) and wide[qs[1].id]["short"] is None


def test_cli_repeats_at_temperature_zero_is_a_clear_error(data_dir):
    env = dict(os.environ, WORKBENCH_DATA=str(data_dir))
    r = subprocess.run([sys.executable, "-m", "core", "compare", "--approach",
                        "p=model=smollm2-135m-instruct,prompt=zero_shot", "--repeats", "2", "--temperature", "0",
                        "--limit", "1", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["error"] == "CompareError" and "temperature above 0" in out["message"]


@pytest.mark.slow
def test_real_batch_with_two_repeats_stores_distinct_seeds_and_resume_skips_them(data_dir):
    qs = scenario_questions()[:2]
    rid = runner.create_run([A.ApproachSpec("zs", prompt="zero_shot")], qs, repeats=2, temperature=0.7,
                            max_tokens=16, seed=100)
    st = runner.run_batch(runner.run_dir(rid), score=False)
    assert st["state"] == "succeeded" and st["done"] == 4 and st["total"] == 4
    lines = [json.loads(x) for x in (runner.run_dir(rid) / "results.jsonl").read_text().splitlines() if x.strip()]
    assert len(lines) == 4 and all(r["ok"] for r in lines), [r.get("error") for r in lines]
    assert sorted((r["qid"], r["repeat"], r["seed"]) for r in lines) == sorted(
        (q.id, rep, 100 + rep) for q in qs for rep in (0, 1))
    assert all(r["params"]["seed"] == r["seed"] and r["params"]["temperature"] == 0.7 for r in lines)
    run = runner.load_run(rid)
    assert run.result(qs[0].id, "zs", 1)["seed"] == 101 and run.result(qs[0].id, "zs", 0)["seed"] == 100
    assert runner.done_pairs(run.dir / "results.jsonl") == {(q.id, "zs", rep) for q in qs for rep in (0, 1)}
    seen = []
    st = runner.run_batch(runner.run_dir(rid), score=False, on_record=lambda rec, _st: seen.append(rec))
    assert st["state"] == "succeeded" and st["resumed_from"] == 4 and seen == []     # nothing redone
    assert len((runner.run_dir(rid) / "results.jsonl").read_text().splitlines()) == 4
