"""Background worker: `python -m core.compare.worker RUN_DIR` answers the run's missing pairs.

SIGTERM (or a STOP file) stops after the current answer; the status is written before the process exits.
"""
from __future__ import annotations

import signal
import sys
import time
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m core.compare.worker RUN_DIR", file=sys.stderr)
        return 2
    d = Path(args[0])
    stop = {"flag": False}

    def on_term(signum, _frame):
        stop["flag"] = True
        print(f"signal {signum}: stopping after the current answer", flush=True)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    from core.compare.runner import read_json, run_batch, write_json_atomic
    from core.errors import WorkbenchError

    print(f"worker {d.name} started", flush=True)
    try:
        st = run_batch(d, should_stop=lambda: stop["flag"],
                       on_record=lambda rec, s: print(f"{s['done']}/{s['total']} {rec['qid']} × {rec['approach']}"
                                                      f" {'ok' if rec['ok'] else 'ERROR ' + str(rec.get('error'))}",
                                                      flush=True))
    except WorkbenchError as exc:
        print(f"error: {exc}", flush=True)
        st = read_json(d / "status.json", {}) or {}
        if "already being executed" not in str(exc):
            st.update(state="failed", message=str(exc), updated=time.time())
            write_json_atomic(d / "status.json", st)
        return 1
    except Exception as exc:  # noqa: BLE001 - record why, so the page can show it
        traceback.print_exc()
        st = read_json(d / "status.json", {}) or {}
        st.update(state="failed", message=f"worker crashed ({type(exc).__name__}): {exc}; finished answers are kept",
                  updated=time.time())
        write_json_atomic(d / "status.json", st)
        return 1
    print(f"worker {d.name} {st['state']}: {st.get('message')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
