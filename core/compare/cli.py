"""`python -m core compare ...` and `python -m core report ...`."""
from __future__ import annotations

import sys

from core.errors import CompareError


def register(sub) -> None:
    p = sub.add_parser("compare", help="Run approaches over a question set and score them.",
                       description="Run several approaches (model x prompt version x retrieval) over one question "
                                   "set; every answer is stored with what produced it and scored.")
    p.add_argument("--questions", metavar="FILE", help="JSONL or CSV question file (default: the scenario's).")
    p.add_argument("--preset", choices=["classic", "classic+retrieval"],
                   help="classic = prompt only, prompt + RAG, fine-tuned, fine-tuned + RAG on the scenario's "
                        "collection and latest adapter; classic+retrieval adds the model-free retrieval_only "
                        "reference column (extractive, cited; no model call).")
    p.add_argument("--approach", action="append", default=[], metavar="NAME=SPEC",
                   help="e.g. prompt_rag=model=smollm2-135m-instruct,prompt=guardrail@1,rag=support:hybrid:4 "
                        "(repeat, up to 6).")
    p.add_argument("--limit", type=int, help="Only the first N questions.")
    p.add_argument("--baseline", metavar="RUN", help="Diff against this earlier run.")
    p.add_argument("--max-tokens", type=int, help="max_tokens for every approach (default: each prompt's own).")
    p.add_argument("--temperature", type=float, help="temperature for every approach.")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeats", type=int, default=1,
                   help="Answer every question N times (1-20) with seeds seed+0..seed+N-1; needs --temperature > 0.")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="Requests kept in flight to Ollama / OpenAI-compatible backends (1-32; default: "
                        "WORKBENCH_COMPARE_CONCURRENCY, else 4). The embedded model answers one at a time.")
    p.add_argument("--judge", action="store_true", help="Also grade every answer with the LLM judge (slower).")
    p.add_argument("--judge-model", default="", help="Model of the judge (default: the backend's default).")
    p.add_argument("--backend", help="Backend for approaches that do not name one.")
    p.add_argument("--name", default="", help="A name for the run.")
    p.add_argument("--background", action="store_true", help="Start the run in a background process and return.")
    p.add_argument("--resume", metavar="RUN", help="Continue a stopped or interrupted run (skips finished answers).")
    p.add_argument("--stop", metavar="RUN", help="Ask a running background run to stop.")
    p.add_argument("--list", action="store_true", help="List the runs.")
    p.add_argument("--json", action="store_true", help="Print one JSON object.")
    p.set_defaults(func=cmd_compare)

    r = sub.add_parser("report", help="Export a comparison run's decision report (HTML or Markdown).")
    r.add_argument("run", metavar="RUN")
    r.add_argument("--format", choices=["html", "md"], default="html")
    r.add_argument("--out", metavar="FILE", help="Where to write it (default: report.<fmt> in the run folder).")
    r.add_argument("--baseline", metavar="RUN", help="Diff against this run (default: the run's baseline).")
    r.add_argument("--cost-mode", choices=["api", "gpu"], default="api")
    r.add_argument("--price-in", type=float, help="$ per 1M input tokens (mode api).")
    r.add_argument("--price-out", type=float, help="$ per 1M output tokens (mode api).")
    r.add_argument("--gpu-per-hour", type=float, help="$ per GPU-hour (mode gpu).")
    r.add_argument("--train-per-hour", type=float, help="$ per hour of the training device.")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_report)


def _approaches(args):
    from core.compare.approach import check_set, classic_presets, parse_approach
    from core.scenario import load_scenario

    if args.preset and args.approach:
        raise CompareError("Use either --preset classic or --approach ..., not both.")
    if args.preset in ("classic", "classic+retrieval"):
        from core.compare.approach import retrieval_only_preset
        sc = load_scenario()
        specs = classic_presets(sc.collection)
        if args.preset == "classic+retrieval":
            specs.append(retrieval_only_preset(sc.collection))
        if sc.collection == "support":
            _ensure_sample_collection()
        return check_set(specs)
    if not args.approach:
        raise CompareError("Name the approaches: --preset classic, or --approach NAME=model=...,prompt=...[,rag=...].")
    return check_set([parse_approach(a) for a in args.approach])


def _ensure_sample_collection() -> None:
    from core.rag import api as rag_api

    names = [c.name for c in rag_api.list_collections()]
    if "support" not in names:
        print("building the sample collection 'support' from sample_docs/knowledge (once)…", file=sys.stderr)
        rag_api.ensure_sample_collection()


def _summary_rows(summary: dict) -> list[dict]:
    out = []
    for s in summary["approaches"]:
        out.append({"approach": s.name, "kind": s.kind, "available": s.available, "reason": s.reason,
                    "n": s.n_answers, "errors": s.n_errors, "quality": s.quality.mean, "quality_lo": s.quality.lo,
                    "quality_hi": s.quality.hi, "latency_p50": s.latency_p50, "latency_p95": s.latency_p95,
                    "ttft_p50": s.ttft_p50, "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
                    "cost_per_1k": (s.cost or {}).get("per_1k"),
                    "scores": {k: v.mean for k, v in s.scores.items()}})
    return out


