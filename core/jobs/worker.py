"""`python -m core.jobs.worker RUN_DIR --lock-fd N`: the one worker process of every job kind.

Started by core.jobs.control with the run lock already taken and handed down as descriptor N, so the job is
"alive" without a gap from before this process exists until it exits. Runs the kind's function through
core.jobs.runtime.execute, which records every way out in status.json; then starts the next queued job of a kind
with a queue.
"""
from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[1] != "--lock-fd":
        print("usage: python -m core.jobs.worker RUN_DIR --lock-fd N", file=sys.stderr)
        return 2
    folder_path, fd = Path(args[0]), int(args[2])
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # ours already (the same open file): just a check
    except OSError as exc:
        print(f"{folder_path}: the run lock was not handed down ({exc})", file=sys.stderr)
        return 2
    os.set_inheritable(fd, False)                           # programs this job runs must not keep it alive

    from core.jobs.control import dispatch, resource_lock_path
    from core.jobs.folder import RunFolder
    from core.jobs.registry import get_kind
    from core.jobs.runtime import execute

    folder = RunFolder(folder_path)
    kind = get_kind(folder.read_status().get("kind") or "")
    if kind.nice:
        try:
            os.nice(kind.nice)
        except OSError:
            pass
    print(f"job {folder.id} ({kind.name}) started, pid {os.getpid()}", flush=True)
    status = execute(folder, kind, resource_lock=resource_lock_path)
    print(f"job {folder.id} {status['state']}: {status.get('message') or ''}", flush=True)
    if kind.serial:
        try:
            dispatch(kind.name)
        except Exception as exc:  # noqa: BLE001 - the next job is started by the next reader instead
            print(f"could not start the next queued job: {exc}", flush=True)
    return 0 if status["state"] == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
