"""`python -m core compare` / `python -m core report` as a user runs them (real subprocesses)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(args, data_dir, timeout=600):
    env = dict(os.environ, WORKBENCH_DATA=str(data_dir))
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_cli_bad_question_file_and_bad_approach_give_clear_errors(data_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "ok?"}\n{"id": "b"}\n{oops\n')
    r = _cli(["compare", "--questions", str(bad), "--approach", "p=model=smollm2-135m-instruct,prompt=zero_shot",
              "--json"], data_dir)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["error"] == "DatasetError" and "line 2" in out["message"] and "line 3" in out["message"]
    r = _cli(["compare", "--approach", "p=model=x,rag=support:bogus:4", "--json"], data_dir)
    assert r.returncode == 1 and "retrieval mode 'bogus'" in json.loads(r.stdout)["message"]
    r = _cli(["report", "no-such-run", "--format", "md", "--json"], data_dir)
    assert r.returncode == 1 and "No comparison run" in json.loads(r.stdout)["message"]


@pytest.mark.slow
def test_cli_compare_json_then_report(data_dir, tmp_path):
    qfile = tmp_path / "q.csv"
    qfile.write_text("id,question,reference,keywords\n"
                     "t1,How long is a team invitation valid?,Seven days.,7 days\n"
                     "t2,Where is customer data stored?,In Frankfurt.,Frankfurt\n"
                     "t3,Third question not run,x,\n")
    r = _cli(["compare", "--questions", str(qfile), "--approach", "zs=model=smollm2-135m-instruct,prompt=zero_shot",
              "--approach", "ft=model=ft:latest,prompt=zero_shot", "--limit", "2", "--max-tokens", "24", "--json"],
             data_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["state"] == "succeeded" and out["status"]["done"] == 2
    assert {(x["qid"], x["approach"], x["status"]) for x in out["rows"]} == {
        ("t1", "zs", "ok"), ("t2", "zs", "ok"), ("t1", "ft", "unavailable"), ("t2", "ft", "unavailable")}
    summ = {s["approach"]: s for s in out["summary"]}
    assert summ["zs"]["n"] == 2 and 0 <= summ["zs"]["quality"] <= 1 and summ["zs"]["latency_p95"] > 0
    assert not summ["ft"]["available"] and "Fine-Tune" in summ["ft"]["reason"]
    assert "Recommended: zs" in out["decision"]["overall"]

    md = tmp_path / "r.md"
    r = _cli(["report", out["run_id"], "--format", "md", "--out", str(md), "--cost-mode", "gpu",
              "--gpu-per-hour", "2.5"], data_dir)
    assert r.returncode == 0, r.stderr
    text = md.read_text()
    assert "$2.5/GPU-hour" in text and "## Maintenance" in text and "| t1 |" in text
    r = _cli(["compare", "--list", "--json"], data_dir)
    assert [x["run_id"] for x in json.loads(r.stdout)["runs"]] == [out["run_id"]]
