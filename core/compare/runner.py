"""Batch comparisons: the "compare" kind of the job layer (core.jobs), persisted so a refresh, a closed tab or a
killed process loses nothing.

    <compare_dir>/<run_id>/spec.json      questions + resolved approaches + params (written once, atomically)
    <compare_dir>/<run_id>/status.json    state, done/total/errors, current pair, message (common layout:
                                          core.jobs.folder)
    <compare_dir>/<run_id>/results.jsonl  one line per finished (question, approach, repeat), flushed + fsynced

A run can repeat every question N times (params.repeats, 1-20, only at temperature > 0): repeat r of an approach
uses seed = base seed + r. Records without "repeat" (older runs) read as repeat 0.

A run executes in its own worker process (start_worker) or in the calling process (run_batch, for the CLI, tests
and benchmarks). Resuming runs it again on the same folder: (question, approach, repeat) triples that already
have an answer are skipped; errored ones retry. A stop is a cancel request, honoured after the current answer.

Fan-out: answers from Ollama / OpenAI-compatible servers run in a thread pool, up to `concurrency` requests in
flight (params.concurrency, else Settings.compare_concurrency, default 4); the embedded llama.cpp model (one
in-process model behind a lock) takes one request at a time, its items grouped by approach so consecutive prompts
share their system prompt and few-shot block (llama.cpp re-uses that KV-cache prefix; batch_plan). Each record is
appended whole by the run's own thread as its answer finishes (so results.jsonl is in finishing order; load_run
reads it in the spec's order); latency and TTFT are each request's own. A stop lets the answers in flight finish
and keeps them.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core import jobs as joblayer
from core.compare.approach import AnswerRun, ApproachSpec, Resolved, check_set, resolve
from core.compare.evidence import repeat_of    # records written before repeats existed are repeat 0
from core.scenario import Question, Scenario, VoiceCheck, load_scenario
from core.errors import (
    BackendError,
    BackendUnavailable,
    CollectionNotFound,
    CompareError,
    JobError,
    ModelNotFound,
    WorkbenchError,
)
from core.fileio import read_json, write_json_atomic
from core.jobs import states

KIND = "compare"
TERMINAL = states.TERMINAL
MAX_BACKEND_FAILURES = 2     # consecutive "backend unreachable" errors before the run stops as failed
MAX_REPEATS = 20
MAX_CONCURRENCY = 32         # requests in flight to a server backend (Settings.compare_concurrency, default 4)


def runs_root() -> Path:
    root = joblayer.root(KIND)
    root.mkdir(parents=True, exist_ok=True)
    return root


def run_dir(run_id: str) -> Path:
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
        raise CompareError(f"{run_id!r} is not a run id.")
    d = runs_root() / run_id
    if not (d / "spec.json").is_file():
        raise CompareError(f"No comparison run {run_id!r} in {runs_root()}; list runs with `python -m core compare --list`.")
    return d


# ---- creating a run ----------------------------------------------------------------------------------------
def create_run(approaches: list[ApproachSpec], questions: list[Question], *, name: str = "",
               questions_source: str = "", limit: int | None = None, max_tokens: int | None = None,
               temperature: float | None = None, seed: int = 42, judge: dict | None = None,
               baseline: str | None = None, scenario: Scenario | None = None, backend: str | None = None,
               repeats: int = 1, concurrency: int | None = None) -> str:
    """Resolve and pin every approach, write spec.json + status.json, return the run id. Nothing runs yet.
    `repeats` (1-20) answers every question that many times with seeds seed+0..seed+repeats-1; more than one
    repeat needs a temperature above 0 (at 0 every repeat would be the same answer). `concurrency` (1-32) is how
    many requests the run keeps in flight to Ollama / OpenAI-compatible backends (None: the configured
    compare_concurrency when it runs); the embedded model always answers one at a time."""
    approaches = check_set(list(approaches))
    if concurrency is not None:
        check_concurrency(concurrency)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise CompareError(f"repeats must be a whole number from 1 to {MAX_REPEATS} (got {repeats!r}).")
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
    if repeats > 1:
        cold = [r.name for r in resolved if r.available and not float((r.params or {}).get("temperature") or 0) > 0]
        if cold:
            raise CompareError(f"{repeats} repeats need a temperature above 0, but {', '.join(cold)} "
                               "generate at temperature 0 (every repeat would give the same answer): set a "
                               "temperature, or use 1 repeat.")
    with joblayer.creating(KIND, start=False) as new:
        new.name = name or new.id
        new.spec = {
            "run_id": new.id, "name": new.name, "created": time.time(),
            "questions_source": questions_source, "limit": limit,
            "params": {"max_tokens": max_tokens, "temperature": temperature, "seed": seed, "repeats": repeats,
                       "concurrency": concurrency},
            "judge": judge or {"enabled": False},
            "baseline": baseline,
            "scenario": {"product": sc.product, "voice_checks": [vars(v) for v in sc.voice_checks],
                         "variables": {k: v for k, v in sc.raw.items() if isinstance(v, (str, int, float))}},
            "approaches": [r.to_dict() for r in resolved],
            "questions": [q.to_dict() for q in questions],
        }
        new.status = {"done": 0, "errors": 0, "total": len(questions) * sum(r.available for r in resolved) * repeats,
                      "message": "created"}
        (new.path / "results.jsonl").touch()
    return new.id


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
    results: list[dict] = field(default_factory=list)   # last record per (question, approach, repeat)

    @property
    def questions(self) -> list[Question]:
        return [Question.from_dict(q) for q in self.spec["questions"]]

    @property
    def approaches(self) -> list[Resolved]:
        return [Resolved.from_dict(a) for a in self.spec["approaches"]]

    @property
    def state(self) -> str:
        return self.status.get("state", "queued")

    @property
    def repeats(self) -> int:
        """Repeats per question: the run's setting, or more if its results hold higher repeat indices."""
        return max([repeats_of(self.spec)] + [repeat_of(r) + 1 for r in self.results])

    def result(self, qid: str, approach: str, repeat: int = 0) -> dict | None:
        for r in self.results:
            if r["qid"] == qid and r["approach"] == approach and repeat_of(r) == repeat:
                return r
        return None


