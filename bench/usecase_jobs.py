"""The Use Case page's two jobs, timed: question generation as a `usecase_questions` job against the same
generation in the foreground CLI, and the first comparison (classic approaches on the use case's own question set)
as a Compare job, on the built-in model.

    .venv/bin/python bench/usecase_jobs.py [--docs sample_docs/knowledge] [--rounds 3] [--limit 4] [--data DIR]

Generation: A = `python -m core usecase gen-questions byo --replace-pending` (a fresh process, in the foreground),
B = `core.usecase.questions.start_job(...)` + `core.jobs.wait` (a worker process started by the job layer, what
the page's button does), timed from the call to the final state. One warm-up pair, then A B A B ... so the load of
a shared machine hits both alike. Ratio B/A: the job layer's overhead (target <= 1.2).

First comparison: every candidate accepted and saved as the question set, then `workspace.start_comparison`
(`--limit` questions) + `runner.start_worker` + wait, as the page's "Run first comparison" button does.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def foreground(env: dict) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "core", "usecase", "gen-questions", "byo", "--replace-pending",
                        "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"gen-questions failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0


def as_job() -> float:
    from core import jobs
    from core.usecase import questions

    t0 = time.perf_counter()
    job = questions.start_job(questions.job_spec("byo", "extractive", replace_pending=True))
    done = jobs.wait(job.id, timeout=1800, poll=0.05)
    if done.state != "succeeded":
        raise SystemExit(f"job {job.id} {done.state}: {done.error}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default=str(ROOT / "sample_docs" / "knowledge"))
    ap.add_argument("--rounds", type=int, default=3, help="A B pairs after the warm-up pair")
    ap.add_argument("--limit", type=int, default=4, help="questions in the first comparison")
    ap.add_argument("--data", help="data folder (default: a fresh temp folder)")
    args = ap.parse_args()
    data = args.data or tempfile.mkdtemp(prefix="bench-ucjobs-")
    os.environ.update(WORKBENCH_DATA=data, LANCEDB_LOG="error", HF_HUB_OFFLINE="1", UNSLOTH_AUTO_INSTALL="0")
    env = dict(os.environ)
    print(f"data folder {data}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    from core import jobs
    from core.compare import runner
    from core.rag.api import ingest_paths
    from core.usecase import review, workspace

    uc = workspace.create_usecase("byo", product="Tidewave", docs=[Path(args.docs)],
                                  system_prompt="You are Pip, the support assistant for Tidewave.")
    t0 = time.perf_counter()
    res = ingest_paths([uc.file("knowledge")], uc.collection)
    print(f"ingest: {sum(r.chunks for r in res)} chunks from {len(res)} docs in {time.perf_counter() - t0:.1f} s")

    foreground(env), as_job()                                  # warm-up pair (page cache, imports)
    a, b = [], []
    for _ in range(args.rounds):
        a.append(foreground(env))
        b.append(as_job())
    n = len(review.load_candidates(uc))
    ratio = (sum(b) / len(b)) / (sum(a) / len(a))
    print(f"gen-questions ({n} candidates): foreground " + ", ".join(f"{x:.2f}" for x in a) + " s; job "
          + ", ".join(f"{x:.2f}" for x in b) + f" s; ratio job/foreground {ratio:.3f}")

    review.set_status(uc, None, "accepted")
    saved = review.save_question_set(uc).saved
    t0 = time.perf_counter()
    run_id = workspace.start_comparison(workspace.get_usecase("byo"), limit=args.limit)
    runner.start_worker(run_id)
    done = jobs.wait(run_id, timeout=3600, poll=0.2)
    dt = time.perf_counter() - t0
    st = runner.read_status(runner.run_dir(run_id))
    print(f"first comparison: {saved} questions saved, {args.limit} compared x {len(done.spec['approaches'])} "
          f"approaches = {st['done']} answers ({st['errors']} errors) in {dt:.1f} s "
          f"({dt / max(st['done'], 1):.1f} s per answer), state {done.state}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
