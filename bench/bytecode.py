"""What `make setup`'s bytecode step buys: the project's own modules (core/, ui/) precompiled to .pyc, against the
same calls with no .pyc, on a machine where Python may not write bytecode itself (PYTHONDONTWRITEBYTECODE=1, as in
many containers and CI images; this bench sets it for every call so the "no .pyc" side stays that way).

    .venv/bin/python bench/bytecode.py [--rounds 5]

Each round clears core/ and ui/'s __pycache__ (A), times every command, then compiles them with compileall (B) and
times every command again; rounds interleave A B A B after one untimed warm-up round (page cache). Commands: a
hybrid `search` on an ONNX-made collection (no torch), `prompts list`, and Prompt Lab's first render under AppTest
in a fresh process (no browser). Prints the medians and the ratio precompiled / none (< 1 = faster). The .pyc
files are left in place afterwards, as `make setup` leaves them.
"""
from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "ui")
FIRST_RENDER = ("from streamlit.testing.v1 import AppTest\n"
                "at = AppTest.from_file('app_pages/1_Prompt_Lab.py', default_timeout=120).run()\n"
                "assert not at.exception, at.exception\n")


def clear_bytecode() -> None:
    for pkg in PACKAGES:
        for d in (ROOT / pkg).rglob("__pycache__"):
            shutil.rmtree(d)


def compile_bytecode() -> None:
    for pkg in PACKAGES:
        compileall.compile_dir(str(ROOT / pkg), quiet=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-bytecode-"))
    data = tmp / "data"
    data.mkdir()
    env = dict(os.environ, WORKBENCH_DATA=str(data), PYTHONDONTWRITEBYTECODE="1", UNSLOTH_AUTO_INSTALL="0",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", LANCEDB_LOG="error", TOKENIZERS_PARALLELISM="false",
               OLLAMA_HOST=os.environ.get("OLLAMA_HOST", "127.0.0.1:9"))
    cmds = {
        "search --json (hybrid, ONNX collection)": ["-m", "core", "search", "How much is an SMS top-up pack?",
                                                    "--collection", "support_onnx", "--json"],
        "prompts list": ["-m", "core", "prompts", "list"],
        "Prompt Lab first render (AppTest)": ["-c", FIRST_RENDER],
    }
    try:
        subprocess.run([sys.executable, "-m", "core", "ingest", str(ROOT / "sample_docs" / "knowledge"),
                        "--collection", "support_onnx", "--embedder", "onnx:all-MiniLM-L6-v2", "--json"],
                       cwd=ROOT, env=env, capture_output=True, check=True, timeout=900)
        times = {(name, side): [] for name in cmds for side in "AB"}
        for rnd in range(args.rounds + 1):                 # round 0 is a warm-up
            for side in "AB":
                clear_bytecode() if side == "A" else compile_bytecode()
                for name, cmd in cmds.items():
                    t0 = time.perf_counter()
                    p = subprocess.run([sys.executable, *cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                                       timeout=600)
                    if p.returncode:
                        raise SystemExit(f"{name} failed:\n{p.stderr[-2000:]}")
                    if rnd:
                        times[(name, side)].append(time.perf_counter() - t0)
            print(f"round {rnd} done", file=sys.stderr)
        print(f"\nProject bytecode ({os.cpu_count()} cores, median of {args.rounds} interleaved A B rounds after a "
              f"warm-up, PYTHONDONTWRITEBYTECODE=1)\n")
        print("| call | no .pyc s | precompiled s | ratio precompiled / none |")
        print("|---|---:|---:|---:|")
        for name in cmds:
            a, b = statistics.median(times[(name, "A")]), statistics.median(times[(name, "B")])
            print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.2f}x |")
    finally:
        compile_bytecode()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
