"""Knowledge-update drill: change one fact in the documents, then measure what each approach does about it.

The seed's maintenance claim, made measurable: RAG keeps up by re-ingesting the changed document; a fine-tune
keeps the old fact in its weights until it is retrained; a prompt cannot know. A drill runs as a job (kind
"drill") in its own process:

    1. index     the scenario's documents into a drill collection (<collection>-drill; the user's own collection
                 is never touched), unchanged documents skipped, the original of the changed one restored;
    2. before    the classic columns answer the affected questions (a stored comparison run);
    3. change    the changed document is written to the job folder and re-ingested - the measured RAG step;
    4. after     the same questions again (a second stored run);
    5. verdict   per approach and question, whether the answer states the new value, the old one, both or
                 neither, and the iteration speed per kind of change: minutes from a change to a re-evaluated
                 result (prompt edit, document change, retrain - the last from the adapter's measured training).

A drill definition is a small YAML file in the scenario's `drills/` folder (see sample_docs/drills/) or a user's
own changed document with the question to ask and the old and new value as literal text.
"""
from __future__ import annotations

import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from core.errors import WorkbenchError

KIND = "drill"
STATES = ("new", "old", "both", "neither")


class DrillError(WorkbenchError):
    """A drill definition that cannot run (unknown drill, an edit that does not apply, unknown question)."""


@dataclass
class Drill:
    name: str
    title: str = ""
    description: str = ""
    document: str = ""                 # file name in the knowledge folder (shipped drills) ...
    edits: list[dict] = field(default_factory=list)
    changed_file: str = ""             # ... or the path of a user's changed document (its name = the doc id)
    questions: list[str] = field(default_factory=list)        # scenario question ids
    custom_questions: list[str] = field(default_factory=list)  # free-text questions (user drills)
    old_values: list[str] = field(default_factory=list)      # regexes (case-insensitive)
    new_values: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Drill":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def drills_dir() -> Path:
    from core.scenario import load_scenario

    sc = load_scenario()
    return (sc.path.parent if sc.path else Path(__file__).resolve().parents[1] / "sample_docs") / "drills"


def list_drills() -> list[Drill]:
    d = drills_dir()
    return [load_drill(p) for p in sorted(d.glob("*.yaml"))] if d.is_dir() else []


def load_drill(name_or_path: str | Path) -> Drill:
    p = Path(name_or_path)
    if not p.suffix:
        p = drills_dir() / f"{name_or_path}.yaml"
    if not p.is_file():
        known = ", ".join(d.stem for d in sorted(drills_dir().glob("*.yaml"))) or "none"
        raise DrillError(f"No drill {str(name_or_path)!r} (known: {known}).")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise DrillError(f"{p.name}: not a readable YAML drill ({type(exc).__name__}: {str(exc)[:200]}).") from exc
    if not isinstance(raw, dict):
        raise DrillError(f"{p.name}: a drill is a mapping with document, edits, questions, old_values, new_values.")
    raw.setdefault("name", p.stem)
    return validate(Drill.from_dict(raw))


def custom_drill(changed_file: str | Path, questions: list[str], old_value: str, new_value: str,
                 name: str = "") -> Drill:
    """A user's own drill: their changed document (its file name is the document it replaces), the questions to
    ask, and the old and the new value as literal text."""
    path = Path(changed_file)
    return validate(Drill(name=name or f"custom-{path.stem}", title=f"{path.name}: {old_value} -> {new_value}",
                          changed_file=str(path), custom_questions=[q for q in questions if q.strip()],
                          old_values=[re.escape(old_value.strip())] if old_value.strip() else [],
                          new_values=[re.escape(new_value.strip())] if new_value.strip() else []))


def validate(d: Drill) -> Drill:
    from core.safe_regex import compile_pattern

    if not d.document and not d.changed_file:
        raise DrillError(f"Drill {d.name!r}: name the document that changes (document:) or upload a changed file.")
    if d.document and not d.edits:
        raise DrillError(f"Drill {d.name!r}: no edits (each edit is an 'old' text and its 'new' text).")
    for e in d.edits:
        if not isinstance(e, dict) or not isinstance(e.get("old"), str) or not isinstance(e.get("new"), str) \
                or not e["old"]:
            raise DrillError(f"Drill {d.name!r}: every edit needs a non-empty 'old' text and a 'new' text.")
    if not d.questions and not d.custom_questions:
        raise DrillError(f"Drill {d.name!r}: no question to ask about the change.")
    if not d.new_values:
        raise DrillError(f"Drill {d.name!r}: give the new value, so the drill can tell whether an answer states it.")
    for pat in [*d.old_values, *d.new_values]:
        compile_pattern(pat)                      # PatternError names the bad pattern
    return d