def repeats_of(spec: dict) -> int:
    """How many times a run answers each question (1 for runs made before repeats existed)."""
    try:
        return max(1, int((spec.get("params") or {}).get("repeats") or 1))
    except (TypeError, ValueError):
        return 1


def result_key(rec: dict) -> tuple[str, str, int]:
    return rec["qid"], rec["approach"], repeat_of(rec)


def read_results(path: Path) -> list[dict]:
    """Every complete line (a line cut by a kill is skipped), the last per (question, approach, repeat); an
    answer wins over a later error of its triple."""
    out: dict[tuple, dict] = {}
    for rec in joblayer.read_jsonl(path):
        if "qid" in rec and "approach" in rec:
            key = result_key(rec)
            if rec.get("ok") or key not in out or not out[key].get("ok"):
                out[key] = rec
    return list(out.values())


def done_pairs(path: Path) -> set[tuple[str, str, int]]:
    """The (question, approach, repeat) triples that already have an answer (what a resume skips)."""
    return {result_key(r) for r in read_results(path) if r.get("ok")}


def read_status(d: Path) -> dict:
    """The run's status (reconciled: a run whose worker is gone reads as interrupted)."""
    try:
        return joblayer.read(Path(d).name, KIND).status
    except JobError:
        return {}


def load_run(run_id: str) -> RunData:
    d = run_dir(run_id)
    spec = read_json(d / "spec.json")
    if not isinstance(spec, dict):
        raise CompareError(f"Run {run_id}: spec.json is unreadable.")
    return RunData(run_id, d, spec, read_status(d), in_spec_order(spec, read_results(d / "results.jsonl")))


