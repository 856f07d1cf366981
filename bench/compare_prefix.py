"""Prefix-reuse bench: the embedded model's batch answered question by question (the order before issue 17) vs
grouped by approach (core.compare.runner.batch_plan now), through the real runner, same approaches, seeds, params.

    nice -n 10 .venv/bin/python bench/compare_prefix.py [--questions 6] [--max-tokens 24] [--rounds 1]

llama-cpp-python keeps the previous prompt's KV cache on the Llama object and evaluates only the tokens after the
longest common prefix (Llama.generate: "prefix-match hit"). Question by question, consecutive prompts on the base
model alternate between approaches (few-shot, guardrail + retrieved context, zero-shot) and share little more than
the chat template's first tokens; grouped by approach, every prompt after the first re-uses its column's system
prompt and few-shot block. The table gives TTFT p50 per column (what prompt processing costs) and the wall time per
order, medians over rounds (interleaved A B A B after an untimed warm-up pass of each), and checks that both
orders store the same answers (same seeds; nothing but the order differs).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=6)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--data", help="data folder (default: a fresh temp folder; the sample collection is built)")
    args = ap.parse_args()
    os.environ["WORKBENCH_DATA"] = args.data or tempfile.mkdtemp(prefix="bench-prefix-")

    from core.compare import approach as A
    from core.compare import runner
    from core.llm.base import GenParams
    from core.llm.registry import get_backend
    from core.rag import api as rag_api
    from core.scenario import scenario_questions

    rag_api.ensure_sample_collection()
    questions = scenario_questions(limit=args.questions)
    specs = [A.ApproachSpec("prompt_only", prompt="few_shot"),
             A.ApproachSpec("prompt_rag", prompt="guardrail", rag=A.RetrievalSpec("support", "hybrid", 4)),
             A.ApproachSpec("zero_shot", prompt="zero_shot")]
    backend = get_backend("embedded")
    backend.chat([{"role": "user", "content": "hi"}], GenParams(max_tokens=4))       # load the model
    rag_api.retrieve("warm up", "support", mode="hybrid", k=2)                       # load the embedder
    grouped_plan = runner.batch_plan

    def question_major(qs, approaches, repeats, concurrent=runner.serves_concurrently):
        """The order before issue 17: question by question, every approach."""
        serial, fanout = grouped_plan(qs, approaches, repeats, concurrent)
        pos = {(q.id, a.name, r): i for i, (q, a, r) in
               enumerate((q, a, r) for q in qs for a in approaches for r in range(repeats))}
        return sorted(serial, key=lambda it: pos[(it[0].id, it[1].name, it[2])]), fanout

    plans = {"question by question (before)": question_major, "grouped by approach (now)": grouped_plan}

    def one(plan) -> tuple[float, list[dict]]:
        runner.batch_plan = plan
        try:
            t = time.perf_counter()
            rid = runner.create_run(specs, questions, max_tokens=args.max_tokens, seed=42)
            st = runner.run_batch(runner.run_dir(rid), score=False)
            wall = time.perf_counter() - t
        finally:
            runner.batch_plan = grouped_plan
        assert st["state"] == "succeeded" and st["errors"] == 0, st
        return wall, runner.load_run(rid).results

    for name, plan in plans.items():
        print(f"warm-up {name}: {one(plan)[0]:.1f} s", file=sys.stderr)
    walls = {k: [] for k in plans}
    ttft = {k: {s.name: [] for s in specs} for k in plans}
    answers = {k: [] for k in plans}
    for i in range(args.rounds):
        for name, plan in plans.items():                   # A B A B ...
            wall, results = one(plan)
            walls[name].append(wall)
            for r in results:
                ttft[name][r["approach"]].append(r["usage"]["ttft_s"])     # the model's own, retrieval excluded
            answers[name].append([(r["qid"], r["approach"], r["answer"], r["completion_tokens"]) for r in results])
            print(f"round {i + 1} {name}: {wall:.1f} s", file=sys.stderr)
    before, now = list(plans)
    n = len(questions) * len(specs)
    print(f"\nPrefix-reuse bench: {len(specs)} approaches x {len(questions)} scenario questions = {n} answers per "
          f"pass, embedded SmolLM2-135M, max_tokens={args.max_tokens}, {args.rounds} interleaved round(s) after a "
          f"warm-up; TTFT = the model's time to first token (retrieval not included)\n")
    print("| column | prompt | TTFT p50 before s | TTFT p50 now s | ratio before / now |")
    print("|---|---|---:|---:|---:|")
    for s in specs:
        b, a = statistics.median(ttft[before][s.name]), statistics.median(ttft[now][s.name])
        print(f"| {s.name} | {s.prompt}{' + RAG' if s.rag else ''} | {b:.3f} | {a:.3f} | {b / a:.2f}x |")
    wb, wa = statistics.median(walls[before]), statistics.median(walls[now])
    print(f"| (whole pass, wall) | | {wb:.1f} | {wa:.1f} | {wb / wa:.2f}x |")
    ref = answers[before][0]
    same = all(x == ref for k in plans for x in answers[k])
    differ = sum(1 for k in plans for x in answers[k] for p, q in zip(x, ref) if p != q)
    print(f"\nanswers identical in both orders (same seeds): {'yes' if same else f'NO ({differ} differ)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
