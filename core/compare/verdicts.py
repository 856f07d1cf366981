"""Verdicts per question type: each tag is judged by the score that measures it, with its bootstrap CI, and the
recommendation follows from those per-tag results, not from one blended mean.

    facts (fact_lookup, updated_fact, reasoning)  keywords (share of expected keywords), with similarity and the
                                                   judge (when it ran) alongside
    brand_voice                                    voice (share of the scenario's voice checks passed)
    out_of_scope                                   refusal (the answer declines: REFUSAL_PATTERNS)

`build(run)` returns the per-tag table, the recommendation ("facts: RAG-based columns; voice: fine-tuned columns;
both: ...") and plain sentences where the seed's claims (sample_docs/README.md: RAG wins facts, fine-tuning wins
the voice, the guardrail prompt wins scope, a fine-tuned model fed by RAG does both) did not hold, with the
measured reason. `report_sections(run)` gives the same as report sections ({title, paragraphs, tables}).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.compare.stats import Estimate, bootstrap_ci

FACT_TAGS = ("fact_lookup", "updated_fact")
TAG_ORDER = ("fact_lookup", "updated_fact", "brand_voice", "out_of_scope", "reasoning")
TAG_METRIC = {"fact_lookup": "keywords", "updated_fact": "keywords", "reasoning": "keywords",
              "brand_voice": "voice", "out_of_scope": "refusal"}
TAG_TITLE = {"fact_lookup": "fact lookup", "updated_fact": "updated fact", "brand_voice": "brand voice",
             "out_of_scope": "out of scope", "reasoning": "reasoning", "facts": "facts (fact lookup + updated fact)"}
SECONDARY = ("similarity", "judge")          # shown next to keywords for the fact tags
LOW = 0.4                                    # a winner below this share "wins" only weakly: said so

# An answer declines when one of these matches (the guardrail prompt's fixed sentence, the transcripts' refusals,
# guardrail_json's in_scope=false).
REFUSAL_PATTERNS = (
    r"\bI can only (?:help|answer|assist)\b",
    r"\bonly (?:help|answer|assist)(?: you)? with (?:questions about )?Tidewave\b",
    r"\b(?:can(?:no|')t|cannot|can not|am not able to|unable to) (?:help|assist|answer|give|provide)\b",
    r"\boutside (?:my waters|(?:of )?(?:what I|the scope|Tidewave))",
    r"\bbeyond what I can (?:do|help)",
    r"\bI don'?t know based on the\b",
    r"\"in_scope\"\s*:\s*false",
)
_REFUSAL = [re.compile(p, re.I) for p in REFUSAL_PATTERNS]


def refusal(answer: str) -> float:
    """1.0 when the answer declines (a refusal pattern matches), else 0.0."""
    return 1.0 if any(rx.search(answer or "") for rx in _REFUSAL) else 0.0


# ---- per approach ---------------------------------------------------------------------------------------------------
@dataclass
class Col:
    name: str
    rag: bool
    fine_tuned: bool
    prompt: str
    available: bool
    reason: str
    kind: str
    reference: bool = False        # the model-free retrieval-only column: scored, never best

    @property
    def family(self) -> str:
        if self.reference:
            return "retrieval only (no model)"
        return ("fine-tuned" if self.fine_tuned else "prompt") + (" + RAG" if self.rag else "")


@dataclass
class TagVerdict:
    tag: str
    metric: str
    n_questions: int
    estimates: dict = field(default_factory=dict)      # approach -> Estimate of the metric
    secondary: dict = field(default_factory=dict)      # metric -> {approach -> Estimate}
    best: str | None = None
    contenders: list[str] = field(default_factory=list)   # the best and every approach whose CI overlaps it
    ahead: bool = False                                # the best's CI is above every other approach's

    def to_dict(self) -> dict:
        return {"tag": self.tag, "metric": self.metric, "n_questions": self.n_questions,
                "estimates": {k: v.to_dict() for k, v in self.estimates.items()},
                "secondary": {m: {k: v.to_dict() for k, v in d.items()} for m, d in self.secondary.items()},
                "best": self.best, "contenders": self.contenders, "ahead": self.ahead}


def _columns(run) -> list[Col]:
    out = []
    for a in run.approaches:
        kind = getattr(a.spec, "kind", "")
        out.append(Col(a.name, bool(a.rag) or "retrieval" in kind, bool(a.spec.fine_tuned), a.prompt_name or a.spec.prompt,
                       a.available, a.reason, kind, bool(getattr(a.spec, "model_free", False))))
    return out


def _metric_value(rec: dict, metric: str):
    if metric == "refusal":
        return refusal(rec.get("answer", ""))
    return ((rec.get("scores") or {}).get(metric) or {}).get("value")


def _tag_verdict(tag: str, qids: set[str], cols: list[Col], results: list[dict], metric: str,
                 secondary=()) -> TagVerdict:
    tv = TagVerdict(tag, metric, len(qids))
    for c in cols:
        if not c.available:
            continue
        recs = [r for r in results if r["approach"] == c.name and r.get("ok") and r["qid"] in qids]
        if not recs:
            continue
        tv.estimates[c.name] = bootstrap_ci(_metric_value(r, metric) for r in recs)
        for m in secondary:
            est = bootstrap_ci(_metric_value(r, m) for r in recs)
            if est.n:
                tv.secondary.setdefault(m, {})[c.name] = est
    refs = {c.name for c in cols if c.reference}
    scored = {k: v for k, v in tv.estimates.items() if v.mean is not None and k not in refs}
    if scored:
        best = max(scored, key=lambda k: scored[k].mean)
        b = scored[best]
        tv.best = best
        b_lo = b.lo if b.lo is not None else b.mean
        tv.contenders = [k for k, v in sorted(scored.items(), key=lambda kv: -kv[1].mean)
                         if k == best or (v.hi if v.hi is not None else v.mean) >= b_lo]
        tv.ahead = len(scored) > 1 and len(tv.contenders) == 1
    return tv


# ---- the verdicts -----------------------------------------------------------------------------------------------------
def build(run) -> dict:
    """Per-tag verdicts, the recommendation that follows from them, and where the seed's claims did not hold."""
    cols = _columns(run)
    byname = {c.name: c for c in cols}
    questions = run.questions
    tags_of = {q.id: set(q.tags) for q in questions}
    results = list(run.results)
    tags: list[TagVerdict] = []
    for tag in TAG_ORDER:
        qids = {qid for qid, t in tags_of.items() if tag in t}
        if qids:
            tags.append(_tag_verdict(tag, qids, cols, results, TAG_METRIC[tag],
                                     SECONDARY if TAG_METRIC[tag] == "keywords" else ()))
    fact_q = {qid for qid, t in tags_of.items() if t & set(FACT_TAGS)}
    facts = _tag_verdict("facts", fact_q, cols, results, "keywords", SECONDARY) if fact_q else None
    by_tag = {t.tag: t for t in tags}
    rec = _recommend(facts, by_tag, byname)
    claims = _claims(facts, by_tag, byname, results, fact_q)
    unavailable = [{"name": c.name, "reason": c.reason} for c in cols if not c.available]
    return {"tags": tags, "facts": facts, "recommendation": rec, "claims": claims, "unavailable": unavailable,
            "columns": {c.name: c.family for c in cols}}


