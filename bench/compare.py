"""Compare bench: wall time of a 4-approach x N-question batch through our runner vs the same calls made directly.

    .venv/bin/python bench/compare.py [--questions 20] [--max-tokens 32] [--rounds 1] [--data DIR]

"direct" = resolving the approaches (core.compare.approach.resolve: prompt version, model, index table version)
then for each (question, approach): core.rag.api.retrieve + build_context + PromptSpec.render + backend.chat - the
work itself, nothing persisted. "runner" = core.compare.runner.create_run (the same resolution, plus spec.json and
status.json) + run_batch on that run folder with the same approaches, order, params and seed (per-answer JSONL
append with fsync, atomic status writes, provenance) but scoring off, so it is the same work. Both clocks start
before resolving, so resolving is included on both sides. "runner + scores" adds every score (embeddings for
similarity/groundedness/context hit). Model and embedder are loaded and warmed before timing; rounds alternate
direct/runner to spread the noise of a shared machine. Target: runner / direct <= 1.1.

On a busy machine the wall ratio is dominated by load drift between passes, so the table also shows each pass's
own overhead: wall time minus the time spent inside retrieval + generation (summed per answer). That difference
is what the runner adds (persisting, status, provenance), independent of how fast the model ran in that pass.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-scores", action="store_true", help="skip the runner + scores pass")
    ap.add_argument("--data", help="data folder (default: a fresh temp folder; the sample collection is built)")
    args = ap.parse_args()
    os.environ["WORKBENCH_DATA"] = args.data or tempfile.mkdtemp(prefix="bench-compare-")

    from core.compare import approach as A
    from core.compare import runner
    from core.scenario import scenario_questions
    from core.llm.base import GenParams
    from core.llm.registry import get_backend
    from core.prompts.spec import PromptSpec
    from core.rag import api as rag_api

    t0 = time.perf_counter()
    rag_api.ensure_sample_collection()
    print(f"sample collection ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    questions = scenario_questions(limit=args.questions)
    specs = [A.ApproachSpec("zero_shot", prompt="zero_shot"),
             A.ApproachSpec("few_shot", prompt="few_shot"),
             A.ApproachSpec("guardrail_rag", prompt="guardrail", rag=A.RetrievalSpec("support", "hybrid", 4)),
             A.ApproachSpec("zero_shot_rag", prompt="zero_shot", rag=A.RetrievalSpec("support", "vector", 2))]
    warm = [A.resolve(s, max_tokens=args.max_tokens, seed=42) for s in specs]     # warm-up (not timed)
    assert all(r.available for r in warm), [r.reason for r in warm]
    backend = get_backend("embedded")
    emb = rag_api.get_embedder()
    backend.chat([{"role": "user", "content": "hi"}], GenParams(max_tokens=4), model=warm[0].model_id)
    emb.encode(["warm up"])
    rag_api.retrieve("warm up", "support", mode="hybrid", k=2)

    def direct() -> tuple[float, int, float]:
        tokens, inside = 0, 0.0
        t = time.perf_counter()
        resolved = [A.resolve(s, max_tokens=args.max_tokens, seed=42) for s in specs]   # resolving is timed
        for q in questions:
            for r in resolved:
                spec = PromptSpec.from_dict(r.prompt)
                context = None
                t_item = time.perf_counter()
                if r.rag:
                    retr = rag_api.retrieve(q.question, r.rag["collection"], mode=r.rag["mode"], k=r.rag["k"],
                                            version=r.rag["table_version"])
                    context = rag_api.build_context(retr.chunks)
                msgs = spec.render({"question": q.question}, context=context)
                t_gen = time.perf_counter()
                res = backend.chat(msgs, GenParams.from_dict(r.params), model=r.model_id)
                tokens += res.usage.completion_tokens
                inside += (t_gen - t_item) * bool(r.rag) + res.usage.latency_s
        return time.perf_counter() - t, tokens, inside

    def through_runner(score: bool) -> tuple[float, int, float]:
        t = time.perf_counter()                   # resolving (inside create_run) is timed, as in direct()
        run_id = runner.create_run(specs, questions, max_tokens=args.max_tokens, seed=42)
        st = runner.run_batch(runner.run_dir(run_id), score=score, embed=emb.encode if score else None)
        wall = time.perf_counter() - t
        assert st["state"] == "succeeded" and st["errors"] == 0, st
        results = runner.load_run(run_id).results
        return (wall, sum(r["completion_tokens"] for r in results),
                sum(r["retrieval_s"] + r["usage"]["latency_s"] for r in results))

    rows: dict[str, list[tuple[float, int, float]]] = {"direct": [], "runner": [], "runner + scores": []}
    for i in range(args.rounds):
        order = [("direct", direct), ("runner", lambda: through_runner(False))]
        for name, fn in (order if i % 2 == 0 else order[::-1]):
            rows[name].append(fn())
            print(f"round {i + 1} {name}: {rows[name][-1][0]:.1f} s", file=sys.stderr)
    if not args.no_scores:
        rows["runner + scores"].append(through_runner(True))
    else:
        rows.pop("runner + scores")

    n = len(questions) * len(specs)
    base = min(v[0] for v in rows["direct"])
    print(f"\nCompare bench: {len(specs)} approaches x {len(questions)} questions = {n} answers, "
          f"max_tokens={args.max_tokens}, embedded SmolLM2-135M, {args.rounds} round(s), best of rounds\n")
    print("| variant | wall s | s / answer | completion tokens | in retrieval+generation s | own overhead s "
          "(per answer) | wall ratio vs direct |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, vals in rows.items():
        w, tok, inside = min(vals)
        print(f"| {name} | {w:.1f} | {w / n:.2f} | {tok} | {inside:.1f} | {w - inside:.1f} ({(w - inside) / n * 1000:.0f} ms)"
              f" | {w / base:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