def in_spec_order(spec: dict, results: list[dict]) -> list[dict]:
    """Results in the run's own order (question, approach, repeat), whatever order they finished in (a batch
    answers server requests concurrently and groups the embedded model's prompts by approach)."""
    qpos = {q.get("id"): i for i, q in enumerate(spec.get("questions") or [])}
    apos = {(a.get("spec") or {}).get("name"): i for i, a in enumerate(spec.get("approaches") or [])}
    return sorted(results, key=lambda r: (qpos.get(r["qid"], len(qpos)), apos.get(r["approach"], len(apos)),
                                          repeat_of(r)))


def list_runs() -> list[dict]:
    """Newest first: id, name, created, state, done/total, approaches, baseline."""
    out = []
    for job in joblayer.list_jobs(KIND):
        spec = job.spec
        if not spec.get("questions"):
            continue
        st = job.status
        out.append({"run_id": job.id, "name": spec.get("name", job.id), "created": spec.get("created", job.created),
                    "state": job.state, "done": st.get("done", 0), "total": st.get("total", 0),
                    "errors": st.get("errors", 0), "alive": job.alive, "cancel_requested": job.cancel_requested,
                    "approaches": [a["spec"]["name"] for a in spec.get("approaches", [])],
                    "questions": len(spec.get("questions", [])), "baseline": spec.get("baseline")})
    return sorted(out, key=lambda r: r["created"], reverse=True)


def can_resume(status: dict) -> bool:
    """A stopped, interrupted or failed run, or one that finished with errors, can run again on its folder."""
    state = status.get("state")
    return state in (states.CANCELLED, states.INTERRUPTED, states.FAILED) or (
        state == states.SUCCEEDED and bool(status.get("errors"))) or (state == states.QUEUED and
                                                                      bool(status.get("hold")))


def referenced_jobs(kind: str) -> set[str]:
    """What comparisons still point to, so retention keeps it: fine-tuning runs whose adapter a comparison used,
    and comparison runs that another comparison names as its baseline."""
    out: set[str] = set()
    root = joblayer.root(KIND)
    if not root.is_dir():
        return out
    for spec_path in root.glob("*/spec.json"):
        spec = read_json(spec_path, {}) or {}
        if kind == KIND and spec.get("baseline"):
            out.add(str(spec["baseline"]))
        if kind == "finetune":
            for a in spec.get("approaches") or []:
                name = (a.get("adapter") or {}).get("name")
                if name:
                    out.add(str(name))
    return out


def delete_run(run_id: str) -> None:
    run_dir(run_id)
    try:
        joblayer.delete(run_id, KIND)
    except JobError as exc:
        raise CompareError(f"Run {run_id} is still running: stop it first.") from exc


# ---- background process -------------------------------------------------------------------------------------
def start_worker(run_id: str) -> int:
    """Start (or resume) the run in its own process; returns the pid. Raises if it is already running."""
    run_dir(run_id)
    job = joblayer.start(run_id, KIND)
    return int(job.pid or 0)


def request_stop(run_id: str, signal_worker: bool = True) -> None:
    """Ask the run to stop after the current answer (a cancel request; escalated to a kill after the grace period
    when `signal_worker`, else only honoured cooperatively)."""
    run_dir(run_id)
    if signal_worker:
        joblayer.cancel(run_id, KIND, wait=False)
    else:
        joblayer.RunFolder(runs_root() / run_id).request_cancel(float("inf"))


def wait(run_id: str, timeout: float = 600, poll: float = 0.5) -> dict:
    run_dir(run_id)
    try:
        return joblayer.wait(run_id, KIND, timeout=timeout, poll=poll).status
    except JobError as exc:
        raise CompareError(f"Run {run_id} did not finish within {timeout:.0f} s.") from exc


# ---- the batch loop (in the worker process, or in-process for tests/bench/CLI) ---------------------------------
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


def score_one(question: Question, answer: str, res: Resolved, retrieval: dict | None = None,
              embed: Callable | None = None, scenario: Scenario | None = None) -> dict:
    """Score one answer outside a run exactly as a batch run scores it (the scenario's voice checks for the
    question's tags, citations checked against the retrieved chunks, ...). Returns {"scores", "quality"}.
    The embedder is loaded only if a score needs it (a reference answer or retrieved chunks)."""
    sc = scenario or load_scenario()
    loaded: list = []

    def lazy(texts):
        if not loaded:
            loaded.append(embed or default_embed())
        return loaded[0](texts)

    rec = score_record({"answer": answer, "retrieval": retrieval}, question, res, list(sc.voice_checks), lazy)
    return {"scores": rec["scores"], "quality": rec["quality"]}