def _names(names, byname) -> str:
    return ", ".join(names) if names else "none"


def _family_phrase(names: list[str], byname: dict) -> str:
    cs = [byname[n] for n in names if n in byname]
    if cs and all(c.rag for c in cs):
        return "RAG-based columns"
    if cs and all(c.fine_tuned for c in cs):
        return "fine-tuned columns"
    if cs and all(not c.rag and not c.fine_tuned for c in cs):
        return "prompt-only columns"
    if cs and all(not c.rag for c in cs):
        return "columns without retrieval"
    return "mixed columns"


def _recommend(facts: TagVerdict | None, by_tag: dict, byname: dict) -> dict:
    parts, picks = [], {}
    if facts and facts.best:
        picks["facts"] = facts.contenders
        parts.append(f"facts: {_family_phrase(facts.contenders, byname)} ({_names(facts.contenders, byname)}; best "
                     f"{facts.best}: keyword share {facts.estimates[facts.best].fmt()})")
    voice = by_tag.get("brand_voice")
    if voice and voice.best:
        picks["voice"] = voice.contenders
        parts.append(f"voice: {_family_phrase(voice.contenders, byname)} ({_names(voice.contenders, byname)}; best "
                     f"{voice.best}: voice checks {voice.estimates[voice.best].fmt()})")
    scope = by_tag.get("out_of_scope")
    if scope and scope.best:
        picks["scope"] = scope.contenders
        parts.append(f"out of scope: {_names(scope.contenders, byname)} (best {scope.best}: declined "
                     f"{scope.estimates[scope.best].fmt()})")
    both = None
    if "facts" in picks and "voice" in picks:
        common = [n for n in picks["facts"] if n in picks["voice"]]
        if common:
            both = common[0]
            parts.append(f"both facts and voice: {both}")
        else:
            fe, ve = facts.estimates, voice.estimates
            cands = [n for n in fe if n in ve and fe[n].mean is not None and ve[n].mean is not None
                     and not (n in byname and byname[n].reference)]
            if cands:
                both = max(cands, key=lambda n: min(fe[n].mean, ve[n].mean))
                parts.append(f"both facts and voice: no column is among the best on both; {both} has the best "
                             f"balance (keywords {fe[both].mean:.2f}, voice {ve[both].mean:.2f})")
    text = ("Per question type - " + "; ".join(parts) + ".") if parts else "No scored answers per question type yet."
    return {"text": text, "picks": picks, "both": both}


