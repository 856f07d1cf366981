"""`python -m core drill`: the knowledge-update drill (core/drill.py) from the command line."""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("drill", help="Change a fact in the documents and measure what each approach does about it.",
                       description="Knowledge-update drill: re-ingest one changed document into a drill "
                                   "collection and ask the classic columns the affected questions before and after. "
                                   "Runs in the foreground unless --background.")
    p.add_argument("name", nargs="?", help="A shipped drill (see --list), e.g. topup-price.")
    p.add_argument("--list", action="store_true", help="List the shipped drills.")
    p.add_argument("--file", metavar="PATH", help="Your own changed document (its file name is the document it "
                                                  "replaces in the scenario's knowledge folder).")
    p.add_argument("--question", action="append", default=[], metavar="TEXT",
                   help="A question the change affects (repeatable; with --file).")
    p.add_argument("--old", metavar="TEXT", default="", help="The old value as literal text (with --file).")
    p.add_argument("--new", metavar="TEXT", default="", help="The new value as literal text (with --file).")
    p.add_argument("--max-tokens", type=int, default=96, help="Answer length cap (default 96).")
    p.add_argument("--background", action="store_true", help="Start a job process and return its id.")
    p.add_argument("--json", action="store_true", help="Print one JSON object.")
    p.set_defaults(func=cmd_drill)


def cmd_drill(args) -> int:
    from core import drill as D
    from core import jobs
    from core.cli import emit_json

    if args.list:
        drills = D.list_drills()
        if args.json:
            emit_json({"drills": [d.to_dict() for d in drills]})
        else:
            for d in drills:
                print(f"{d.name:16} {d.title}")
        return 0
    if args.file:
        d = D.custom_drill(args.file, args.question, args.old, args.new)
    elif args.name:
        d = D.load_drill(args.name)
    else:
        raise D.DrillError("Name a drill (python -m core drill --list) or give --file with --question and --new.")
    job_id = D.start_job(d, max_tokens=args.max_tokens, start=args.background)
    if args.background:
        if args.json:
            emit_json({"job_id": job_id, "state": "queued"})
        else:
            print(f"drill {job_id} started; follow it with: python -m core jobs show {job_id}")
        return 0
    if not args.json:
        print(f"drill {job_id} (collection {D.drill_collection()})", file=sys.stderr)
    status = jobs.run_inline(job_id, D.KIND)
    result = status.get("result") or {}
    if args.json:
        emit_json({"job_id": job_id, "state": status.get("state"), "message": status.get("message"),
                   "result": result})
    else:
        print(f"{status.get('state')}: {status.get('message') or ''}")
        for r in result.get("approaches", []):
            if not r["available"]:
                print(f"  {r['approach']:16} not available: {r['reason']}")
                continue
            states = ", ".join(f"{q['qid']} {q['before']} -> {q['after']}" for q in r["questions"])
            ctx = (f"; the new value in the retrieved context for {r['retrieved_new']}/{r['n']}"
                   if r.get("retrieved_new") is not None else "")
            print(f"  {r['approach']:16} {r['picked_up']}/{r['n']} answers state the new value ({states}){ctx}")
        for it in result.get("iteration", []):
            secs = f"{it['seconds']:.1f} s" if it.get("seconds") is not None else "not measured"
            print(f"  iteration · {it['change']:16} {secs:>10}  {it['how']}")
    return 0 if status.get("state") == "succeeded" else 1