def _print_result(run_id: str, as_json: bool) -> int:
    from core.cli import emit_json
    from core.compare.report import build
    from core.compare.summary import matrix_rows

    run, summary = build(run_id)
    rows = matrix_rows(run, summary.get("diff"))
    srows = _summary_rows(summary)
    if as_json:
        emit_json({"run_id": run_id, "state": run.state, "status": run.status, "dir": str(run.dir),
                   "rows": [{k: v for k, v in r.items() if k != "question"} for r in rows],
                   "summary": srows, "decision": {k: v.get("text") if isinstance(v, dict) else v
                                                  for k, v in summary["decision"].items()},
                   "diff": summary.get("diff")})
    else:
        print(f"run {run_id}: {run.state} - {run.status.get('message', '')}")
        print(f"{'question':10} {'approach':18} {'quality':>7} {'latency':>8}  answer")
        for r in rows:
            q = f"{r['quality']:.2f}" if r.get("quality") is not None else "-"
            lat = f"{r['latency_s']:.2f}s" if r.get("latency_s") is not None else "-"
            print(f"{r['qid'][:10]:10} {r['approach'][:18]:18} {q:>7} {lat:>8}  {r['answer'][:70].replace(chr(10), ' ')}")
        print()
        print(f"{'approach':18} {'n':>3} {'quality [95% CI]':>22} {'p50':>7} {'p95':>7} {'$/1k':>9}")
        for s in summary["approaches"]:
            if not s.available:
                print(f"{s.name:18} unavailable: {s.reason}")
                continue
            c = (s.cost or {}).get("per_1k")
            print(f"{s.name:18} {s.n_answers:>3} {s.quality.fmt():>22} "
                  f"{(s.latency_p50 or 0):>6.2f}s {(s.latency_p95 or 0):>6.2f}s {('%.4f' % c) if c is not None else '-':>9}")
        ov = summary["decision"].get("overall", {})
        print()
        print(ov.get("text", ""))
        if ov.get("rule"):
            print(ov["rule"])
    return 0 if run.state in ("succeeded", "running") else 1


def cmd_compare(args) -> int:
    from core.cli import emit_json
    from core.compare import runner
    from core.scenario import load_questions, load_scenario, scenario_questions

    if args.list:
        runs = runner.list_runs()
        if args.json:
            emit_json({"runs": runs})
        else:
            for r in runs:
                print(f"{r['run_id']}  {r['state']:11} {r['done']}/{r['total']}  {', '.join(r['approaches'])}"
                      + (f"  baseline={r['baseline']}" if r["baseline"] else ""))
        return 0
    if args.stop:
        runner.request_stop(args.stop)
        if args.json:
            emit_json({"run_id": args.stop, "stop_requested": True})
        else:
            print(f"stop requested for {args.stop}")
        return 0
    if args.resume:
        run_id = args.resume
        runner.run_dir(run_id)
        if args.concurrency is not None:
            runner.set_concurrency(run_id, args.concurrency)
    else:
        specs = _approaches(args)
        if args.questions:
            questions, source = load_questions(args.questions), args.questions
        else:
            questions, source = scenario_questions(), str(load_scenario().questions_path)
        judge = {"enabled": bool(args.judge), "model": args.judge_model, "backend": args.backend or ""}
        run_id = runner.create_run(specs, questions, name=args.name, questions_source=source, limit=args.limit,
                                   max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
                                   judge=judge, baseline=args.baseline, backend=args.backend,
                                   repeats=args.repeats, concurrency=args.concurrency)
    if args.background:
        pid = runner.start_worker(run_id)
        if args.json:
            emit_json({"run_id": run_id, "state": "running", "pid": pid})
        else:
            print(f"run {run_id} started in the background (pid {pid}); stop with --stop {run_id}")
        return 0
    if not args.json:
        print(f"run {run_id}", file=sys.stderr)

    def progress(rec, st):
        if not args.json:
            mark = "ok" if rec["ok"] else f"ERROR {rec.get('error')}"
            rep = f" #{rec['repeat']}" if rec.get("repeat") else ""
            print(f"  {st['done'] + st['errors']}/{st['total']} {rec['qid']} × {rec['approach']}{rep}: {mark}",
                  file=sys.stderr, flush=True)

    runner.run_batch(runner.run_dir(run_id), on_record=progress)
    return _print_result(run_id, args.json)


def cmd_report(args) -> int:
    from core.cli import emit_json
    from core.compare.cost import CostModel
    from core.compare.report import export

    cm = CostModel(mode=args.cost_mode)
    for attr, val in (("price_in_per_m", args.price_in), ("price_out_per_m", args.price_out),
                      ("gpu_per_hour", args.gpu_per_hour), ("train_per_hour", args.train_per_hour)):
        if val is not None:
            if val < 0:
                raise CompareError(f"{attr} must not be negative.")
            setattr(cm, attr, val)
    path = export(args.run, args.format, args.out, cm, args.baseline)
    if args.json:
        emit_json({"run_id": args.run, "format": args.format, "path": str(path), "bytes": path.stat().st_size})
    else:
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0