def run_batch(run_dir_: Path | str, *, should_stop: Callable[[], bool] | None = None,
              on_record: Callable[[dict, dict], None] | None = None, embed: Callable | None = None,
              score: bool = True, concurrency: int | None = None) -> dict:
    """Answer every missing (question, approach, repeat) of a run in this process, appending one line per answer.
    Returns the final status. Safe to call again on the same folder (resume). `concurrency` overrides the run's
    requests in flight to server backends for this call (None: the run's setting, else the configured one)."""
    if concurrency is not None:
        check_concurrency(concurrency)
    d = Path(run_dir_)
    if not isinstance(read_json(d / "spec.json"), dict):
        raise CompareError(f"{d} is not a comparison run (spec.json missing or unreadable).")
    try:
        return joblayer.run_inline(d.name, KIND, should_stop=should_stop,
                                   run_fn=lambda spec, report: _batch(spec, report, on_record, embed, score,
                                                                       concurrency))
    except JobError as exc:
        raise CompareError(str(exc)) from exc


def run(spec: dict, report) -> None:
    """The kind's run function (worker process): every missing triple, one log line per answer."""
    def log(rec, st):
        rep = f" #{rec['repeat']}" if rec.get("repeat") else ""
        report.log(f"{st['done']}/{st['total']} {rec['qid']} × {rec['approach']}{rep} "
                   f"{'ok' if rec['ok'] else 'ERROR ' + str(rec.get('error'))}")
    _batch(spec, report, log, None, True)


def concurrency_of(spec: dict, override: int | None = None) -> int:
    """Requests a run keeps in flight to server backends: the override (CLI --concurrency on a resume), else the
    run's own setting, else Settings.compare_concurrency (WORKBENCH_COMPARE_CONCURRENCY, default 4)."""
    raw = override if override is not None else (spec.get("params") or {}).get("concurrency")
    if raw is None:
        from core.config import get_settings
        raw = get_settings().compare_concurrency
    return check_concurrency(raw)


def check_concurrency(raw) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_CONCURRENCY:
        raise CompareError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY} (got {raw!r}).")
    return raw


def set_concurrency(run_id: str, concurrency: int) -> None:
    """Change how many requests a (stopped) run keeps in flight when it resumes."""
    d = run_dir(run_id)
    spec = read_json(d / "spec.json")
    spec.setdefault("params", {})["concurrency"] = check_concurrency(concurrency)
    write_json_atomic(d / "spec.json", spec)


def serves_concurrently(backend_name: str) -> bool:
    """Whether the approach's backend is a server that answers several requests at once (Ollama, OpenAI-compatible);
    the embedded llama.cpp model is one in-process model behind a lock."""
    try:
        from core.llm.registry import get_backend
        return bool(get_backend(backend_name).serves_concurrently)
    except WorkbenchError:
        return False          # unknown backend: its items fail on their own, one at a time


def batch_plan(questions: list[Question], approaches: list[Resolved], repeats: int,
               concurrent: Callable[[str], bool] = serves_concurrently) -> tuple[list[tuple], list[tuple]]:
    """The order a run answers its (question, approach, repeat) triples in, as two lanes:
    - serial (the in-process model): grouped by approach, questions in their stable order, the repeats of a
      question back to back, so consecutive prompts share their system prompt / few-shot block and llama.cpp
      re-uses that prefix of its KV cache (it keeps the previous prompt's and skips the common prefix);
    - concurrent (servers): question by question, every approach, as before (a server has no such cache to keep).
    What is stored does not depend on the order: load_run reads the results in the spec's order."""
    serial, fanout = [], []
    lane = {a.name: concurrent(a.backend) for a in approaches}
    for a in approaches:
        if not lane[a.name]:
            serial += [(q, a, r) for q in questions for r in range(repeats)]
    fanout = [(q, a, r) for q in questions for a in approaches if lane[a.name] for r in range(repeats)]
    return serial, fanout