def _mean(est: Estimate | None) -> float | None:
    return est.mean if est is not None else None


def _claims(facts, by_tag: dict, byname: dict, results: list[dict], fact_q: set[str]) -> list[dict]:
    """One entry per seed claim: {claim, held, text}. `held` is None when the run cannot test it."""
    out = []
    rag_cols = [n for n, c in byname.items() if c.rag and c.available and not c.reference]
    ft_cols = [n for n, c in byname.items() if c.fine_tuned and c.available]

    def ctx_hit(names):
        vals = [((r.get("scores") or {}).get("context_hit") or {}).get("value") for r in results
                if r["approach"] in names and r.get("ok") and r["qid"] in fact_q]
        vals = [v for v in vals if v is not None]
        return sum(vals) / len(vals) if vals else None

    # 1. facts come from retrieval
    if facts and facts.best:
        best = byname[facts.best]
        top = facts.estimates[facts.best].mean
        if not rag_cols:
            out.append({"claim": "RAG answers the fact questions", "held": None,
                        "text": "No RAG column ran, so the claim that retrieval supplies the facts is not tested."})
        elif not best.rag:
            hit = ctx_hit(rag_cols)
            why = (f" Retrieval found the evidence for {hit:.0%} of these questions (context hit), so the loss is the "
                   f"model's: it does not copy the facts from its context into the answer."
                   if hit is not None and hit >= 0.7 else
                   f" Retrieval found the evidence for only {hit:.0%} of these questions." if hit is not None else "")
            out.append({"claim": "RAG answers the fact questions", "held": False,
                        "text": f"The seed expects RAG to win on facts; here {facts.best} ({best.family}) has the "
                                f"highest keyword share, {facts.estimates[facts.best].fmt()}.{why}"})
        elif top is not None and top < LOW:
            hit = ctx_hit([facts.best])
            why = (f" Retrieval found the evidence for {hit:.0%} of them, so most of the loss is the model not "
                   f"using its context." if hit is not None and hit >= 0.7 else "")
            out.append({"claim": "RAG answers the fact questions", "held": False,
                        "text": f"RAG-based {facts.best} leads on facts, but weakly: its answers hold only "
                                f"{top:.0%} of the expected keywords.{why}"})
        else:
            out.append({"claim": "RAG answers the fact questions", "held": True,
                        "text": f"Held: {facts.best} ({best.family}) leads on facts with "
                                f"{facts.estimates[facts.best].fmt()} keyword share."})
        no_rag = [n for n in facts.estimates if not byname[n].rag and not byname[n].reference]
        if no_rag:
            worst = max(no_rag, key=lambda n: facts.estimates[n].mean or 0)
            m = facts.estimates[worst].mean or 0
            if m >= 0.1:
                out.append({"claim": "Without retrieval the model cannot know the facts", "held": False,
                            "text": f"{worst} answers {m:.0%} of the expected keywords without any retrieval: "
                                    f"some facts are guessable or were in its training data."})
    # 2. the voice comes from fine-tuning
    voice = by_tag.get("brand_voice")
    if voice and voice.best:
        if not ft_cols:
            why = "; ".join(f"{u}: {byname[u].reason}" for u in byname if byname[u].fine_tuned and not byname[u].available)
            out.append({"claim": "Fine-tuning gives the brand voice", "held": None,
                        "text": "No fine-tuned column ran" + (f" ({why})" if why else "") + ", so the voice claim is "
                                "not tested."})
        elif not byname[voice.best].fine_tuned:
            ftbest = max(ft_cols, key=lambda n: _mean(voice.estimates.get(n)) or -1)
            out.append({"claim": "Fine-tuning gives the brand voice", "held": False,
                        "text": f"The seed expects the fine-tuned columns to hold the voice best; here "
                                f"{voice.best} ({byname[voice.best].family}) passes "
                                f"{voice.estimates[voice.best].fmt()} of the voice checks and the best fine-tuned "
                                f"column, {ftbest}, {voice.estimates[ftbest].fmt() if ftbest in voice.estimates else 'n/a'}."})
        else:
            out.append({"claim": "Fine-tuning gives the brand voice", "held": True,
                        "text": f"Held: {voice.best} passes {voice.estimates[voice.best].fmt()} of the voice checks."})
    # 3. the guardrail prompt keeps the assistant in scope
    scope = by_tag.get("out_of_scope")
    if scope and scope.best:
        guard = [n for n in scope.estimates if byname[n].prompt.startswith("guardrail")]
        top = scope.estimates[scope.best].mean or 0
        if not guard:
            out.append({"claim": "The guardrail prompt declines out-of-scope questions", "held": None,
                        "text": "No column used the guardrail prompt, so the scope claim is not tested."})
        elif scope.best not in guard and not set(guard) & set(scope.contenders):
            g = max(guard, key=lambda n: scope.estimates[n].mean or 0)
            out.append({"claim": "The guardrail prompt declines out-of-scope questions", "held": False,
                        "text": f"The seed expects the guardrail prompt to decline best; here {scope.best} declines "
                                f"{top:.0%} and the best guardrail column, {g}, {scope.estimates[g].mean or 0:.0%}: "
                                f"the small model does not reliably follow the refusal rule in a long prompt."})
        elif top < 0.5:
            out.append({"claim": "The guardrail prompt declines out-of-scope questions", "held": False,
                        "text": f"No column declines most out-of-scope questions: the best, {scope.best}, declines "
                                f"{top:.0%}."})
        else:
            out.append({"claim": "The guardrail prompt declines out-of-scope questions", "held": True,
                        "text": f"Held: {scope.best} declines {top:.0%} of the out-of-scope questions."})
    # 4. a fine-tuned model fed by RAG does both
    both = [n for n, c in byname.items() if c.rag and c.fine_tuned and c.available]
    if facts and voice and facts.best and voice.best:
        if not both:
            out.append({"claim": "Fine-tuned + RAG does what neither does alone", "held": None,
                        "text": "No fine-tuned + RAG column ran, so the combined claim is not tested."})
        else:
            n = both[0]
            in_f, in_v = n in facts.contenders, n in voice.contenders
            fm, vm = _mean(facts.estimates.get(n)), _mean(voice.estimates.get(n))
            if in_f and in_v:
                out.append({"claim": "Fine-tuned + RAG does what neither does alone", "held": True,
                            "text": f"Held: {n} is among the best on facts (keywords {fm:.2f}) and on voice "
                                    f"({vm:.2f})."})
            else:
                lost = [w for w, ok in (("facts", in_f), ("voice", in_v)) if not ok]
                out.append({"claim": "Fine-tuned + RAG does what neither does alone", "held": False,
                            "text": f"{n} is not among the best on {' and '.join(lost)} (keywords "
                                    f"{'n/a' if fm is None else f'{fm:.2f}'}, voice {'n/a' if vm is None else f'{vm:.2f}'}); "
                                    f"best on facts: {facts.best}, on voice: {voice.best}."})
    return out


