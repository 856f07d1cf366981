"""From a run's stored answers to the numbers every view shows: per-approach aggregates (mean + bootstrap CI,
per tag), latency percentiles, tokens, cost, maintenance, the baseline diff and the decision.

Decision rules (stated in the report, applied to measured numbers only):
- accuracy: highest mean quality; "ahead" only when its CI does not overlap the runner-up's.
- latency: lowest p95 end-to-end latency (retrieval + generation).
- cost: lowest cost per 1,000 queries under the cost model; break-even volume for fine-tuning.
- maintenance: least measured work to redo when the documents change (then when the base model changes).
- overall: among approaches whose mean quality is within QUALITY_MARGIN of the best, the simplest one
  (prompt < prompt+RAG < fine-tuned < fine-tuned+RAG - the seed article's "start simple" progression),
  then the cheapest per 1,000 queries.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.compare import scores as S
from core.compare.cost import (ApproachUsage, CostModel, approach_cost, break_even, maintenance)
from core.compare.runner import RunData
from core.compare.stats import Estimate, mean, percentile, question_ci

QUALITY_MARGIN = 0.05
DIFF_EPS = 0.05          # a question is "better"/"worse" than the baseline when quality moves by more than this


@dataclass
class ApproachSummary:
    name: str
    kind: str
    complexity: int
    available: bool
    reason: str
    describe: str
    n_answers: int = 0
    n_errors: int = 0
    quality: Estimate = field(default_factory=lambda: Estimate(None, None, None, 0))
    scores: dict = field(default_factory=dict)       # score name -> Estimate
    by_tag: dict = field(default_factory=dict)       # tag -> Estimate (quality)
    latency_p50: float | None = None
    latency_p95: float | None = None
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    prompt_tokens: float | None = None
    completion_tokens: float | None = None
    retrieval_s: float | None = None
    total_seconds: float = 0.0
    cost: dict = field(default_factory=dict)
    usage: ApproachUsage | None = None
    errors: list = field(default_factory=list)
    reference: bool = False      # the model-free "retrieval only" column: shown, never a winner

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "available": self.available, "reason": self.reason,
                "reference": self.reference,
                "describe": self.describe, "n_answers": self.n_answers, "n_errors": self.n_errors,
                "quality": self.quality.to_dict(), "scores": {k: v.to_dict() for k, v in self.scores.items()},
                "by_tag": {k: v.to_dict() for k, v in self.by_tag.items()},
                "latency_p50": self.latency_p50, "latency_p95": self.latency_p95, "ttft_p50": self.ttft_p50,
                "ttft_p95": self.ttft_p95, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "retrieval_s": self.retrieval_s, "cost": self.cost}


def _val(rec: dict, score: str):
    return ((rec.get("scores") or {}).get(score) or {}).get("value")


def summarise_approaches(run: RunData, cost_model: CostModel | None = None) -> list[ApproachSummary]:
    cm = cost_model or CostModel()
    qtags = {q.id: q.tags for q in run.questions}
    out = []
    for a in run.approaches:
        recs = [r for r in run.results if r["approach"] == a.name]
        ok = [r for r in recs if r.get("ok")]
        s = ApproachSummary(a.name, a.spec.kind, a.spec.complexity, a.available, a.reason, a.describe(),
                            len(ok), len(recs) - len(ok),
                            errors=[(r["qid"], r.get("error", "")) for r in recs if not r.get("ok")],
                            reference=bool(getattr(a.spec, "model_free", False)))
        # per question, repeats resampled within it (a run without repeats: the plain bootstrap of the answers)
        s.quality = question_ci((r["qid"], r.get("quality")) for r in ok)
        s.scores = {k: question_ci((r["qid"], _val(r, k)) for r in ok) for k in S.ALL_SCORES}
        tags = sorted({t for r in ok for t in qtags.get(r["qid"], [])})
        s.by_tag = {t: question_ci((r["qid"], r.get("quality")) for r in ok if t in qtags.get(r["qid"], []))
                    for t in tags}
        lat = [r.get("latency_s") for r in ok]
        ttft = [r.get("ttft_s") for r in ok]
        s.latency_p50, s.latency_p95 = percentile(lat, 50), percentile(lat, 95)
        s.ttft_p50, s.ttft_p95 = percentile(ttft, 50), percentile(ttft, 95)
        s.prompt_tokens = mean(r.get("prompt_tokens") for r in ok)
        s.completion_tokens = mean(r.get("completion_tokens") for r in ok)
        s.retrieval_s = mean(r.get("retrieval_s") for r in ok) if a.rag else 0.0
        s.total_seconds = sum(float(r.get("latency_s") or 0) for r in ok)
        if ok:
            llm_s = mean(float((r.get("usage") or {}).get("latency_s") or 0) for r in ok) or 0.0
            s.usage = ApproachUsage(
                a.name, len(ok), s.prompt_tokens or 0.0, s.completion_tokens or 0.0, llm_s, s.retrieval_s or 0.0,
                fine_tuned=a.spec.fine_tuned, rag=bool(a.rag),
                train_seconds=float((a.adapter or {}).get("train_seconds") or 0.0),
                train_device=str((a.adapter or {}).get("device") or ""),
                ft_method=str((a.adapter or {}).get("method") or ("lora" if a.spec.fine_tuned else "")),
                ingest_seconds=_ingest_seconds(a.rag), n_docs=(a.rag or {}).get("n_docs"))
            s.cost = approach_cost(s.usage, cm).to_dict()
        out.append(s)
    return out


def _ingest_seconds(rag: dict | None) -> float | None:
    """The collection's measured ingest time (the sum of its documents' recorded ingest seconds, pinned when the
    run was created); None when the collection predates recorded times -- never an estimate."""
    if not rag or not rag.get("ingest_seconds"):
        return None
    return float(rag["ingest_seconds"])


def baseline_diff(run: RunData, base: RunData) -> dict:
    """Per (question, approach): quality here vs in the baseline run (same approach name; if the baseline has a
    single approach, every approach is compared with it). Returns rows and per-approach counts."""
    base_names = [a.name for a in base.approaches]
    rows, counts = [], {}
    for a in run.approaches:
        bname = a.name if a.name in base_names else (base_names[0] if len(base_names) == 1 else None)
        c = counts.setdefault(a.name, {"vs": bname, "better": 0, "worse": 0, "same": 0, "missing": 0})
        for q in run.questions:
            r = run.result(q.id, a.name)
            if not r or not r.get("ok"):
                continue
            b = base.result(q.id, bname) if bname else None
            if not b or not b.get("ok") or b.get("quality") is None or r.get("quality") is None:
                c["missing"] += 1
                rows.append({"qid": q.id, "approach": a.name, "baseline": None, "quality": r.get("quality"),
                             "delta": None, "verdict": "no baseline"})
                continue
            delta = r["quality"] - b["quality"]
            verdict = "better" if delta > DIFF_EPS else "worse" if delta < -DIFF_EPS else "same"
            c[verdict] += 1
            rows.append({"qid": q.id, "approach": a.name, "baseline": b["quality"], "quality": r["quality"],
                         "delta": delta, "verdict": verdict})
    return {"baseline_run": base.run_id, "rows": rows, "counts": counts, "eps": DIFF_EPS}


def _fmt_s(v: float | None) -> str:
    return "n/a" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def _money(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"${v:.2f}" if v >= 1 else f"${v:.4f}" if v >= 0.0001 else f"${v:.6f}"


def decide(summaries: list[ApproachSummary], cm: CostModel) -> dict:
    """The decision report's content: one verdict per consideration + overall recommendation, with the numbers."""
    scored = [s for s in summaries if s.available and s.n_answers and s.quality.mean is not None]
    # the model-free reference column is compared against, never picked (it has no voice, cost or latency to speak of)
    refs = [s for s in scored if s.reference]
    measured = [s for s in scored if not s.reference]
    unavailable = [{"name": s.name, "reason": s.reason} for s in summaries if not s.available]
    out: dict = {"unavailable": unavailable, "cost_model": cm.describe(), "margin": QUALITY_MARGIN}
    if not measured:
        answered = any(s.available and s.n_answers for s in summaries)
        out["overall"] = {"winner": None, "text": (
            "This run's answers were stored without scores (scoring was off), so there is nothing to rank: "
            "run the batch again with scoring on." if answered else "No answers yet: run the batch first.")}
        return out
    # accuracy
    ranked = sorted(measured, key=lambda s: s.quality.mean, reverse=True)
    best = ranked[0]
    acc_text = f"{best.name} has the highest mean quality, {best.quality.fmt()}."
    if len(ranked) > 1:
        second = ranked[1]
        if best.quality.lo is not None and second.quality.hi is not None and best.quality.lo > second.quality.hi:
            acc_text += f" It is ahead of {second.name} ({second.quality.fmt()}): the 95% intervals do not overlap."
        else:
            acc_text += (f" Not clearly ahead of {second.name} ({second.quality.fmt()}): the intervals overlap, "
                         f"so more questions are needed to separate them.")
    facts = max(measured, key=lambda s: s.scores["similarity"].mean or -1)
    voice_best = max(measured, key=lambda s: s.scores["voice"].mean if s.scores["voice"].mean is not None else -1)
    acc_text += f" Closest to the reference answers: {facts.name} (similarity {facts.scores['similarity'].fmt()})."
    if voice_best.scores["voice"].mean is not None:
        acc_text += f" Best brand voice: {voice_best.name} (voice checks {voice_best.scores['voice'].fmt()})."
    rag_ok = [s for s in measured if s.scores["groundedness"].mean is not None]
    if rag_ok:
        g = max(rag_ok, key=lambda s: s.scores["groundedness"].mean)
        acc_text += f" Most grounded in retrieved text: {g.name} (groundedness {g.scores['groundedness'].fmt()})."
    for ref in refs:
        acc_text += (f" Reference, no model: {ref.name} (what retrieval alone finds, quoted) has keyword share "
                     f"{ref.scores['keywords'].fmt()}; it is not a candidate.")
    out["accuracy"] = {"winner": best.name, "text": acc_text,
                       "table": [{"approach": s.name, "quality": s.quality.fmt(), "n": s.quality.n,
                                  **{k: s.scores[k].fmt() for k in ("similarity", "keywords", "voice",
                                                                     "context_hit", "groundedness", "citations", "judge")}}
                                 for s in ranked + refs],
                       "by_tag": [{"tag": t, **{s.name: (s.by_tag[t].fmt() if t in s.by_tag else "-") for s in ranked}}
                                  for t in sorted({t for s in ranked for t in s.by_tag})]}
    # latency
    lat = sorted(measured, key=lambda s: (s.latency_p95 if s.latency_p95 is not None else 1e9))
    fast = lat[0]
    lat_text = (f"{fast.name} is fastest: p50 {_fmt_s(fast.latency_p50)}, p95 {_fmt_s(fast.latency_p95)} end to end, "
                f"first token after {_fmt_s(fast.ttft_p50)} (p50).")
    rag_lat = [s for s in measured if s.retrieval_s]
    if rag_lat:
        lat_text += " Retrieval adds " + ", ".join(f"{_fmt_s(s.retrieval_s)} ({s.name})" for s in rag_lat) + " per query."
    out["latency"] = {"winner": fast.name, "text": lat_text,
                      "table": [{"approach": s.name, "p50": _fmt_s(s.latency_p50), "p95": _fmt_s(s.latency_p95),
                                 "ttft_p50": _fmt_s(s.ttft_p50), "ttft_p95": _fmt_s(s.ttft_p95),
                                 "retrieval": _fmt_s(s.retrieval_s) if s.retrieval_s else "-"} for s in lat]}
    # cost
    costed = [s for s in measured if s.cost]
    cheap = min(costed, key=lambda s: s.cost["per_1k"])
    bes = break_even([s.usage for s in measured if s.usage], cm)
    cost_text = (f"{cheap.name} is cheapest: {_money(cheap.cost['per_1k'])} per 1,000 queries "
                 f"({cheap.cost['breakdown']} per query). Cost model: {cm.describe()}.")
    for b in bes:
        if b.queries is not None:
            cost_text += (f" {b.fine_tuned} pays back its training ({_money(b.training_cost)}) against {b.versus} "
                          f"after {b.queries:,.0f} queries.")
        else:
            cost_text += f" {b.fine_tuned} vs {b.versus}: {b.reason}."
    out["cost"] = {"winner": cheap.name, "text": cost_text,
                   "table": [{"approach": s.name, "per_query": _money(s.cost["per_query"]),
                              "per_1k": _money(s.cost["per_1k"]), "per_month": _money(s.cost["per_month"]),
                              "tokens_in": f"{s.prompt_tokens or 0:.0f}", "tokens_out": f"{s.completion_tokens or 0:.0f}",
                              "one_off": _money(s.cost["one_off_training"] + s.cost["one_off_indexing"])}
                             for s in sorted(costed, key=lambda s: s.cost["per_1k"])],
                   "break_even": [b.to_dict() for b in bes]}
    # maintenance
    recheck = {s.name: s.total_seconds for s in measured}
    rows = maintenance([s.usage for s in measured if s.usage], recheck)
    cx = {s.name: s.complexity for s in measured}
    maint_best = min(rows, key=lambda r: (r.docs_redo_s if r.docs_redo_s is not None else 1e12,
                                          r.model_redo_s if r.model_redo_s is not None else 1e12, cx.get(r.name, 9)))
    out["maintenance"] = {"winner": maint_best.name,
                          "text": (f"{maint_best.name} needs the least rework when the documents change "
                                   f"({maint_best.docs_change}). Prompts are versioned text; RAG re-ingests changed "
                                   f"documents; fine-tunes must be retrained when the facts or the base model change."),
                          "table": [r.to_dict() for r in rows]}
    from core.drill import report_section
    drill = report_section()
    if drill:
        out["maintenance"]["text"] += " " + drill["text"]
        out["maintenance"]["extra"] = drill["tables"]
    # overall
    cands = [s for s in measured if s.quality.mean >= best.quality.mean - QUALITY_MARGIN]
    pick = min(cands, key=lambda s: (s.complexity, s.cost.get("per_1k", 1e9) if s.cost else 1e9))
    rule = (f"Rule: among approaches whose mean quality is within {QUALITY_MARGIN:.2f} of the best "
            f"({best.quality.mean:.2f}), pick the simplest (prompt < prompt + RAG < fine-tuned < fine-tuned + RAG), "
            f"then the cheapest per 1,000 queries.")
    text = (f"Recommended: {pick.name} ({pick.kind}) - quality {pick.quality.fmt()}, p95 latency "
            f"{_fmt_s(pick.latency_p95)}, {_money(pick.cost.get('per_1k'))} per 1,000 queries.")
    if pick.name != best.name:
        text += (f" {best.name} scores {best.quality.mean - pick.quality.mean:+.2f} higher, which is within the "
                 f"margin, so its extra complexity is not justified by these measurements.")
    out["overall"] = {"winner": pick.name, "text": text, "rule": rule,
                      "candidates": [s.name for s in cands]}
    return out