def apply_edits(text: str, edits: list[dict], what: str = "the document") -> str:
    for e in edits:
        n = text.count(e["old"])
        if n != 1:
            raise DrillError(f"The edit {e['old'][:60]!r} must match {what} exactly once (found {n} times): "
                             "the document changed since the drill was written.")
        text = text.replace(e["old"], e["new"])
    return text


def value_state(answer: str, old_values: list[str], new_values: list[str]) -> str:
    """'new' | 'old' | 'both' | 'neither': which of the values an answer states."""
    from core.errors import PatternError
    from core.safe_regex import search

    def any_match(pats):
        out = False
        for p in pats:
            try:
                out = out or search(p, answer or "", re.IGNORECASE)
            except PatternError:
                pass
        return out

    has_new, has_old = any_match(new_values), any_match(old_values)
    return "both" if has_new and has_old else "new" if has_new else "old" if has_old else "neither"


def drill_collection() -> str:
    from core.scenario import load_scenario

    return f"{load_scenario().collection}-drill"


# --- the job ------------------------------------------------------------------------------------------------------
def start_job(drill: Drill, *, max_tokens: int = 96, start: bool = True) -> str:
    """Start a drill in its own worker process (start=False: only create it, for `run_inline`); returns the job
    id. A user's changed file is copied into the job folder first (the job never reads the upload's original
    location)."""
    from core import jobs

    with jobs.creating(KIND, start=start, name=f"drill: {drill.title or drill.name}") as new:
        spec = drill.to_dict()
        if drill.changed_file:
            src = Path(drill.changed_file)
            dst = new.inputs / src.name
            shutil.copyfile(src, dst)
            spec["changed_file"] = str(Path("inputs") / src.name)
        new.spec = {"drill": spec, "max_tokens": int(max_tokens)}
        new.status = {"message": "starting the drill"}
    return new.id


