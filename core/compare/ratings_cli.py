"""`python -m core rate RUN ...`: rate a stored answer, list or export the ratings, and show the judge's agreement
with people."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("rate", help="Rate a comparison run's answers; export them; check the judge against people.",
                       description="Without a rating flag: list the run's answers (ids) and the standing ratings. "
                                   "With --good/--bad and/or --grade: append a rating of ANSWER_ID. Ratings are "
                                   "append-only; the latest per answer and rater counts.")
    p.add_argument("run", metavar="RUN")
    p.add_argument("answer_id", nargs="?", metavar="ANSWER_ID", help="QUESTION/APPROACH/REPEAT, e.g. q01/prompt_rag/0")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--good", action="store_true")
    g.add_argument("--bad", action="store_true")
    p.add_argument("--grade", type=int, choices=range(1, 6), metavar="1-5")
    p.add_argument("--note", default="")
    p.add_argument("--rater", default="", help="Who rates (required to rate).")
    p.add_argument("--clear", action="store_true", help="Withdraw this rater's rating of ANSWER_ID.")
    p.add_argument("--export", metavar="FILE", help="Write the ratings as labelled JSONL.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rate)


def cmd_rate(args) -> int:
    from core.cli import emit_json
    from core.compare import ratings, runner
    from core.errors import RatingError

    run = runner.load_run(args.run)
    out: dict = {"run_id": args.run}
    label = "good" if args.good else "bad" if args.bad else None
    if args.clear:
        if not args.answer_id:
            raise RatingError("Name the answer whose rating is withdrawn (ANSWER_ID).")
        ratings.clear_rating(run.dir, args.answer_id, args.rater)
        out["cleared"] = args.answer_id
    elif label or args.grade is not None:
        if not args.answer_id:
            raise RatingError("Name the answer to rate (ANSWER_ID, e.g. q01/prompt_rag/0); list them with "
                              f"`python -m core rate {args.run}`.")
        out["rating"] = ratings.add_rating(run.dir, args.answer_id, args.rater, label, args.grade, args.note).to_dict()
    if args.export:
        out["exported"] = str(ratings.export_labelled(run, args.export))
    rep = ratings.judge_report(run)
    out.update(ratings=[r.to_dict() for r in ratings.latest(run.dir)], judge=rep)
    if args.json:
        out["answers"] = [{k: v for k, v in a.items() if k != "answer"} for a in ratings.rateable(run)]
        emit_json(out)
        return 0
    if "rating" in out:
        r = out["rating"]
        print(f"rated {r['answer_id']} by {r['rater']}: {r['label'] or '-'} grade {r['grade'] or '-'}")
    if "exported" in out:
        print(f"wrote {out['exported']}")
    if not ("rating" in out or "cleared" in out or "exported" in out):
        for a in ratings.rateable(run):
            print(f"{a['answer_id']:40} {a['answer'][:70]!r}")
    print(rep["text"])
    return 0
