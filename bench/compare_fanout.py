"""Fan-out bench: a batch comparison against an OpenAI-compatible server, sequential (concurrency 1) vs N requests in
flight (default 4), through the real runner (core.compare.runner.create_run + run_batch, resolving included).

    .venv/bin/python bench/compare_fanout.py [--questions 12] [--concurrency 4] [--rounds 3] [--token-ms 20]

The server is the TEST DOUBLE tests/fixtures/openai_double.py in its LATENCY SIMULATION mode: it sleeps a fixed
--token-ms before every streamed chunk and --first-ms before the first (prompt processing), each request in its own
thread, so concurrent requests overlap the way a batching server's (vLLM) do. It measures what the runner's fan-out
buys when the server is the bottleneck, not any model's speed. The double echoes each question, so every answer is
its own and a mix-up between requests would show: after timing, the stored records (answer, tokens, prompt,
params, seed; not timings) of every pass are checked identical to the first sequential pass.

One untimed warm-up pass of each variant, then rounds interleaved A B A B (sequential, concurrent, ...); the table
gives each variant's median wall time and the ratio sequential / concurrent (target >= 3x at N = 4).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOUBLE = ROOT / "tests" / "fixtures" / "openai_double.py"
STABLE = ("qid", "approach", "repeat", "ok", "answer", "prompt", "params", "seed", "prompt_tokens",
          "completion_tokens")


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=12)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--token-ms", type=float, default=20.0, help="latency simulation: sleep per streamed chunk")
    ap.add_argument("--first-ms", type=float, default=100.0, help="latency simulation: sleep before the first chunk")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--score", action="store_true", help="score every answer too (loads the embedder)")
    args = ap.parse_args()
    os.environ["WORKBENCH_DATA"] = tempfile.mkdtemp(prefix="bench-fanout-")
    port = _free_port()
    os.environ["OPENAI_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    os.environ["WORKBENCH_OPENAI_MODEL"] = "double"
    server = subprocess.Popen([sys.executable, str(DOUBLE), str(port), "--echo", "--latency-sim-token-ms",
                               str(args.token_ms), "--latency-sim-first-ms", str(args.first_ms)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        return _bench(args)
    finally:
        server.kill()
        server.wait()


def _bench(args) -> int:
    from core.compare import approach as A
    from core.compare import runner
    from core.scenario import scenario_questions

    questions = scenario_questions(limit=args.questions)
    specs = [A.ApproachSpec("zero_shot", "double", "zero_shot", backend="openai"),
             A.ApproachSpec("few_shot", "double", "few_shot", backend="openai")]
    n = len(questions) * len(specs)

    def one(concurrency: int) -> tuple[float, list[dict], list[dict]]:
        t = time.perf_counter()
        rid = runner.create_run(specs, questions, max_tokens=args.max_tokens, seed=42, concurrency=concurrency)
        st = runner.run_batch(runner.run_dir(rid), score=args.score)
        wall = time.perf_counter() - t
        assert st["state"] == "succeeded" and st["errors"] == 0, st
        results = runner.load_run(rid).results
        return wall, [{k: r.get(k) for k in STABLE} for r in results], results

    variants = {"sequential (1 in flight)": 1, f"concurrent ({args.concurrency} in flight)": args.concurrency}
    for name, c in variants.items():                               # warm-up: imports, prompt library, HTTP
        print(f"warm-up {name}: {one(c)[0]:.2f} s", file=sys.stderr)
    walls: dict[str, list[float]] = {k: [] for k in variants}
    lat: dict[str, list[float]] = {k: [] for k in variants}
    stored, reference = [], None
    for i in range(args.rounds):
        for name, c in variants.items():                           # A B A B ...
            wall, stable, results = one(c)
            walls[name].append(wall)
            lat[name] += [r["latency_s"] for r in results]
            reference = reference if reference is not None else stable
            stored.append(stable == reference)
            print(f"round {i + 1} {name}: {wall:.2f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in walls.items()}
    seq, con = med[list(variants)[0]], med[list(variants)[1]]
    print(f"\nCompare fan-out bench: {len(specs)} approaches x {len(questions)} questions = {n} answers per pass, "
          f"OpenAI-compatible TEST DOUBLE with a latency simulation of {args.token_ms:g} ms per token + "
          f"{args.first_ms:g} ms before the first, max_tokens={args.max_tokens}, scoring "
          f"{'on' if args.score else 'off'}, {args.rounds} interleaved round(s) after a warm-up\n")
    print("| variant | wall s (median) | spread s | s / answer | per-answer latency p50 s | ratio vs sequential |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, vals in walls.items():
        print(f"| {name} | {med[name]:.2f} | {min(vals):.2f}-{max(vals):.2f} | {med[name] / n:.3f} | "
              f"{statistics.median(lat[name]):.3f} | {seq / med[name]:.2f}x |")
    same = all(stored)
    print(f"\nwall-time ratio sequential / concurrent: {seq / con:.2f}x (target >= 3x at N = 4); stored records "
          f"identical across all {len(stored)} passes: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