def run_job(spec: dict, report) -> dict:
    """The kind's run function (worker process or `drill --foreground`)."""
    from core.compare import approach as A
    from core.compare import runner
    from core.rag import ingest
    from core.scenario import Question, load_scenario

    drill = Drill.from_dict(spec["drill"])
    if drill.changed_file and not Path(drill.changed_file).is_absolute():
        drill.changed_file = str(report.dir / drill.changed_file)
    validate(drill)
    sc = load_scenario()
    collection = drill_collection()
    out_dir = report.dir / "docs"
    out_dir.mkdir(exist_ok=True)
    t_start = time.monotonic()

    def stage(msg: str, progress: float) -> None:
        report(message=msg, progress=progress, force=True)
        report.log(msg)

    # the changed document
    if drill.changed_file:
        changed = Path(drill.changed_file)
        original = sc.knowledge_dir / changed.name if sc.knowledge_dir else None
    else:
        original = sc.knowledge_dir / drill.document
        if not original.is_file():
            raise DrillError(f"The drill changes {drill.document}, which is not in {sc.knowledge_dir}.")
        changed = out_dir / original.name
        changed.write_text(apply_edits(original.read_text(encoding="utf-8"), drill.edits, original.name),
                           encoding="utf-8")

    # questions
    if drill.questions:
        by_id = {q.id: q for q in sc.questions()}
        missing = [q for q in drill.questions if q not in by_id]
        if missing:
            raise DrillError(f"Unknown question id(s) in the drill: {', '.join(missing)}.")
        questions = [by_id[q] for q in drill.questions]
    else:
        questions = [Question(id=f"d{i + 1}", question=q, tags=["updated_fact"])
                     for i, q in enumerate(drill.custom_questions)]

    # 1. index the original documents (unchanged ones are skipped)
    stage(f"indexing the scenario's documents into {collection!r} (unchanged documents are skipped)", 0.02)
    t0 = time.monotonic()
    base = ingest.ingest_paths([sc.knowledge_dir], collection)
    index_s = time.monotonic() - t0
    bad = [r for r in base if not r.ok and not r.skipped_unchanged]
    if bad and all(not r.ok for r in base):
        raise DrillError(f"Could not index the scenario's documents: {bad[0].error}")
    report.check()

    # the four classic columns, plus the model-free retrieval-only reference: what retrieval alone states
    specs = [*A.classic_presets(collection=collection), A.retrieval_only_preset(collection=collection)]
    max_tokens = int(spec.get("max_tokens") or 96)

    def evaluate(label: str, p0: float, p1: float) -> tuple[str, list[dict], float]:
        stage(f"{label}: the classic columns answer {len(questions)} question(s)", p0)
        run_id = runner.create_run(specs, questions, name=f"drill {drill.name} - {label}", max_tokens=max_tokens,
                                   temperature=0.0, questions_source=f"drill:{drill.name}")
        t = time.monotonic()
        st = runner.run_batch(runner.run_dir(run_id), should_stop=report.cancel_requested)
        secs = time.monotonic() - t
        if st.get("state") == "cancelled":
            from core.jobs.runtime import Cancelled
            raise Cancelled(f"stopped on request during the {label} run")
        recs = runner.load_run(run_id).results
        report(progress=p1, force=True)
        return run_id, recs, secs

    before_id, before, before_s = evaluate("before the change", 0.1, 0.45)

    # 3. the change: re-ingest one document (what RAG's maintenance costs)
    stage(f"re-ingesting the changed {changed.name}", 0.5)
    t0 = time.monotonic()
    res = ingest.ingest_paths([changed], collection)
    reingest_s = time.monotonic() - t0
    if not res or not res[0].ok:
        raise DrillError(f"Re-ingesting {changed.name} failed: {res[0].error if res else 'no result'}")
    report.check()
    after_id, after, after_s = evaluate("after the change", 0.55, 0.9)

    # restore: the drill collection goes back to the original document, so the next drill starts clean
    stage("restoring the original document in the drill collection", 0.92)
    restore_s = None
    if original is not None and original.is_file():
        t0 = time.monotonic()
        ingest.ingest_paths([original], collection)
        restore_s = time.monotonic() - t0

    result = assess(drill, questions, specs, before, after, runner.load_run(after_id).spec)
    result.update(drill=drill.name, title=drill.title, collection=collection, document=changed.name,
                  before_run=before_id, after_run=after_id, index_seconds=round(index_s, 2),
                  reingest_seconds=round(reingest_s, 2), restore_seconds=restore_s and round(restore_s, 2),
                  reingest_chunks=res[0].chunks, eval_seconds={"before": round(before_s, 2),
                                                              "after": round(after_s, 2)},
                  seconds=round(time.monotonic() - t_start, 2), finished=time.time())
    result["iteration"] = iteration_rows(result)
    from core.fileio import write_json_atomic
    write_json_atomic(report.dir / "result.json", result)
    stage(summary_text(result), 1.0)
    return result


def assess(drill: Drill, questions, specs, before: list[dict], after: list[dict], run_spec: dict) -> dict:
    """Per approach: the state of each answer before and after, and whether it picked up the change."""
    approaches = {a["spec"]["name"]: a for a in run_spec.get("approaches", [])}
    rows = []
    for s in specs:
        a = approaches.get(s.name, {})
        per_q = []
        for q in questions:
            b = next((r for r in before if r["qid"] == q.id and r["approach"] == s.name), None)
            f = next((r for r in after if r["qid"] == q.id and r["approach"] == s.name), None)
            per_q.append({
                "qid": q.id, "question": q.question,
                "before": value_state(b.get("answer", ""), drill.old_values, drill.new_values) if b and b.get("ok") else None,
                "after": value_state(f.get("answer", ""), drill.old_values, drill.new_values) if f and f.get("ok") else None,
                "answer_before": (b or {}).get("answer", "") or (b or {}).get("error", ""),
                "answer_after": (f or {}).get("answer", "") or (f or {}).get("error", ""),
                "latency_after_s": (f or {}).get("latency_s"),
                "context_before": context_rank(b, drill.new_values), "context_after": context_rank(f, drill.new_values)})
        available = bool(a.get("available", True))
        picked = sum(1 for p in per_q if p["after"] in ("new", "both"))
        retrieved = sum(1 for p in per_q if p["context_after"] is not None)
        rows.append({"approach": s.name, "kind": s.kind, "rag": bool(s.rag), "fine_tuned": s.fine_tuned,
                     "available": available, "reason": a.get("reason", ""),
                     "adapter": a.get("adapter"), "picked_up": picked, "n": len(per_q),
                     "retrieved_new": retrieved if s.rag else None,
                     "eval_seconds": round(sum(p["latency_after_s"] or 0 for p in per_q), 2), "questions": per_q})
    return {"approaches": rows}


