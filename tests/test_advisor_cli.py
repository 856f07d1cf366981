"""`python -m core advise` and `python -m core rate` as a user runs them (real subprocesses)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import advisor as ADV

ROOT = Path(__file__).resolve().parents[1]


def _cli(args, data_dir, timeout=300):
    env = dict(os.environ, WORKBENCH_DATA=str(data_dir))
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_advise_json_defaults_flags_and_errors(data_dir):
    r = _cli(["advise", "--json"], data_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["advice"]["start"]["approach"] == "prompt_only" and out["advice"]["next_step"] is None
    assert out["compare"]["approaches"][0].startswith("prompt_only=") and out["cli"].endswith("--json")
    r = _cli(["advise", "--knows-facts", "yes", "--facts-change", "weekly", "--citations", "--strict-voice",
              "--examples", "500", "--training-budget", "low", "--queries-per-month", "250000",
              "--latency-budget", "1.5", "--repeats", "3", "--json"], data_dir)
    out = json.loads(r.stdout)
    assert out["advice"]["start"]["approach"] == "prompt_rag"
    assert out["advice"]["next_step"]["approach"] == "fine_tuned_rag" and out["advice"]["next_step"]["ready"]
    assert out["advice"]["answers"]["latency_budget_s"] == 1.5 and out["compare"]["repeats"] == 3
    # the page's CLI line gives the same advice
    q = ADV.Questionnaire.from_dict(out["advice"]["answers"])
    assert ADV.advise_cli_line(q).split()[3:] == out["cli"].split()[3:]
    r = _cli(["advise", "--examples", "-5", "--json"], data_dir)
    assert r.returncode == 1 and json.loads(r.stdout)["error"] == "AdvisorError"
    r = _cli(["advise", "--knows-facts", "maybe"], data_dir)
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = _cli(["advise", "--demo", "--no-strict-voice", "--json"], data_dir)
    out = json.loads(r.stdout)
    assert out["advice"]["answers"]["citations"] is True and out["advice"]["next_step"] is None
    r = _cli(["advise"], data_dir)
    assert r.returncode == 0 and "Start with: Prompt engineering only" in r.stdout and "python -m core compare" in r.stdout


def test_advise_attach_and_check_a_run_then_rate_through_the_cli(data_dir):
    from tests.compare.run_helpers import add_answer, make_run

    rid, qs = make_run(6)
    for i, q in enumerate(qs):
        add_answer(rid, q.id, "prompt_only", 0.3 + 0.05 * i, grade=4)
        add_answer(rid, q.id, "short", 0.3 + 0.05 * i + (0.01 if i % 2 else -0.01), grade=2)
    r = _cli(["advise", "--attach", rid, "--run", rid, "--json"], data_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert Path(out["attached"]).name == ADV.ADVICE_FILE
    assert out["check"]["verdict"] == "inconclusive" and out["check"]["start"] == "prompt_only"
    r = _cli(["rate", rid, f"{qs[0].id}/short/0", "--bad", "--grade", "2", "--rater", "ana", "--note", "wrong",
              "--json"], data_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rating"]["label"] == "bad" and out["rating"]["grade"] == 2
    assert len(out["answers"]) == 12 and "κ" in out["judge"]["text"]
    r = _cli(["rate", rid, f"{qs[0].id}/short/0", "--good", "--json"], data_dir)            # no rater
    assert r.returncode == 1 and json.loads(r.stdout)["error"] == "RatingError"
    exp = data_dir / "labels.jsonl"
    r = _cli(["rate", rid, "--export", str(exp)], data_dir)
    assert r.returncode == 0 and json.loads(exp.read_text().splitlines()[0])["rater"] == "ana"
    r = _cli(["report", rid, "--format", "md", "--json"], data_dir)
    md = Path(json.loads(r.stdout)["path"]).read_text(encoding="utf-8")
    assert "## Advisor vs measured" in md and "## Judge agreement with people" in md


@pytest.mark.slow
def test_from_advice_to_a_measured_run_and_its_report(data_dir):
    """The CLI path of the story: advise -> run the compare line it prints -> attach -> report quotes the advice."""
    import shlex

    r = _cli(["advise", "--json"], data_dir)
    spec = json.loads(r.stdout)["compare"]
    argv = shlex.split(spec["cli"])[3:] + ["--limit", "2", "--max-tokens", "16", "--json"]
    r = _cli(argv, data_dir, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    run = json.loads(r.stdout)
    assert run["status"]["done"] == 2                                   # prompt_only answered both questions
    avail = {s["approach"]: s["available"] for s in run["summary"]}
    assert avail == {"prompt_only": True, "prompt_rag": False}          # no collection built in this data folder
    r = _cli(["advise", "--attach", run["run_id"], "--run", run["run_id"], "--json"], data_dir)
    chk = json.loads(r.stdout)["check"]
    assert chk["verdict"] == "inconclusive" and "Only prompt_only was measured" in chk["text"]
    r = _cli(["report", run["run_id"], "--format", "md", "--json"], data_dir)
    md = Path(json.loads(r.stdout)["path"]).read_text(encoding="utf-8")
    from core.safe_text import escape_markdown

    # the Markdown report escapes its sentences (core.safe_text), so look for the escaped sentence
    verdict = escape_markdown("Measured verdict: inconclusive.", newline="space", keep_numbers=True)
    assert "## Advisor vs measured" in md and verdict in md
