"""What the Prompt Lab path costs on top of the raw libraries, on the same work.

1. Running a variant: render spec -> prepare (exact token count + context check) -> stream through the worker
   thread/queue of `stream_variants`, vs bare llama-cpp-python `create_chat_completion(stream=True)` on the same
   messages, GGUF, sampling settings and seed (same tokens). Runs interleaved. Ratio = ours / bare wall time.
2. The prompt library: `save` (validate + temp file + exclusive link) and `get` (parse + validate) vs a bare
   `yaml.safe_dump` to a file and `yaml.safe_load` of it.

    .venv/bin/python bench/prompt_lab.py [--runs 5] [--max-tokens 64] [--saves 200]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from core.llm.registry import get_backend  # noqa: E402
from core.prompts.library import PromptLibrary  # noqa: E402
from core.prompts.run import Variant, prepare, stream_variants  # noqa: E402
from core.prompts.spec import PromptSpec  # noqa: E402

SPEC = PromptSpec.from_dict({
    "name": "bench_few_shot",
    "system": "You are Pip, the support assistant for Tidewave, an online booking app.",
    "template": "{question}",
    "examples": [{"user": "How do I reset my password?",
                  "assistant": "Ahoy! 1. Click Forgot password. 2. Open the email link. Smooth sailing!"}],
    "params": {"temperature": 0.2, "top_p": 0.95, "max_tokens": 64, "seed": 42},
})
VARS = {"question": "How do I turn on SMS reminders for my appointments?"}


def ours(backend) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    p = prepare(Variant("A", SPEC, "embedded", ""), VARS, backend)
    text, res = "", None
    for ev in stream_variants([p]):
        if ev.kind == "delta":
            text += ev.text
        elif ev.kind in ("done", "error"):
            res = ev.result
    assert res is not None and res.error is None, res
    return time.perf_counter() - t0, res.usage.completion_tokens, text


def bare(llm, messages) -> tuple[float, str]:
    p = SPEC.params
    t0 = time.perf_counter()
    text = ""
    for chunk in llm.create_chat_completion(messages=messages, stream=True, temperature=p.temperature, top_p=p.top_p,
                                            max_tokens=p.max_tokens, seed=p.seed):
        text += chunk["choices"][0]["delta"].get("content") or ""
    return time.perf_counter() - t0, text


def bench_generation(runs: int) -> list[tuple]:
    backend = get_backend("embedded")
    lm = backend.load(None)              # the same Llama instance for both paths (no second model in memory)
    messages = SPEC.render(VARS)
    ours(backend), bare(lm.llm, messages)  # warm-up
    t_ours, t_bare, toks, same = [], [], [], 0
    for _ in range(runs):
        with lm.lock:
            tb, text_b = bare(lm.llm, messages)
        to, n, text_o = ours(backend)
        t_bare.append(tb)
        t_ours.append(to)
        toks.append(n)
        same += text_o == text_b
    mo, mb = statistics.median(t_ours), statistics.median(t_bare)
    return [("run a variant (median wall s)", f"{mo:.3f}", f"{mb:.3f}", f"{mo / mb:.3f}"),
            ("  completion tokens / identical text", f"{statistics.median(toks):.0f}", f"{same}/{runs} same", "")]


def bench_library(n: int) -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        lib = PromptLibrary(Path(tmp) / "lib")
        raw = Path(tmp) / "raw"
        raw.mkdir()
        t0 = time.perf_counter()
        for k in range(n):
            lib.save(SPEC, f"version {k}")
        t_save = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for k in range(n):
            (raw / f"v{k:04d}.yaml").write_text(yaml.safe_dump({"meta": {"message": f"version {k}"},
                                                                 **SPEC.to_dict()}, sort_keys=False))
        t_raw_save = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for k in range(1, n + 1):
            lib.get(f"bench_few_shot@{k}")
        t_get = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for k in range(n):
            yaml.safe_load((raw / f"v{k:04d}.yaml").read_text())
        t_raw_get = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        assert len(lib.versions("bench_few_shot")) == n
        t_hist = time.perf_counter() - t0
    rows.append(("library save (ms/version)", f"{t_save * 1e3:.2f}", f"{t_raw_save * 1e3:.2f}",
                 f"{t_save / t_raw_save:.2f}"))
    rows.append(("library get name@N (ms)", f"{t_get * 1e3:.2f}", f"{t_raw_get * 1e3:.2f}",
                 f"{t_get / t_raw_get:.2f}"))
    rows.append((f"history of {n} versions (ms)", f"{t_hist * 1e3:.1f}", "", ""))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--saves", type=int, default=200)
    args = ap.parse_args()
    SPEC.params.max_tokens = args.max_tokens
    rows = bench_generation(args.runs) + bench_library(args.saves)
    print(f"{'work':<40} {'workbench':>12} {'raw library':>12} {'ratio':>7}")
    for r in rows:
        print(f"{r[0]:<40} {r[1]:>12} {r[2]:>12} {r[3]:>7}")


if __name__ == "__main__":
    main()
