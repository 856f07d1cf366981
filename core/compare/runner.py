"""Batch comparison runs, persisted so a refresh, a closed tab or a killed process loses nothing.

    <compare_dir>/<run_id>/spec.json      questions + resolved approaches + params (written once, atomically)
    <compare_dir>/<run_id>/status.json    state, progress, pid, message (rewritten atomically)
    <compare_dir>/<run_id>/results.jsonl  one line per finished (question, approach), flushed + fsynced
    <compare_dir>/<run_id>/STOP           stop request (the worker finishes the current answer, then stops)
    <compare_dir>/<run_id>/worker.log     the background worker's output

A run executes in its own process (`python -m core.compare.worker RUN_DIR`). Resuming starts the worker again
on the same folder: (question, approach) pairs that already have an answer are skipped; errored ones retry.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.compare.approach import AnswerRun, ApproachSpec, Resolved, check_set, resolve
from core.scenario import Question, Scenario, VoiceCheck, load_scenario
from core.config import PROJECT_ROOT, get_settings
from core.errors import (
    BackendError,
    BackendUnavailable,
    CollectionNotFound,
    CompareError,
    ModelNotFound,
    WorkbenchError,
)
from core.fileio import read_json, write_json_atomic

TERMINAL = ("done", "stopped", "failed", "interrupted")
MAX_BACKEND_FAILURES = 2     # consecutive "backend unreachable" errors before the run stops as failed


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    # a zombie child of this process still answers kill(0); reap it if it is ours
    try:
        done, _ = os.waitpid(int(pid), os.WNOHANG)
        return done == 0
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{int(pid)}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def runs_root() -> Path:
    root = get_settings().compare_dir
    root.mkdir(parents=True, exist_ok=True)
    return root


def run_dir(run_id: str) -> Path:
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
        raise CompareError(f"{run_id!r} is not a run id.")
    d = runs_root() / run_id
    if not (d / "spec.json").is_file():
        raise CompareError(f"No comparison run {run_id!r} in {runs_root()}; list runs with `python -m core compare --list`.")
    return d


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


# ---- creating a run ----------------------------------------------------------------------------------------
def create_run(approaches: list[ApproachSpec], questions: list[Question], *, name: str = "",
               questions_source: str = "", limit: int | None = None, max_tokens: int | None = None,
               temperature: float | None = None, seed: int = 42, judge: dict | None = None,
               baseline: str | None = None, scenario: Scenario | None = None, backend: str | None = None) -> str:
    """Resolve and pin every approach, write spec.json + status.json, return the run id. Nothing runs yet."""
    approaches = check_set(list(approaches))
    if not questions:
        raise CompareError("The question set is empty.")
    if limit:
        questions = questions[: int(limit)]
    if baseline:
        run_dir(baseline)   # must exist
    sc = scenario or load_scenario()
    resolved = [resolve(a, max_tokens=max_tokens, temperature=temperature, seed=seed, backend_name=backend)
                for a in approaches]
    if not any(r.available for r in resolved):
        raise CompareError("No approach can run: " + "; ".join(f"{r.name}: {r.reason}" for r in resolved))
    run_id = new_run_id()
    d = runs_root() / run_id
    tmp = runs_root() / f".{run_id}.tmp"
    tmp.mkdir(parents=True)
    spec = {
        "run_id": run_id, "name": name or run_id, "created": time.time(),
        "questions_source": questions_source, "limit": limit,
        "params": {"max_tokens": max_tokens, "temperature": temperature, "seed": seed},
        "judge": judge or {"enabled": False},
        "baseline": baseline,
        "scenario": {"product": sc.product, "voice_checks": [vars(v) for v in sc.voice_checks],
                     "variables": {k: v for k, v in sc.raw.items() if isinstance(v, (str, int, float))}},
        "approaches": [r.to_dict() for r in resolved],
        "questions": [q.to_dict() for q in questions],
    }
    write_json_atomic(tmp / "spec.json", spec)
    total = len(questions) * sum(r.available for r in resolved)
    write_json_atomic(tmp / "status.json", {"state": "created", "done": 0, "errors": 0, "total": total,
                                            "message": "created", "updated": time.time()})
    (tmp / "results.jsonl").touch()
    os.replace(tmp, d)
    return run_id


def set_baseline(run_id: str, baseline: str | None) -> None:
    d = run_dir(run_id)
    if baseline:
        run_dir(baseline)
        if baseline == run_id:
            raise CompareError("A run cannot be its own baseline.")
    spec = read_json(d / "spec.json")
    spec["baseline"] = baseline
    write_json_atomic(d / "spec.json", spec)


# ---- reading a run ------------------------------------------------------------------------------------------
@dataclass
class RunData:
    run_id: str
    dir: Path
    spec: dict
    status: dict
    results: list[dict] = field(default_factory=list)   # last record per (question, approach)

    @property
    def questions(self) -> list[Question]:
        return [Question.from_dict(q) for q in self.spec["questions"]]

    @property
    def approaches(self) -> list[Resolved]:
        return [Resolved.from_dict(a) for a in self.spec["approaches"]]

    @property
    def state(self) -> str:
        return self.status.get("state", "created")

    def result(self, qid: str, approach: str) -> dict | None:
        for r in self.results:
            if r["qid"] == qid and r["approach"] == approach:
                return r
        return None


def read_results(path: Path) -> list[dict]:
    """Every complete line (a line cut by a kill is skipped); the last record per pair wins."""
    out: dict[tuple, dict] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and "qid" in rec and "approach" in rec:
                    key = (rec["qid"], rec["approach"])
                    if rec.get("ok") or key not in out or not out[key].get("ok"):
                        out[key] = rec
    except FileNotFoundError:
        pass
    return list(out.values())


def read_status(d: Path) -> dict:
    st = read_json(d / "status.json", {}) or {}
    if st.get("state") in ("running", "stopping") and not pid_alive(st.get("pid")):
        st = dict(st, state="interrupted",
                  message=f"the worker (pid {st.get('pid')}) is gone: {st.get('done', 0)}/{st.get('total', 0)} "
                          f"answers kept; resume to finish")
    return st


def load_run(run_id: str) -> RunData:
    d = run_dir(run_id)
    spec = read_json(d / "spec.json")
    if not isinstance(spec, dict):
        raise CompareError(f"Run {run_id}: spec.json is unreadable.")
    return RunData(run_id, d, spec, read_status(d), read_results(d / "results.jsonl"))


def list_runs() -> list[dict]:
    """Newest first: id, name, created, state, done/total, approaches, baseline."""
    out = []
    for d in runs_root().iterdir():
        if not d.is_dir() or d.name.startswith("."):
            continue
        spec = read_json(d / "spec.json")
        if not isinstance(spec, dict):
            continue
        st = read_status(d)
        out.append({"run_id": d.name, "name": spec.get("name", d.name), "created": spec.get("created", 0),
                    "state": st.get("state", "?"), "done": st.get("done", 0), "total": st.get("total", 0),
                    "errors": st.get("errors", 0),
                    "approaches": [a["spec"]["name"] for a in spec.get("approaches", [])],
                    "questions": len(spec.get("questions", [])), "baseline": spec.get("baseline")})
    return sorted(out, key=lambda r: r["created"], reverse=True)


def delete_run(run_id: str) -> None:
    import shutil

    d = run_dir(run_id)
    st = read_status(d)
    if st.get("state") in ("running", "stopping"):
        raise CompareError(f"Run {run_id} is still running: stop it first.")
    shutil.rmtree(d)


# ---- background process -------------------------------------------------------------------------------------
def start_worker(run_id: str) -> int:
    """Start (or resume) the run in its own process; returns the pid. Raises if it is already running."""
    d = run_dir(run_id)
    st = read_status(d)
    if st.get("state") in ("running", "stopping"):
        raise CompareError(f"Run {run_id} is already running (pid {st.get('pid')}).")
    with contextlib.suppress(FileNotFoundError):
        (d / "STOP").unlink()
    env = dict(os.environ, WORKBENCH_DATA=str(get_settings().data_dir), PYTHONUNBUFFERED="1")
    log = open(d / "worker.log", "ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "core.compare.worker", str(d)], cwd=str(PROJECT_ROOT),
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    finally:
        log.close()
    # mark running right away (the worker rewrites it) so a quick second click cannot start a twin
    st = read_json(d / "status.json", {}) or {}
    st.update(state="running", pid=proc.pid, message="starting", updated=time.time())
    write_json_atomic(d / "status.json", st)
    return proc.pid


def request_stop(run_id: str, signal_worker: bool = True) -> None:
    """Ask the worker to stop after the current answer (stop file + SIGTERM)."""
    d = run_dir(run_id)
    (d / "STOP").write_text(str(time.time()))
    st = read_json(d / "status.json", {}) or {}
    pid = st.get("pid")
    if st.get("state") == "running":
        st.update(state="stopping", message="stopping after the current answer", updated=time.time())
        write_json_atomic(d / "status.json", st)
    if signal_worker and pid and pid_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(pid), signal.SIGTERM)


def wait(run_id: str, timeout: float = 600, poll: float = 0.5) -> dict:
    d = run_dir(run_id)
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = read_status(d)
        if st.get("state") in TERMINAL:
            return st
        time.sleep(poll)
    raise CompareError(f"Run {run_id} did not finish within {timeout:.0f} s.")


# ---- the batch loop (runs inside the worker process, or in-process for tests/bench/CLI) -------------------------
class _Lock:
    """An exclusive, non-blocking lock on <run>/.lock: one worker per run folder."""

    def __init__(self, d: Path):
        self.path = d / ".lock"
        self.fh = None

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self.fh.close()
            raise CompareError(f"Run {self.path.parent.name} is already being executed by another process.") from exc
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _append(path: Path, rec: dict) -> None:
    line = json.dumps(rec, ensure_ascii=False, default=str) + "\n"
    with open(path, "ab") as fh:
        # a kill may have cut the last line: start on a fresh line so this record stays parseable
        if fh.tell() > 0:
            with open(path, "rb") as rf:
                rf.seek(-1, os.SEEK_END)
                if rf.read(1) != b"\n":
                    fh.write(b"\n")
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def default_embed() -> Callable:
    from core.compare.scores import CachedEmbed
    from core.rag import api as rag_api

    return CachedEmbed(rag_api.get_embedder().encode)


def score_record(rec: dict, q: Question, res: Resolved, voice_checks: list[VoiceCheck], embed: Callable,
                 judge: dict | None = None, judge_backend=None) -> dict:
    """Fill rec['scores'] and rec['quality']; a scoring failure becomes a reason, never an exception."""
    from core.compare import scores as S

    try:
        check = None
        try:
            from core.rag import api as rag_api
            check = getattr(rag_api, "check_citations", None)
        except ImportError:
            pass
        sc = S.score_answer(q, rec.get("answer", ""), chunks=(rec.get("retrieval") or {}).get("chunks"),
                            rag=bool(res.rag), voice_checks=voice_checks, prompt_schema=res.prompt.get("json_schema"),
                            embed=embed, check_citations=check)
    except Exception as exc:  # noqa: BLE001 - e.g. the embedder failed to load
        sc = {k: S.na(f"scoring failed ({type(exc).__name__}): {exc}") for k in S.ALL_SCORES}
    if judge and judge.get("enabled"):
        from core.compare.judge import judge_answer

        if judge_backend is None:
            sc["judge"] = S.na("judge backend unavailable")
        else:
            sc["judge"] = judge_answer(q, rec.get("answer", ""), judge_backend, judge.get("model") or None,
                                       max_tokens=int(judge.get("max_tokens") or 96))
    else:
        sc["judge"] = S.na("LLM judge is off for this run")
    rec["scores"] = {k: v.to_dict() for k, v in sc.items()}
    rec["quality"] = S.quality(sc)
    return rec


def run_batch(run_dir_: Path | str, *, should_stop: Callable[[], bool] | None = None,
              on_record: Callable[[dict, dict], None] | None = None, embed: Callable | None = None,
              score: bool = True) -> dict:
    """Answer every missing (question, approach) pair of a run, appending one line per answer. Returns the
    final status. Safe to call again on the same folder (resume)."""
    d = Path(run_dir_)
    spec = read_json(d / "spec.json")
    if not isinstance(spec, dict):
        raise CompareError(f"{d} is not a comparison run (spec.json missing or unreadable).")
    stop_file = d / "STOP"
    results_path = d / "results.jsonl"
    with _Lock(d):
        with contextlib.suppress(FileNotFoundError):
            stop_file.unlink()          # starting is an explicit request to run: a stale stop request is void
        questions = [Question.from_dict(q) for q in spec["questions"]]
        approaches = [Resolved.from_dict(a) for a in spec["approaches"]]
        voice_checks = [VoiceCheck(**v) for v in spec.get("scenario", {}).get("voice_checks", [])]
        variables = spec.get("scenario", {}).get("variables", {})
        judge = spec.get("judge") or {}
        available = [a for a in approaches if a.available]
        total = len(questions) * len(available)
        done_pairs = {(r["qid"], r["approach"]) for r in read_results(results_path) if r.get("ok")}
        previous = read_json(d / "status.json", {}) or {}
        status = {"state": "running", "pid": os.getpid(), "total": total, "done": len(done_pairs), "errors": 0,
                  "started": time.time(), "updated": time.time(), "message": "running",
                  "resumed_from": len(done_pairs), "runs": int(previous.get("runs", 0)) + 1}
        if previous.get("embed_chunks_per_s"):
            status["embed_chunks_per_s"] = previous["embed_chunks_per_s"]
        write_json_atomic(d / "status.json", status)

        backends: dict[str, object] = {}
        broken: dict[str, str] = {}       # approach -> reason (adapter/collection gone): remaining items fail fast
        consecutive_down = 0
        from core.compare.scores import CachedEmbed

        embed_fn = CachedEmbed(embed) if embed is not None and not isinstance(embed, CachedEmbed) else embed
        judge_backend = None
        if judge.get("enabled"):
            try:
                from core.llm.registry import get_backend
                judge_backend = get_backend(judge.get("backend") or None)
            except WorkbenchError:
                judge_backend = None

        def stopping() -> bool:
            return stop_file.exists() or bool(should_stop and should_stop())

        final_state, final_msg = "done", ""
        for q in questions:
            for a in available:
                if (q.id, a.name) in done_pairs:
                    continue
                if stopping():
                    final_state = "stopped"
                    break
                status.update(current=f"{q.id} × {a.name}", updated=time.time())
                write_json_atomic(d / "status.json", status)
                rec = {"qid": q.id, "approach": a.name, "ok": False, "started": time.time(),
                       "model_id": a.model_id, "prompt": f"{a.prompt_name}@{a.prompt_version}",
                       "params": a.params, "seed": a.seed, "backend": a.backend}
                try:
                    if a.name in broken:
                        raise CompareError(broken[a.name])
                    if a.backend not in backends:
                        from core.llm.registry import get_backend
                        backends[a.backend] = get_backend(a.backend)
                    ar = AnswerRun(a, q.question, backends[a.backend], variables)
                    rec.update(ar.run())
                    rec["ok"] = True
                    rec["table_version"] = (rec.get("retrieval") or {}).get("table_version")
                    consecutive_down = 0
                except (ModelNotFound, CollectionNotFound) as exc:
                    broken[a.name] = f"{type(exc).__name__}: {exc}"
                    rec.update(error=str(exc), error_type=type(exc).__name__)
                except BackendUnavailable as exc:
                    consecutive_down += 1
                    rec.update(error=str(exc), error_type=type(exc).__name__)
                except WorkbenchError as exc:
                    rec.update(error=str(exc), error_type=type(exc).__name__)
                    if isinstance(exc, BackendError):
                        consecutive_down += 1
                except Exception as exc:  # noqa: BLE001 - one bad item must not lose the run
                    rec.update(error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__)
                rec["finished"] = time.time()
                if rec["ok"] and score:
                    if embed_fn is None:
                        try:
                            embed_fn = default_embed()
                        except Exception as exc:  # noqa: BLE001
                            embed_fn = _failing_embed(exc)
                    score_record(rec, q, a, voice_checks, embed_fn, judge, judge_backend)
                    if a.rag and "embed_chunks_per_s" not in status:
                        status["embed_chunks_per_s"] = _embed_throughput(getattr(embed_fn, "embed", embed_fn), rec)
                _append(results_path, rec)
                if rec["ok"]:
                    status["done"] += 1
                else:
                    status["errors"] += 1
                status.update(updated=time.time(), last_error=rec.get("error") if not rec["ok"] else status.get("last_error"))
                write_json_atomic(d / "status.json", status)
                if on_record:
                    on_record(rec, status)
                if consecutive_down >= MAX_BACKEND_FAILURES:
                    final_state = "failed"
                    final_msg = (f"the backend stopped answering ({rec.get('error')}); {status['done']}/{total} "
                                 f"answers kept. Fix the backend, then resume the run.")
                    break
            if final_state != "done":
                break
        if final_state == "done":
            final_msg = f"finished: {status['done']}/{total} answers" + (
                f", {status['errors']} errors (resume retries them)" if status["errors"] else "")
            if status["done"] < total and not status["errors"]:
                final_state, final_msg = "stopped", f"{status['done']}/{total} answers"
        elif final_state == "stopped":
            final_msg = f"stopped on request: {status['done']}/{total} answers kept; resume to continue"
        status.update(state=final_state, message=final_msg, updated=time.time(), finished=time.time(), current=None)
        write_json_atomic(d / "status.json", status)
        with contextlib.suppress(FileNotFoundError):
            stop_file.unlink()
        return status


def _embed_throughput(embed: Callable, rec: dict) -> float | None:
    """Chunks embedded per second, measured on this answer's retrieved chunks: turns a collection's row count
    into an estimated (re-)ingest time for the cost and maintenance tables."""
    texts = [c.get("text", "") for c in (rec.get("retrieval") or {}).get("chunks", [])]
    if not texts:
        return None
    dt = float("inf")
    try:
        for _ in range(2):      # best of two: the first call may pay a warm-up
            t0 = time.perf_counter()
            embed(texts)
            dt = min(dt, time.perf_counter() - t0)
    except Exception:  # noqa: BLE001 - only an estimate
        return None
    return len(texts) / dt if dt > 0 else None


def _failing_embed(exc: Exception) -> Callable:
    def f(_texts):
        raise CompareError(f"the embedder could not load ({exc})")
    return f
