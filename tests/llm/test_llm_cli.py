"""`python -m core backends|generate` as a user runs them (real subprocesses)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args, data_dir, **env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    e = dict(os.environ, WORKBENCH_DATA=str(data_dir), OLLAMA_HOST=f"127.0.0.1:{port}", **env)
    e.pop("OPENAI_BASE_URL", None)
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=e, capture_output=True, text=True,
                          timeout=120)


def test_backends_json(data_dir):
    p = run(["backends", "--json"], data_dir)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    by_name = {b["name"]: b for b in out["backends"]}
    assert set(by_name) == {"embedded", "ollama", "openai"}
    assert by_name["embedded"]["reachable"] and by_name["embedded"]["models"][0]["id"] == "smollm2-135m-instruct"
    assert not by_name["ollama"]["reachable"] and "ollama serve" in by_name["ollama"]["reason"]
    assert not by_name["openai"]["reachable"] and "OPENAI_BASE_URL" in by_name["openai"]["reason"]


@pytest.mark.parametrize("args,error,words", [
    (["generate", ""], "EmptyPrompt", "empty"),
    (["generate", "hi", "--temperature", "50"], "InvalidParams", "temperature"),
    (["generate", "hi", "--max-tokens", "-1"], "InvalidParams", "max_tokens"),
    (["generate", "hi", "--backend", "nope"], "UnknownBackend", "embedded, ollama, openai"),
    (["generate", "hi", "--model", "gpt-9"], "ModelNotFound", "smollm2-135m-instruct"),
    (["generate", "hi", "--backend", "ollama", "--model", "x"], "BackendUnavailable", "ollama serve"),
    (["generate", "hi", "--schema", "/nonexistent/schema.json"], "InvalidParams", "schema file"),
])
def test_generate_bad_input(data_dir, args, error, words):
    p = run([*args, "--json"], data_dir)
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["error"] == error and words in out["message"]
    assert "Traceback" not in p.stderr and words in p.stderr


@pytest.mark.slow
def test_generate_json_and_streaming_text(data_dir, tmp_path):
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"answer": {"type": "string"}},
                                  "required": ["answer"]}))
    p = run(["generate", "What is 2+2?", "--system", "Be brief.", "--max-tokens", "40", "--seed", "1",
             "--schema", str(schema), "--json"], data_dir)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert isinstance(out["parsed"]["answer"], str) and json.loads(out["text"]) == out["parsed"]
    u = out["usage"]
    assert u["backend"] == "embedded" and u["prompt_tokens"] > 10 and u["completion_tokens"] > 0
    assert u["ttft_s"] > 0 and u["tokens_per_s"] > 0 and u["digest"].startswith("sha256:")
    p = run(["generate", "Name a color.", "--max-tokens", "8", "--stop", "\n\n"], data_dir)
    assert p.returncode == 0 and p.stdout.strip()
    assert "tok/s" in p.stderr and "prompt" in p.stderr


@pytest.mark.slow
def test_generate_with_adapter_uses_the_fine_tuned_model(data_dir, tiny_adapter):
    """`--adapter NAME` is the same as `--model ft:NAME`: the LoRA is loaded on its base and shows in the usage."""
    args = ["generate", "Say hello.", "--max-tokens", "12", "--seed", "3", "--json"]
    base = json.loads(run(args, data_dir).stdout)
    tuned = run([*args, "--adapter", "tiny"], data_dir)
    assert tuned.returncode == 0, tuned.stderr
    out = json.loads(tuned.stdout)
    assert out["usage"]["model"] == "ft:tiny" and out["usage"]["adapter"] == "tiny"
    assert tiny_adapter.sha256 in out["usage"]["digest"] and tiny_adapter.sha256 not in base["usage"]["digest"]
    missing = run([*args, "--adapter", "ft:nope"], data_dir)
    assert missing.returncode == 1 and json.loads(missing.stdout)["error"] == "ModelNotFound"
