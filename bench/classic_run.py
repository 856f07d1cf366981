"""The full classic run, timed as a user starts it: `python -m core compare --preset classic` over every scenario
question, in a fresh process, clock started before the process (resolving the approaches, loading the models and
retrieval are included), on the embedded model.

    .venv/bin/python bench/classic_run.py --data /tmp/classic/data [--train] [--max-tokens 96] [--limit N]

The fine-tuned columns need adapters in that data folder: --train first trains the two the preset picks, the quick
preset on the plain transcripts ("ft:latest") and on the RAFT variant ("ft:latest-raft"), each with
`python -m core finetune` (their times are printed too, but are not part of the run). Then prints the run's wall
time against the issue's target (<= 12 min for 57 questions x 4 columns on 2 cores), seconds per answer, and the
TTFT p50 and prompt tokens p50 per column from the run's stored records; the load average before and after, since
a busy machine inflates every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 12 * 60
TRAIN = ROOT / "sample_docs" / "finetune" / "train.chat.jsonl"


def run(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="data folder (WORKBENCH_DATA) holding or receiving the adapters")
    ap.add_argument("--train", action="store_true", help="train the plain and RAFT quick adapters first")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (0 = all)")
    args = ap.parse_args()
    env = dict(os.environ, WORKBENCH_DATA=str(Path(args.data).resolve()), UNSLOTH_AUTO_INSTALL="0",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", LANCEDB_LOG="error", TOKENIZERS_PARALLELISM="false")
    py = [sys.executable, "-m", "core"]
    if args.train:
        for variant in ("plain", "raft"):
            s, p = run(py + ["finetune", "--data", str(TRAIN), "--preset", "quick", "--data-variant", variant,
                             "--name", f"{variant}-quick"], env)
            print(f"trained the {variant} quick adapter in {s:.0f} s (rc {p.returncode})")
            if p.returncode:
                print(p.stderr[-2000:], file=sys.stderr)
                return 1
    load0 = os.getloadavg()[0]
    cmd = py + ["compare", "--preset", "classic", "--max-tokens", str(args.max_tokens), "--json"]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    wall, p = run(cmd, env)
    load1 = os.getloadavg()[0]
    if p.returncode:
        print(p.stderr[-3000:], file=sys.stderr)
        return 1
    out = json.loads(p.stdout)
    run_id = out["run_id"]
    results = Path(out["dir"]) / "results.jsonl"
    rows = [json.loads(x) for x in results.read_text(encoding="utf-8").splitlines() if x.strip()]
    n_q = len({r["qid"] for r in rows})
    print(f"\nClassic run, {n_q} questions x {len({r['approach'] for r in rows})} columns = {len(rows)} answers, "
          f"max_tokens {args.max_tokens} (2 cores, load avg {load0:.1f} -> {load1:.1f}), run {run_id}\n")
    print("| column | answers | TTFT p50 s | latency p50 s | prompt tokens p50 |")
    print("|---|---:|---:|---:|---:|")
    for name in dict.fromkeys(r["approach"] for r in rows):
        mine = [r for r in rows if r["approach"] == name and r.get("ok")]
        med = lambda key: statistics.median([r[key] for r in mine if r.get(key) is not None] or [0])  # noqa: E731
        print(f"| {name} | {len(mine)} | {med('ttft_s'):.2f} | {med('latency_s'):.2f} | {med('prompt_tokens'):.0f} |")
    scale = 57 / n_q if n_q else 1.0
    print(f"\nwall time {wall:.1f} s ({wall / 60:.1f} min), {wall / max(1, len(rows)):.2f} s per answer; "
          f"target <= {TARGET_S} s for 57 questions: {'ok' if wall * scale <= TARGET_S else 'ABOVE'} "
          f"(ratio {wall * scale / TARGET_S:.2f} of the target{', scaled to 57 questions' if n_q != 57 else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
