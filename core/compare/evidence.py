"""The statistics of a stored comparison run, beyond per-approach means: paired differences between approaches
(overall and per question tag), repeat spread and repeat-aware intervals, the advice the run tested against what
was measured, and the judge's agreement with people. `report_sections(run)` turns them into report sections.

Answers are identified by `answer_id(qid, approach, repeat)` = "<qid>/<approach>/<repeat>" ("/" can appear in
neither a question id nor an approach name). A record without a `repeat` field is repeat 0, so runs stored before
repeats existed read the same.
"""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

from core.compare.stats import (PairedDiff, bootstrap_ci, clean, cluster_bootstrap_ci, paired_bootstrap,
                                question_spread, repeat_summary)
from core.errors import CompareError

ALL = "all questions"


def answer_id(qid: str, approach: str, repeat: int = 0) -> str:
    return f"{qid}/{approach}/{int(repeat)}"


def parse_answer_id(aid: str) -> tuple[str, str, int]:
    parts = str(aid or "").split("/")
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2].isdigit():
        raise CompareError(f"{aid!r} is not an answer id (QUESTION/APPROACH/REPEAT, e.g. q01/prompt_rag/0).")
    return parts[0], parts[1], int(parts[2])


def repeat_of(rec: dict) -> int:
    try:
        return int(rec.get("repeat") or 0)
    except (TypeError, ValueError):
        return 0


def load_run_dir(path: Path | str):
    """A RunData from a run folder path (the runner's own readers; the layout is the runner's)."""
    from core.compare.runner import RunData, read_results, read_status
    from core.fileio import read_json

    d = Path(path)
    spec = read_json(d / "spec.json")
    if not isinstance(spec, dict):
        raise CompareError(f"{d} is not a comparison run (spec.json missing or unreadable).")
    return RunData(d.name, d, spec, read_status(d), read_results(d / "results.jsonl"))


def ok_answers(run) -> dict[str, dict]:
    """answer id -> its record, for every answered (ok) answer; the last ok record of an id wins."""
    out: dict[str, dict] = {}
    for r in run.results:
        if r.get("ok") and "qid" in r and "approach" in r:
            out[answer_id(r["qid"], r["approach"], repeat_of(r))] = r
    return out


def score_value(rec: dict, score: str = "quality"):
    if score == "quality":
        return rec.get("quality")
    return ((rec.get("scores") or {}).get(score) or {}).get("value")


def values(run, approach: str, score: str = "quality", qids: set | None = None) -> dict[str, list[float]]:
    """qid -> the score of each repeat of that question (only questions with a value)."""
    out: dict[str, list[float]] = {}
    for rec in ok_answers(run).values():
        if rec["approach"] != approach or (qids is not None and rec["qid"] not in qids):
            continue
        v = clean([score_value(rec, score)])
        if v:
            out.setdefault(rec["qid"], []).append(v[0])
    return out


def tag_sets(run) -> dict[str, set]:
    """tag -> the question ids carrying it (a question may carry several)."""
    out: dict[str, set] = {}
    for q in run.questions:
        for t in q.tags:
            out.setdefault(t, set()).add(q.id)
    return dict(sorted(out.items()))


def n_repeats(run) -> int:
    """The most repeats any answer of the run has (1 for a run without repeats)."""
    reps = [repeat_of(r) for r in run.results if r.get("ok")]
    declared = ((run.spec.get("params") or {}).get("repeats")) or 1
    return max([int(declared)] + [x + 1 for x in reps]) if reps else int(declared)


def measured_approaches(run, score: str = "quality", qids: set | None = None) -> list:
    """Every approach of the run as advisor.Measured (rung from what it is, values per question)."""
    from core.advisor import Measured, rung_of

    out = []
    for a in run.approaches:
        out.append(Measured(a.name, rung_of(a.spec.fine_tuned, bool(a.spec.rag)),
                            values(run, a.name, score, qids) if a.available else {}, a.available, a.reason))
    return out


def paired_table(run, score: str = "quality", by_tag: bool = True) -> list[PairedDiff]:
    """Every pair of answered approaches (simplest first), B - A over the questions both answered; then the
    same per question tag."""
    names = [a.name for a in sorted(run.approaches, key=lambda a: a.spec.complexity) if a.available]
    vals = {n: values(run, n, score) for n in names}
    names = [n for n in names if vals[n]]
    groups = [(ALL, None)] + (list(tag_sets(run).items()) if by_tag else [])
    out = []
    for label, qids in groups:
        for a, b in combinations(names, 2):
            va = vals[a] if qids is None else {k: v for k, v in vals[a].items() if k in qids}
            vb = vals[b] if qids is None else {k: v for k, v in vals[b].items() if k in qids}
            d = paired_bootstrap(va, vb, a, b, label)
            if d.n:
                out.append(d)
    return out


