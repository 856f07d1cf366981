"""`python -m core prompts ...` and `python -m core generate --prompt ...` as real subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.config import PROJECT_ROOT as ROOT


def cli(data_dir, *argv, timeout=180):
    env = dict(os.environ, WORKBENCH_DATA=str(data_dir))
    return subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_prompts_list_show_history_diff_label(data_dir, tmp_path):
    r = cli(data_dir, "prompts", "list", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    names = {p["name"] for p in out["prompts"]}
    assert {"zero_shot", "few_shot", "guardrail"} <= names and out["errors"] == []

    r = cli(data_dir, "prompts", "show", "few_shot@1")
    assert r.returncode == 0 and r.stdout.startswith("# few_shot@1\nname: few_shot\n")

    # save an edited copy from a file, then diff, label and resolve by label
    f = tmp_path / "edit.yaml"
    shown = json.loads(cli(data_dir, "prompts", "show", "zero_shot", "--json").stdout)
    spec = shown["spec"]
    spec["system"] = "You are terse."
    f.write_text(json.dumps(spec))
    f = f.rename(tmp_path / "edit.json")
    r = cli(data_dir, "prompts", "save", str(f), "-m", "terse system", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"name": "zero_shot", "version": 2}
    r = cli(data_dir, "prompts", "diff", "zero_shot@1", "zero_shot@2")
    assert "+system: You are terse." in r.stdout
    assert cli(data_dir, "prompts", "label", "zero_shot", "1", "baseline").returncode == 0
    r = cli(data_dir, "prompts", "show", "zero_shot@baseline", "--json")
    assert json.loads(r.stdout)["version"] == 1
    r = cli(data_dir, "prompts", "history", "zero_shot", "--json")
    hist = json.loads(r.stdout)["versions"]
    assert [(v["version"], v["message"], v["labels"]) for v in hist] == [(1, "starter", ["baseline"]),
                                                                         (2, "terse system", [])]


def test_prompts_errors_are_clear(data_dir):
    r = cli(data_dir, "prompts", "show", "nope", "--json")
    assert r.returncode == 1
    err = json.loads(r.stdout)
    assert err["error"] == "PromptNotFound" and "No prompt named 'nope'" in err["message"]
    r = cli(data_dir, "generate", "--prompt", "zero_shot", "--var", "oops")
    assert r.returncode == 1 and "must look like key=value" in r.stderr


@pytest.mark.slow
def test_generate_with_prompt_json(data_dir):
    r = cli(data_dir, "generate", "--prompt", "zero_shot@1", "--var", "question=How do I reset my password?",
            "--max-tokens", "12", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["prompt"] == "zero_shot" and out["version"] == 1 and out["error"] is None
    assert out["text"].strip() and 0 < out["usage"]["completion_tokens"] <= 12
    assert out["messages"][-1]["content"].endswith("How do I reset my password?") or \
        "How do I reset my password?" in out["messages"][-1]["content"]


@pytest.mark.slow
def test_generate_missing_variable_and_unknown_model(data_dir):
    r = cli(data_dir, "generate", "--prompt", "zero_shot", "--json")
    assert r.returncode == 1 and "needs a value for {question}" in json.loads(r.stdout)["message"]
    r = cli(data_dir, "generate", "--prompt", "zero_shot", "--var", "question=hi", "--model", "nope-1b")
    assert r.returncode == 1 and "no model 'nope-1b'" in r.stderr


def test_plain_generate_still_delegates(data_dir):
    """Without --prompt the foundation's generate handles the call (an empty prompt is its clear error)."""
    r = cli(data_dir, "generate", "")
    assert r.returncode == 1 and "empty" in r.stderr.lower()