class _Inline:
    """An executor that runs each task at once in the calling thread (concurrency 1: exactly one request at a time,
    in the run's own thread, as before fan-out existed)."""

    def submit(self, fn, *args):
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(exc)
        return fut

    def shutdown(self, **_kw):
        pass


def _batch(spec: dict, report, on_record: Callable | None, embed: Callable | None, score: bool,
           concurrency: int | None = None) -> None:
    d = report.dir
    results_path = d / "results.jsonl"
    questions = [Question.from_dict(q) for q in spec["questions"]]
    approaches = [Resolved.from_dict(a) for a in spec["approaches"]]
    voice_checks = [VoiceCheck(**v) for v in spec.get("scenario", {}).get("voice_checks", [])]
    variables = spec.get("scenario", {}).get("variables", {})
    judge = spec.get("judge") or {}
    available = [a for a in approaches if a.available]
    repeats = repeats_of(spec)
    n_flight = concurrency_of(spec, concurrency)
    total = len(questions) * len(available) * repeats
    finished = done_pairs(results_path)
    status = report.status
    report(total=total, done=len(finished), errors=0, resumed_from=len(finished), current=None,
           runs=int(status.get("runs") or 0) + 1, progress=len(finished) / total if total else 1.0,
           message="running", last_error=None, concurrency=n_flight, in_flight=0, force=True, check=False)

    backends: dict[str, object] = {}
    backends_lock = threading.Lock()
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

    def answer(a: Resolved, q: Question, r: int) -> tuple[dict, str]:
        """One (question, approach, repeat), in a pool thread (or inline): the record and how it ended (ok,
        broken, down, error). Latency / TTFT are the backend's own per-request timings."""
        rec = {"qid": q.id, "approach": a.name, "repeat": r, "ok": False, "started": time.time(),
               "model_id": a.model_id, "prompt": f"{a.prompt_name}@{a.prompt_version}",
               "params": a.params, "seed": a.seed, "backend": a.backend}
        outcome = "error"
        try:
            if a.name in broken:
                raise CompareError(broken[a.name])
            with backends_lock:
                if a.backend not in backends:
                    from core.llm.registry import get_backend
                    backends[a.backend] = get_backend(a.backend)
            ar = AnswerRun(a, q.question, backends[a.backend], variables)
            rec.update(ar.run())
            rec["ok"] = True
            rec["table_version"] = (rec.get("retrieval") or {}).get("table_version")
            outcome = "ok"
        except (ModelNotFound, CollectionNotFound) as exc:
            rec.update(error=str(exc), error_type=type(exc).__name__)
            outcome = "broken"
        except BackendUnavailable as exc:
            rec.update(error=str(exc), error_type=type(exc).__name__)
            outcome = "down"
        except WorkbenchError as exc:
            rec.update(error=str(exc), error_type=type(exc).__name__)
            if isinstance(exc, BackendError):
                outcome = "down"
        except Exception as exc:  # noqa: BLE001 - one bad item must not lose the run
            rec.update(error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__)
        rec["finished"] = time.time()
        return rec, outcome

    serial, fanout = batch_plan(questions, available, repeats)
    order = {key: i for i, key in enumerate((q.id, a.name, r) for q in questions for a in available
                                            for r in range(repeats))}
    lanes = [[it for it in lane if (it[0].id, it[1].name, it[2]) not in finished][::-1] for lane in (serial, fanout)]
    pool = (ThreadPoolExecutor(max_workers=n_flight, thread_name_prefix="compare") if n_flight > 1 and lanes[1]
            else _Inline())    # nothing for a server: the embedded model answers in this thread, as it always did
    in_flight: dict[Future, tuple[int, tuple]] = {}     # future -> (lane, item)
    stop: BaseException | None = None                  # Cancelled / JobFailed once decided: nothing new starts

    def where(item) -> str:
        q, a, r = item
        return f"{q.id} × {a.name}" + (f" #{r}" if repeats > 1 else "")

    def fill(serial: bool = True) -> None:
        """Start items while there is room: at most n_flight in flight, at most one on the in-process model (and
        none there when not `serial`)."""
        nonlocal stop
        while stop is None:
            busy = [ln for ln, _ in in_flight.values()]
            room = n_flight - len(busy)
            lane = 0 if serial and lanes[0] and room > 0 and 0 not in busy else 1 if lanes[1] and room > 0 else None
            if lane is None:
                return
            item = lanes[lane][-1]
            more = len(in_flight)
            try:               # the safe point: a stop lands here (answers already running finish and are kept)
                report(current=where(item) + (f" (+{more} in flight)" if more else ""), in_flight=more + 1,
                       force=True)
            except joblayer.Cancelled:
                stop = joblayer.Cancelled()
                return
            lanes[lane].pop()
            q, base, r = item
            a = _with_seed(base, r) if repeats > 1 else base
            in_flight[pool.submit(answer, a, q, r)] = (lane, (q, a, r))

    fail_error = None
    try:
        while True:
            fill()
            if not in_flight:
                break
            done, _ = wait_futures(list(in_flight), return_when=FIRST_COMPLETED)
            finished_now = sorted((in_flight.pop(f)[1] + (f,) for f in done),
                                  key=lambda x: order[(x[0].id, x[1].name, x[2])])
            outcomes = []
            for q, a, r, f in finished_now:
                rec, outcome = f.result()
                if outcome == "broken":
                    broken[a.name] = f"{rec['error_type']}: {rec['error']}"
                consecutive_down = 0 if outcome == "ok" else consecutive_down + (outcome == "down")
                if consecutive_down >= MAX_BACKEND_FAILURES and stop is None:
                    stop, fail_error = joblayer.JobFailed("the backend stopped answering"), rec.get("error")
                outcomes.append((q, a, rec))
            if n_flight > 1:
                # keep the servers busy while this thread scores and stores; the in-process model's next item
                # waits for the stored answer, so a stop still lands right after its current answer
                fill(serial=False)
            for q, a, rec in outcomes:
                if rec["ok"] and score:
                    if embed_fn is None:
                        try:
                            embed_fn = default_embed()
                        except Exception as exc:  # noqa: BLE001
                            embed_fn = _failing_embed(exc)
                    score_record(rec, q, a, voice_checks, embed_fn, judge, judge_backend)
                joblayer.append_jsonl(results_path, rec, fsync=True)    # the only writer is this thread
                done_n, errors = status["done"] + bool(rec["ok"]), status["errors"] + (not rec["ok"])
                report(done=done_n, errors=errors, progress=done_n / total if total else 1.0,
                       in_flight=len(in_flight), force=True, check=False,
                       last_error=rec.get("error") if not rec["ok"] else status.get("last_error"))
                if on_record:
                    on_record(rec, status)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)   # on an exception (Ctrl-C): start nothing more
    report(current=None, in_flight=0, check=False)
    if isinstance(stop, joblayer.Cancelled):
        raise joblayer.Cancelled(f"stopped on request: {status['done']}/{total} answers kept; resume to "
                                 "continue")
    if stop is not None:
        raise joblayer.JobFailed(f"the backend stopped answering ({fail_error}); {status['done']}/{total} "
                                 "answers kept. Fix the backend, then resume the run.")
    report(message=f"finished: {status['done']}/{total} answers" + (
        f", {status['errors']} errors (resume retries them)" if status["errors"] else ""), check=False)


def _with_seed(a: Resolved, r: int) -> Resolved:
    """Repeat r of an approach: a copy whose seed (and generation params' seed) is the base seed + r."""
    base = int(a.seed if a.seed is not None else 42)
    return dataclasses.replace(a, seed=base + r, params={**(a.params or {}), "seed": base + r})


def _failing_embed(exc: Exception) -> Callable:
    def f(_texts):
        raise CompareError(f"the embedder could not load ({exc})")
    return f