# ---- report sections ({title, paragraphs, tables: [{caption, rows}]}) ---------------------------------------------
def table_rows(v: dict) -> list[dict]:
    """One row per tag (plus the pooled facts row): the metric and each approach's mean [95% CI] (n)."""
    names = list(v["columns"])
    rows = []
    for t in ([v["facts"]] if v.get("facts") else []) + list(v["tags"]):
        row = {"question type": TAG_TITLE.get(t.tag, t.tag), "score": t.metric, "questions": t.n_questions}
        for n in names:
            row[n] = t.estimates[n].fmt() if n in t.estimates else "-"
        row["best"] = (t.best or "-") + (" (ahead)" if t.ahead else "")
        rows.append(row)
    return rows


def report_sections(run) -> list[dict]:
    v = build(run)
    paras = [v["recommendation"]["text"],
             "Each question type is judged by the score that measures it: keywords (share of the expected keywords "
             "in the answer) for facts, the voice checks for the brand voice, declining for out-of-scope questions. "
             "'best' is the highest mean; approaches whose 95% interval overlaps it are not separated from it."]
    tables = [{"caption": "Per question type: mean [95% CI] (n)", "rows": table_rows(v)}]
    sec = [{"title": "Verdicts per question type", "paragraphs": paras, "tables": tables}]
    claims = v["claims"]
    if claims:
        sec.append({"title": "Where the seed's claims held on this model",
                    "paragraphs": [c["text"] for c in claims if c["held"] is not True] or
                                  ["Every claim of the seed that this run tests held."],
                    "tables": [{"caption": "", "rows": [{"claim": c["claim"],
                                                          "held": {True: "yes", False: "no", None: "not tested"}[c["held"]],
                                                          "measured": c["text"]} for c in claims]}]})
    return sec


def overall_text(v: dict, blended: str = "") -> str:
    """The recommendation line of the decision report: the per-tag verdict, then the blended one as a summary."""
    text = "Recommended by question type. " + v["recommendation"]["text"]
    if blended:
        text += f" (Blended summary, one mean over every score: {blended})"
    return text


def to_dict(v: dict) -> dict:
    """The verdicts as plain JSON-able data (for `--json` outputs and the run folder)."""
    return {"tags": [t.to_dict() for t in v["tags"]], "facts": v["facts"].to_dict() if v.get("facts") else None,
            "recommendation": v["recommendation"], "claims": v["claims"], "unavailable": v["unavailable"],
            "columns": v["columns"]}