def summarise(run: RunData, cost_model: CostModel | None = None, baseline: RunData | None = None) -> dict:
    cm = cost_model or CostModel()
    sums = summarise_approaches(run, cm)
    out = {"run_id": run.run_id, "name": run.spec.get("name"), "state": run.state, "status": run.status,
           "n_questions": len(run.spec.get("questions", [])), "approaches": sums, "decision": decide(sums, cm),
           "cost_model": cm.to_dict(), "diff": baseline_diff(run, baseline) if baseline else None}
    # ---- verdicts per question type (core/compare/verdicts.py): with tagged questions the recommendation
    # follows the per-tag results; the blended decision above stays as a summary, labelled as such.
    from core.compare import verdicts
    v = out["verdicts"] = verdicts.build(run)
    ov = out["decision"].get("overall") or {}
    if v["recommendation"]["picks"]:
        ov["blended"] = ov.get("text", "")
        ov["text"] = verdicts.overall_text(v, ov["blended"])
        ov["by_type"] = v["recommendation"]
    return out


def matrix_rows(run: RunData, diff: dict | None = None) -> list[dict]:
    """Long form: one row per (question, approach, repeat) with the answer, quality, every score, latency and
    Δ baseline (the baseline diff is of repeat 0). `repeat` is 0 in a run without repeats."""
    dmap = {(r["qid"], r["approach"]): r for r in (diff or {}).get("rows", [])}
    rows = []
    for q, a, rep in ((q, a, rep) for q in run.questions for a in run.approaches for rep in range(run.repeats)):
        r = run.result(q.id, a.name, rep)
        row = {"qid": q.id, "question": q.question, "tags": ", ".join(q.tags), "approach": a.name,
               "repeat": rep}
        if not a.available:
            row.update(answer=f"(unavailable: {a.reason})", status="unavailable")
        elif r is None:
            row.update(answer="", status="pending")
        elif not r.get("ok"):
            row.update(answer=f"(error: {r.get('error')})", status="error")
        else:
            row.update(answer=r.get("answer", ""), status="ok", quality=r.get("quality"),
                       latency_s=r.get("latency_s"), ttft_s=r.get("ttft_s"),
                       tokens=f"{r.get('prompt_tokens', 0)}+{r.get('completion_tokens', 0)}")
            for k in S.ALL_SCORES:
                row[k] = _val(r, k)
        d = dmap.get((q.id, a.name)) if rep == 0 else None
        if d:
            row["delta"] = d["delta"]
            row["vs_baseline"] = d["verdict"]
        rows.append(row)
    return rows