def context_rank(rec: dict | None, new_values: list[str]) -> int | None:
    """Rank (1-based) of the first retrieved chunk that states the new value; None without retrieval or match.
    This measures RAG's side of the drill apart from what the model makes of its context."""
    chunks = ((rec or {}).get("retrieval") or {}).get("chunks") or []
    for i, c in enumerate(chunks):
        if value_state(c.get("text", ""), [], new_values) == "new":
            return int(c.get("rank") or i + 1)
    return None


def iteration_rows(result: dict) -> list[dict]:
    """The seed's "iteration speed", measured: from a change to a re-evaluated result, per kind of change."""
    rows = {r["approach"]: r for r in result["approaches"]}
    out = []
    p = rows.get("prompt_only")
    if p and p["available"]:
        out.append({"change": "prompt edit", "approach": "prompt_only", "seconds": p["eval_seconds"],
                    "how": f"edit the prompt, re-run {p['n']} question(s): {p['eval_seconds']:.1f} s of answering"})
    r = rows.get("prompt_rag")
    if r and r["available"]:
        s = result["reingest_seconds"] + r["eval_seconds"]
        out.append({"change": "document change", "approach": "prompt_rag", "seconds": round(s, 2),
                    "how": (f"re-ingest {result['document']} ({result['reingest_seconds']:.1f} s, "
                            f"{result['reingest_chunks']} chunks) + re-run ({r['eval_seconds']:.1f} s)")})
    f = rows.get("fine_tuned")
    if f and f["available"] and (f.get("adapter") or {}).get("train_seconds"):
        train = float(f["adapter"]["train_seconds"])
        out.append({"change": "retrain", "approach": "fine_tuned", "seconds": round(train + f["eval_seconds"], 2),
                    "how": (f"retrain the adapter (its measured training: {train:.0f} s on "
                            f"{f['adapter'].get('device') or 'CPU'}) + re-run ({f['eval_seconds']:.1f} s)")})
    elif f:
        out.append({"change": "retrain", "approach": "fine_tuned", "seconds": None,
                    "how": "no adapter trained yet: train one (Fine-Tune page) to measure a retrain"})
    return out


def summary_text(result: dict) -> str:
    parts = []
    for r in result["approaches"]:
        if not r["available"]:
            parts.append(f"{r['approach']}: not available")
            continue
        ctx = (f" (the new value retrieved for {r['retrieved_new']}/{r['n']})" if r.get("retrieved_new") is not None
               else "")
        parts.append(f"{r['approach']}: {r['picked_up']}/{r['n']} state the new value{ctx}")
    return (f"drill {result['drill']}: re-ingest of {result['document']} took {result['reingest_seconds']:.1f} s; "
            + "; ".join(parts))


def latest_result() -> dict | None:
    """The newest finished drill's result (the decision report's maintenance section uses its measured times)."""
    from core import jobs

    for job in jobs.list_jobs(KIND):
        if job.state == "succeeded" and isinstance(job.result, dict) and job.result.get("approaches"):
            return job.result
    return None


def report_section() -> dict | None:
    """What the decision report's maintenance section adds from the newest drill: a sentence and two tables
    (per approach, and the iteration speed). None when no drill has run on this data folder."""
    try:
        result = latest_result()
    except WorkbenchError:
        return None
    if not result:
        return None
    parts = []
    for r in result["approaches"]:
        if not r["available"]:
            continue
        s = f"{r['approach']} stated the new value in {r['picked_up']}/{r['n']} answer(s)"
        if r.get("retrieved_new") is not None:
            s += f" (its retrieval found the new value for {r['retrieved_new']}/{r['n']})"
        parts.append(s)
    text = (f"Measured by the knowledge-update drill '{result['drill']}' ({result.get('title', '')}): re-ingesting "
            f"{result['document']} took {result['reingest_seconds']:.1f} s; " + "; ".join(parts) + ".")
    per = [{"approach": r["approach"], "available": "yes" if r["available"] else "no",
            "new value in answers": f"{r['picked_up']}/{r['n']}" if r["available"] else "-",
            "new value retrieved": (f"{r['retrieved_new']}/{r['n']}" if r.get("retrieved_new") is not None
                                    else "-")} for r in result["approaches"]]
    it = [{"change": i["change"], "approach": i["approach"],
           "seconds": f"{i['seconds']:.1f}" if i.get("seconds") is not None else "not measured", "how": i["how"]}
          for i in result.get("iteration", [])]
    return {"text": text, "tables": [{"caption": "Knowledge-update drill, per approach:", "rows": per},
                                     {"caption": "Iteration speed (from a change to a re-evaluated result):",
                                      "rows": it}]}
