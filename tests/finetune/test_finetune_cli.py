"""CLI: bad input gives a clear message and exit 1 before any job starts."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.finetune.ft_helpers import BAD, ROOT, TRAIN


def run_cli(*args, data_dir):
    env = dict(os.environ, WORKBENCH_DATA=str(data_dir))
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_malformed_data_is_reported_by_line_and_no_job_starts(data_dir):
    r = run_cli("finetune", "--data", str(BAD / "malformed.jsonl"), "--json", data_dir=data_dir)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["error"] == "DatasetError" and "line 3" in out["message"]
    assert not (data_dir / "runs").exists() or not any((data_dir / "runs").glob("ft-*"))


def test_mixed_and_empty_files(data_dir):
    r = run_cli("finetune", "--data", str(BAD / "mixed_formats.jsonl"), data_dir=data_dir)
    assert r.returncode == 1 and "one format per file" in r.stderr
    r = run_cli("finetune", "--data", str(BAD / "empty.txt"), data_dir=data_dir)
    assert r.returncode == 1 and "no usable rows" in r.stderr


def test_out_of_range_hyper_parameters(data_dir):
    r = run_cli("finetune", "--data", str(TRAIN), "--learning-rate", "3", "--json", data_dir=data_dir)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["error"] == "InvalidParams" and "learning_rate" in out["message"]
    r = run_cli("finetune", "--data", str(TRAIN), "--lora-r", "0", data_dir=data_dir)
    assert r.returncode == 1 and "lora_r must be" in r.stderr


def test_jobs_and_export_on_unknown_ids(data_dir):
    r = run_cli("jobs", "show", "ft-missing", "--json", data_dir=data_dir)
    assert r.returncode == 1 and json.loads(r.stdout)["error"] == "JobError"
    r = run_cli("export", "ft-missing", "--format", "gguf-lora", data_dir=data_dir)
    assert r.returncode == 1 and "No adapter" in r.stderr
    r = run_cli("jobs", "list", "--json", data_dir=data_dir)
    assert r.returncode == 0 and json.loads(r.stdout) == {"runs": []}