# ---- tables for the page (one row per approach, the question x approach matrix) -------------------------------
TABLE_SCORES = ("similarity", "keywords", "voice", "context_hit", "groundedness", "citations", "judge")


def approach_rows(summary: dict) -> list[dict]:
    """One row per approach: status, answers, quality with its 95% CI, mean scores, latency, cost."""
    rows = []
    for s in summary["approaches"]:
        rows.append({"approach": s.name, "kind": s.kind,
                     "status": "ok" if s.available else f"unavailable: {s.reason}",
                     "answers": s.n_answers, "errors": s.n_errors, "quality": s.quality.mean,
                     "95% CI": f"[{s.quality.lo:.2f}, {s.quality.hi:.2f}]" if s.quality.lo is not None else "-",
                     **{k: s.scores[k].mean for k in TABLE_SCORES},
                     "p50 s": s.latency_p50, "p95 s": s.latency_p95, "$ / 1k": (s.cost or {}).get("per_1k")})
    return rows


def matrix_wide(mrows: list[dict]) -> list[dict]:
    """matrix_rows pivoted: one row per question, one quality column per approach (the mean over its answered
    repeats; + its delta to the baseline)."""
    wide: dict[str, dict] = {}
    got: dict[tuple, list] = {}
    for r in mrows:
        w = wide.setdefault(r["qid"], {"id": r["qid"], "question": r["question"], "tags": r["tags"]})
        vals = got.setdefault((r["qid"], r["approach"]), [])
        if r["status"] == "ok" and r.get("quality") is not None:
            vals.append(r["quality"])
        w[r["approach"]] = sum(vals) / len(vals) if vals else None
        if r.get("vs_baseline"):
            w[f"{r['approach']} Δ"] = r.get("delta")
    return list(wide.values())


def diff_count_rows(diff: dict) -> list[dict]:
    return [{"approach": k, "compared with": v["vs"], "better": v["better"], "worse": v["worse"], "same": v["same"],
             "no baseline": v["missing"]} for k, v in diff["counts"].items()]