def spread_rows(run, score: str = "quality") -> list[dict]:
    """Per approach: repeat spread and the interval with and without accounting for repeats."""
    rows = []
    for a in run.approaches:
        if not a.available:
            continue
        g = values(run, a.name, score)
        if not g:
            continue
        s = repeat_summary(g)
        flat = bootstrap_ci([x for xs in g.values() for x in xs])
        rows.append({"approach": a.name, "questions": s["questions"], "repeats": round(s["repeats"], 2),
                     "changed": s["changed"], "mean sd": s["mean_sd"], "max range": s["max_range"],
                     "mean [95% CI], repeats resampled": cluster_bootstrap_ci(g).fmt(),
                     "naive CI (repeats as questions)": flat.fmt()})
    return rows


def question_spread_rows(run, score: str = "quality", top: int = 10) -> list[dict]:
    """The questions whose value moved most across repeats, over every approach."""
    rows = []
    for a in run.approaches:
        for s in question_spread(values(run, a.name, score)):
            if s.n > 1:
                rows.append({"qid": s.qid, "approach": a.name, "repeats": s.n, "mean": s.mean, "sd": s.sd,
                             "min": s.min, "max": s.max})
    rows.sort(key=lambda r: (-(r["max"] - r["min"]), r["qid"], r["approach"]))
    return rows[:top]


# ---- report sections -----------------------------------------------------------------------------------------
def _section(title: str, paragraphs: list[str], tables: list[dict] | None = None) -> dict:
    return {"title": title, "paragraphs": [p for p in paragraphs if p], "tables": tables or []}


def advice_section(run) -> dict | None:
    from core.advisor import check_advice, load_advice

    rec = load_advice(run.dir)
    if rec is None:
        return None
    chk = check_advice(rec, measured_approaches(run))
    paras = [f"The advisor recommended starting with {rec.start.label} ({rec.start.approach}): {rec.start.reason}"]
    if rec.next_step:
        paras.append(f"Next step up: {rec.next_step.label} ({rec.next_step.approach})"
                     + ("" if rec.next_step.ready else " - blocked: " + "; ".join(rec.next_step.blockers))
                     + f". {rec.next_step.reason}")
    else:
        paras.append("Next step up: none needed for these answers.")
    paras.append(f"Measured verdict: {chk.verdict}. {chk.text}")
    rows = [{"versus advised start": c["b"], "difference (other - start)": c["text"]} for c in chk.comparisons]
    tables = [{"caption": "Each measured approach against the advised start (paired, per question):", "rows": rows}
              ] if rows else []

    def show(v):
        return "yes" if v is True else "no" if v is False else "none" if v is None else v
    tables.append({"caption": "The advisor's answers:", "rows": [{"question": k, "answer": show(v)}
                                                                  for k, v in rec.answers.to_dict().items()]})
    return _section("Advisor vs measured", paras, tables)


def paired_section(run) -> dict | None:
    diffs = paired_table(run)
    if not diffs:
        return None
    overall = [d for d in diffs if d.label == ALL]
    paras = ["Differences are paired: for each question answered by both approaches, B's quality minus A's; the "
             "95% interval comes from a bootstrap over questions (and over repeats within a question when the "
             "run repeated them). 'Questions needed' is the number of questions at which a difference of the "
             "observed size would be separated from 0 (80% power, from the observed spread of the differences)."]
    paras += [d.fmt() + "." for d in overall]
    rows = [{"tags": d.label, "A": d.a, "B": d.b, "B - A": d.mean, "95% CI": f"[{d.lo:+.2f}, {d.hi:+.2f}]"
             if d.lo is not None else "-", "n": d.n, "separated": "yes" if d.separated else "no",
             "questions needed": d.needed_n if d.needed_n is not None else "-"} for d in diffs]
    return _section("Paired differences between approaches", paras,
                    [{"caption": "Every pair, on all questions and per question tag:", "rows": rows}])


def repeat_section(run) -> dict | None:
    if n_repeats(run) < 2:
        return None
    rows = spread_rows(run)
    if not rows:
        return None
    paras = [f"Each question was answered up to {n_repeats(run)} times per approach with different seeds. The "
             f"interval resamples questions and then the repeats within each question, so it is wider than one "
             f"that treats every repeat as a new question whenever answers vary between repeats."]
    return _section("Repeat spread", paras, [
        {"caption": "Per approach:", "rows": rows},
        {"caption": "Questions whose quality moved most between repeats:", "rows": question_spread_rows(run)}])


def judge_section(run) -> dict | None:
    from core.compare import ratings

    if not ratings.latest(run.dir):
        return None
    rep = ratings.judge_report(run)
    paras = [rep["text"]]
    tables = [{"caption": "Human-rated score next to the automatic ones (rated answers only for 'on rated'):",
               "rows": rep["by_approach"]}]
    return _section("Judge agreement with people", paras, tables)


def report_sections(run) -> list[dict]:
    """The extra report sections that apply to this run (each {title, paragraphs, tables: [{caption, rows}]});
    a section that has nothing to say is left out. Text is plain: the report escapes it."""
    out = []
    for build in (advice_section, paired_section, repeat_section, judge_section):
        try:
            s = build(run)
        except CompareError as exc:          # e.g. an unreadable ratings file: say so, keep the rest
            s = _section(build.__name__.replace("_section", "").capitalize(), [f"Not available: {exc}"])
        if s:
            out.append(s)
    return out
