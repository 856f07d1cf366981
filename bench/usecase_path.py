"""Bring-your-own-use-case path, timed end to end through the CLI (each step a fresh `python -m core` process,
as a user runs it), on the built-in model, from a folder of documents and a CSV of past answers to a reviewed
question set and a training dataset. Training is not included.

    .venv/bin/python bench/usecase_path.py [--docs sample_docs/knowledge] [--answers tests/fixtures/usecase/past_answers.csv]
                                           [--rounds 1] [--data DIR]

Steps: new --docs (copy + ingest) -> import-answers --mask-pii -> checks --accept-all -> gen-questions (extractive)
-> review --accept-all --save. The review step accepts every candidate: the time a person spends reading them is
not measured (the walkthrough in the README says how many there are to read).

Ratio: the `usecase new --docs` step against a bare `python -m core ingest` of the same folder into a fresh
collection, alternated (use case, bare, use case, bare ...) so the load of a shared machine hits both alike.
Target: <= 1.1 (the workspace adds a file copy, the ingest itself is the same).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(env: dict, *argv: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "core", *argv, "--json"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=3600)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return dt, json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default=str(ROOT / "sample_docs" / "knowledge"))
    ap.add_argument("--answers", default=str(ROOT / "tests" / "fixtures" / "usecase" / "past_answers.csv"))
    ap.add_argument("--rounds", type=int, default=1, help="pairs of (use case, bare ingest) for the ratio")
    ap.add_argument("--data", help="data folder (default: a fresh temp folder)")
    args = ap.parse_args()
    data = args.data or tempfile.mkdtemp(prefix="bench-usecase-")
    env = dict(os.environ, WORKBENCH_DATA=data, LANCEDB_LOG="error", HF_HUB_OFFLINE="1", UNSLOTH_AUTO_INSTALL="0")
    load0 = os.getloadavg()
    print(f"data folder {data}; load average {load0[0]:.1f} on {os.cpu_count()} CPUs")

    steps = []
    t, new = cli(env, "usecase", "new", "byo", "--product", "Tidewave", "--docs", args.docs,
                 "--system-prompt", "You are Pip, the support assistant for Tidewave.")
    steps.append(("new --docs (copy + ingest)", t, f"{new['ingest']['ok']} docs, {new['ingest']['chunks']} chunks"))
    t, imp = cli(env, "usecase", "import-answers", "byo", args.answers, "--mask-pii")
    steps.append(("import-answers --mask-pii", t, f"{imp['rows_read']} rows -> {imp['written']} training rows, "
                                                  f"{len(imp['duplicates'])} dupes, {len(imp['pii'])} PII"))
    t, chk = cli(env, "usecase", "checks", "byo", "--accept-all")
    steps.append(("checks --accept-all", t, ", ".join(chk["accepted"]) or "none"))
    t, gen = cli(env, "usecase", "gen-questions", "byo")
    steps.append(("gen-questions (extractive)", t, f"{gen['candidates']} candidates from {gen['chunks']} chunks, "
                                                   f"generation {gen['seconds']} s"))
    t, rev = cli(env, "usecase", "review", "byo", "--accept-all", "--save")
    leaks = len({lk["row"] for lk in rev["saved"]["leaks_removed"]})
    steps.append(("review --accept-all --save", t, f"{rev['saved']['saved']} questions saved, "
                                                   f"{leaks} leaking training row(s) removed"))
    total = sum(s[1] for s in steps)
    print(f"\n{'step':32} {'seconds':>8}  result")
    for name, sec, what in steps:
        print(f"{name:32} {sec:8.1f}  {what}")
    print(f"{'total (no training)':32} {total:8.1f}")

    times_uc, times_bare = [], []
    for r in range(args.rounds):
        t, _ = cli(env, "usecase", "new", f"byo_r{r}", "--docs", args.docs)
        times_uc.append(t)
        t, _ = cli(env, "ingest", args.docs, "--collection", f"bare_r{r}")
        times_bare.append(t)
    ratio = (sum(times_uc) / len(times_uc)) / (sum(times_bare) / len(times_bare))
    print(f"\nusecase new --docs vs bare ingest, {args.rounds} round(s): "
          + ", ".join(f"{a:.1f}/{b:.1f} s" for a, b in zip(times_uc, times_bare)) + f"; ratio {ratio:.3f}")
    load1 = os.getloadavg()
    print(f"load average at the end {load1[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
