"""`python -m core advise`: the advisor's questionnaire as flags -> recommendation, the Compare run that tests
it, and (with --run) the advice checked against a measured run."""
from __future__ import annotations

import argparse

from core.advisor import BUDGETS, CHANGES, KNOWS


def register(sub) -> None:
    p = sub.add_parser("advise", help="Where to start: prompting, RAG or fine-tuning (and what to compare).",
                       description="Answer the advisor's questions with flags; get the recommended starting "
                                   "approach, the next step up, the reasons, what would change the answer, and a "
                                   "Compare run that tests the advice against its alternatives.")
    p.add_argument("--demo", action="store_true", help="Start from the shipped Tidewave scenario's answers "
                                                        "(any other flag overrides one of them).")
    p.add_argument("--knows-facts", choices=KNOWS, help="Does the base model already know the facts? (default yes)")
    p.add_argument("--facts-change", choices=CHANGES, help="How often the facts change (default yearly).")
    p.add_argument("--citations", action=argparse.BooleanOptionalAction, default=None,
                   help="Answers must cite or attribute their sources.")
    p.add_argument("--strict-format", action=argparse.BooleanOptionalAction, default=None,
                   help="Answers must follow a strict output format or schema.")
    p.add_argument("--strict-voice", action=argparse.BooleanOptionalAction, default=None,
                   help="Answers must keep a fixed brand voice or persona.")
    p.add_argument("--examples", type=int, metavar="N", help="Curated examples of the desired behaviour (default 0).")
    p.add_argument("--queries-per-month", type=int, metavar="N", help="Expected volume (default 10000).")
    p.add_argument("--latency-budget", type=float, metavar="SECONDS", help="End-to-end p95 budget (default none).")
    p.add_argument("--training-budget", choices=BUDGETS,
                   help="none, low (a few GPU-hours now and then) or high (regular retraining); default none.")
    p.add_argument("--collection", help="Collection the RAG approaches use (default: the scenario's).")
    p.add_argument("--repeats", type=int, default=1, help="Repeats per question to put in the Compare run spec.")
    p.add_argument("--all-approaches", action="store_true", help="Put all four classic approaches in the run spec.")
    p.add_argument("--run", metavar="RUN", help="Check the advice against this comparison run's measurements.")
    p.add_argument("--attach", metavar="RUN", help="Store the advice with this run, so its report quotes it.")
    p.add_argument("--json", action="store_true", help="Print one JSON object.")
    p.set_defaults(func=cmd_advise)


def answers_from_args(args):
    from core.advisor import Questionnaire

    base = Questionnaire.demo() if args.demo else Questionnaire()
    d = base.to_dict()
    for flag, name in (("knows_facts", "knows_facts"), ("facts_change", "facts_change"), ("citations", "citations"),
                       ("strict_format", "strict_format"), ("strict_voice", "strict_voice"),
                       ("examples", "examples"), ("queries_per_month", "queries_per_month"),
                       ("latency_budget", "latency_budget_s"), ("training_budget", "training_budget")):
        v = getattr(args, flag)
        if v is not None:
            d[name] = v
    return Questionnaire.from_dict(d)


def cmd_advise(args) -> int:
    from core.advisor import advise, advise_cli_line, attach_advice, check_advice, compare_spec
    from core.cli import emit_json

    q = answers_from_args(args)
    rec = advise(q)
    spec = compare_spec(rec, args.collection, repeats=args.repeats, include_all=args.all_approaches)
    out = {"advice": rec.to_dict(), "compare": spec, "cli": advise_cli_line(q)}
    if args.run or args.attach:
        from core.compare import runner
        from core.compare.evidence import measured_approaches

        if args.attach:
            out["attached"] = str(attach_advice(runner.run_dir(args.attach), rec))
        if args.run:
            chk = check_advice(rec, measured_approaches(runner.load_run(args.run)))
            out["check"] = {"run_id": args.run, **chk.to_dict()}
    if args.json:
        emit_json(out)
        return 0
    print(rec.text())
    print()
    print("Run the comparison:")
    print("  " + spec["cli"])
    if "attached" in out:
        print(f"\nAdvice stored with run {args.attach}: {out['attached']}")
    if "check" in out:
        print(f"\nAgainst run {args.run}: {out['check']['verdict']}. {out['check']['text']}")
    return 0
