"""Job kinds used by the job-layer tests: real functions run by real worker processes (imported by dotted path)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.jobs import Cancelled, JobFailed


def echo(spec, report):
    """n items, one per `sleep` seconds, each a per-item line; returns their sum."""
    n = int(spec.get("n", 3))
    items = [{"name": f"item {i}", "stage": "waiting", "fraction": 0.0} for i in range(n)]
    for i in range(n):
        time.sleep(float(spec.get("sleep", 0.02)))
        items[i].update(stage="done", fraction=1.0)
        report(progress=(i + 1) / n, message=f"{i + 1}/{n} items", items=items)
        report.log(f"item {i} done")
    return {"sum": sum(range(n))}


def until_cancelled(spec, report):
    """Works in small steps, checking for a cancel at every step (a well-behaved job)."""
    report.event({"pid": os.getpid(), "t": time.time()}, "started.jsonl")
    for i in range(100_000):
        report(progress=0.0, message=f"step {i}")
        time.sleep(0.05)
    return None


def stuck(spec, report):
    """Ignores SIGTERM, starts a child that ignores it too and sleeps, then hangs in a regex (native code that
    never returns to a safe point). Only a SIGKILL of the process group ends this."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                              "signal.SIG_IGN); time.sleep(600)"])
    Path(report.dir / "child.pid").write_text(str(child.pid))
    report(message="stuck now", force=True)
    re.match(r"(a+)+$", "a" * 64 + "b")        # catastrophic backtracking: never finishes, holds the GIL
    return None


def fail(spec, report):
    report(message="about to fail", progress=0.5)
    raise JobFailed("the input is wrong: fix it and start again")


def crash(spec, report):
    raise ValueError("boom")


def read_input(spec, report):
    data = (report.dir / spec["input"]).read_bytes()
    return {"bytes": len(data), "inputs_existed": (report.dir / "inputs").is_dir()}


def timed(spec, report):
    """Records when it ran (to check that a queue runs one job at a time)."""
    t0 = time.time()
    time.sleep(float(spec.get("sleep", 0.3)))
    return {"start": t0, "end": time.time()}


def resumable(spec, report):
    """Answers items 0..n-1, one line each in answers.jsonl; on a resume, items already answered are skipped."""
    from core.jobs import read_jsonl

    done = {r["i"] for r in read_jsonl(report.dir / "answers.jsonl")}
    ran = []
    for i in range(int(spec["n"])):
        if i in done:
            continue
        if spec.get("cancel_after") is not None and len(done) + len(ran) >= int(spec["cancel_after"]) and \
                not (report.dir / "resumed").exists():
            raise Cancelled(f"stopped after {len(done) + len(ran)} answers")
        report.event({"i": i}, "answers.jsonl")
        ran.append(i)
        report(progress=(len(done) + len(ran)) / int(spec["n"]))
    return {"ran": ran}


def protected(kind: str) -> set[str]:
    """Ids listed in <data>/protected.json (stands in for "a comparison still references this run")."""
    from core.config import get_settings

    p = get_settings().data_dir / "protected.json"
    if (get_settings().data_dir / "protect-broken").exists():
        raise RuntimeError("references unreadable")
    return set(json.loads(p.read_text())) if p.is_file() else set()
