"""CLI: `python -m core jobs list|show|cancel` for jobs of every kind (ingest, finetune, compare, parity, export).

    python -m core jobs list [--kind finetune] [--json]
    python -m core jobs show ID [--metrics] [--json]
    python -m core jobs cancel ID [--no-wait] [--json]
"""
from __future__ import annotations

import json
import time

from core.cli import emit_json

_BULKY = ("items", "log_tail")


def register(sub) -> None:
    j = sub.add_parser("jobs", help="List, show or cancel background jobs (ingest, fine-tuning, comparisons ...).")
    jsub = j.add_subparsers(dest="jobs_cmd", metavar="ACTION", required=True)
    jl = jsub.add_parser("list", help="every job, newest first")
    jl.add_argument("--kind", default=None, help="only jobs of this kind (ingest, finetune, compare, parity, export, usecase_questions)")
    jl.add_argument("--json", action="store_true")
    jl.set_defaults(func=cmd_list)
    js = jsub.add_parser("show", help="one job: spec, status, log tail")
    js.add_argument("run_id", metavar="ID")
    js.add_argument("--metrics", action="store_true", help="include every metrics.jsonl row")
    js.add_argument("--json", action="store_true")
    js.set_defaults(func=cmd_show)
    jc = jsub.add_parser("cancel", help="cancel a queued or running job")
    jc.add_argument("run_id", metavar="ID")
    jc.add_argument("--no-wait", action="store_true", help="return at once; the job stops at its next safe point")
    jc.add_argument("--json", action="store_true")
    jc.set_defaults(func=cmd_cancel)


def cli_lines(job_id: str) -> str:
    """The command lines that show and cancel a job (what the job panel offers next to its buttons)."""
    return f"python -m core jobs show {job_id}\npython -m core jobs cancel {job_id}"


def _summary(job) -> dict:
    return {k: v for k, v in job.to_dict().items() if k not in _BULKY}


def cmd_list(args) -> int:
    from core import jobs
    jobs.reconcile(args.kind)            # the supervisor step: dead workers marked, queued jobs started
    listed = jobs.list_jobs(args.kind)
    if args.json:
        emit_json({"runs": [_summary(j) for j in listed]})
        return 0
    if not listed:
        print("No jobs yet.")
    for j in listed:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(j.created)) if j.created else "-"
        print(f"{j.id}  {j.kind:<9} {j.state:<11} {when}  {j.progress * 100:5.1f}%  {j.message}")
    return 0


def cmd_show(args) -> int:
    from core import jobs
    job = jobs.read(args.run_id)
    if args.json:
        out = {"run_id": job.id, "id": job.id, "kind": job.kind, "dir": str(job.dir), "alive": job.alive,
               "spec": job.spec, "status": job.status}
        if args.metrics:
            out["metrics"] = jobs.read_jsonl(job.dir / "metrics.jsonl")
        emit_json(out)
        return 0
    print(f"{job.id}: {job.kind} · {job.state} · {job.name}")
    if job.message:
        print(f"  {job.message}")
    if job.started:
        print(f"  ran {job.seconds:.1f} s" + (" (still running)" if job.active else ""))
    if job.error:
        print(f"  error: {job.error}")
    if job.result:
        print(f"  result: {json.dumps(job.result, default=str)[:2000]}")
    for line in job.status.get("log_tail") or job.log_tail(10):
        print(f"  | {line}")
    return 0


def cmd_cancel(args) -> int:
    from core import jobs
    job = jobs.cancel(args.run_id, wait=not args.no_wait)
    if args.json:
        emit_json({"run_id": job.id, "kind": job.kind, "state": job.state})
    else:
        print(f"{job.id}: {job.state}" + (" (cancel requested)" if job.cancel_requested else ""))
    return 0
