"""Human ratings of a comparison run's answers, and how far the LLM judge agrees with them.

    <run>/ratings.jsonl   append-only; one line per rating action:
        {"answer_id": "q01/prompt_rag/0", "qid": "q01", "approach": "prompt_rag", "repeat": 0,
         "rater": "ana", "at": 1767000000.0, "label": "good" | "bad" | null, "grade": 1-5 | null,
         "note": "...", "cleared": false}

Nothing is ever rewritten: reading keeps the latest line per (answer, rater), so a changed mind is a new line and
the history stays. A `cleared` line withdraws that rater's rating of that answer.

A rating's human score is (grade - 1) / 4 when a grade is given, else 1 for good and 0 for bad (the judge's 1-5
grade maps to 0..1 the same way). For agreement both sides are reduced to good/bad: a label as given, a grade
>= GOOD_GRADE is good. Several raters of one answer: the mean score, and the majority label (a tie counts as no
label).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.compare.evidence import answer_id, ok_answers, parse_answer_id, repeat_of
from core.compare.stats import Agreement, cluster_bootstrap_ci, cohen_kappa, mean
from core.errors import CompareError, RatingError
from core.fileio import append_jsonl
from core.jsonout import loads

RATINGS_FILE = "ratings.jsonl"
LABELS = ("good", "bad")
GOOD_GRADE = 4
MAX_NOTE = 2000
_RATER_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,60}$")
PARSE_FAILURE_PREFIXES = ("judge returned", "judge JSON has no", "judge score must")
JUDGE_OFF_PREFIXES = ("LLM judge is off",)


@dataclass
class Rating:
    answer_id: str
    qid: str
    approach: str
    repeat: int
    rater: str
    at: float
    label: str | None = None
    grade: int | None = None
    note: str = ""
    cleared: bool = False

    @property
    def score(self) -> float | None:
        if self.grade is not None:
            return (self.grade - 1) / 4
        if self.label is not None:
            return 1.0 if self.label == "good" else 0.0
        return None

    @property
    def binary(self) -> str | None:
        if self.label is not None:
            return self.label
        if self.grade is not None:
            return "good" if self.grade >= GOOD_GRADE else "bad"
        return None

    def to_dict(self) -> dict:
        return asdict(self)


def ratings_path(run_dir: Path | str) -> Path:
    return Path(run_dir) / RATINGS_FILE


def _check(label, grade, note, rater) -> tuple[str | None, int | None, str, str]:
    rater = (rater or "").strip()
    if not _RATER_RE.match(rater):
        raise RatingError("Give the rater's name (1-60 characters, no control characters), so every rating "
                          "says who made it.")
    if label is not None and label not in LABELS:
        raise RatingError(f"A label must be 'good' or 'bad' (got {label!r}).")
    if grade is not None:
        if isinstance(grade, bool) or not isinstance(grade, int) or not 1 <= grade <= 5:
            raise RatingError(f"A grade must be a whole number from 1 to 5 (got {grade!r}).")
    if label is None and grade is None:
        raise RatingError("Rate the answer good/bad, or give it a 1-5 grade (or both).")
    note = note or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise RatingError(f"A note must be text of at most {MAX_NOTE} characters.")
    return label, grade, note, rater


def _known_answer(run_dir: Path, aid: str) -> tuple[str, str, int]:
    from core.compare.evidence import load_run_dir

    qid, approach, rep = parse_answer_id(aid)
    if aid not in ok_answers(load_run_dir(run_dir)):
        raise RatingError(f"Run {Path(run_dir).name} has no answer {aid!r} to rate (only answered questions can be "
                          f"rated).")
    return qid, approach, rep


def add_rating(run_dir: Path | str, aid: str, rater: str, label: str | None = None, grade: int | None = None,
               note: str = "", at: float | None = None) -> Rating:
    """Append one rating of a stored answer. Raises RatingError on bad input; nothing is written then."""
    label, grade, note, rater = _check(label, grade, note, rater)
    qid, approach, rep = _known_answer(Path(run_dir), aid)
    r = Rating(aid, qid, approach, rep, rater, float(at if at is not None else time.time()), label, grade, note)
    append_jsonl(ratings_path(run_dir), r.to_dict())
    return r


def clear_rating(run_dir: Path | str, aid: str, rater: str) -> None:
    """Withdraw a rater's rating of an answer (an appended `cleared` line; the history stays)."""
    rater = (rater or "").strip()
    if not _RATER_RE.match(rater):
        raise RatingError("Give the rater's name whose rating is withdrawn.")
    qid, approach, rep = _known_answer(Path(run_dir), aid)
    append_jsonl(ratings_path(run_dir), Rating(aid, qid, approach, rep, rater, time.time(), cleared=True).to_dict())


def history(run_dir: Path | str) -> tuple[list[Rating], int]:
    """Every rating line in file order, and how many lines were unreadable (skipped)."""
    out, bad = [], 0
    try:
        with open(ratings_path(run_dir), encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    d = loads(line)      # NotJSON (ValueError) when nested too deeply
                    r = Rating(**{k: d[k] for k in Rating.__dataclass_fields__ if k in d})
                    parse_answer_id(r.answer_id)
                    if not r.cleared:
                        _check(r.label, r.grade, r.note, r.rater)
                except (ValueError, TypeError, KeyError, CompareError):   # a bad line is skipped and counted
                    bad += 1
                    continue
                out.append(r)
    except FileNotFoundError:
        pass
    return out, bad


def latest(run_dir: Path | str) -> list[Rating]:
    """The standing ratings: the last line per (answer, rater) wins; withdrawn ones are left out."""
    last: dict[tuple[str, str], Rating] = {}
    for r in history(run_dir)[0]:
        last[(r.answer_id, r.rater)] = r
    return [r for r in last.values() if not r.cleared]


def by_answer(ratings: list[Rating]) -> dict[str, dict]:
    """answer id -> {score: mean human score, label: majority good/bad (None on a tie), raters: n}."""
    groups: dict[str, list[Rating]] = {}
    for r in ratings:
        groups.setdefault(r.answer_id, []).append(r)
    out = {}
    for aid, rs in groups.items():
        labels = [r.binary for r in rs if r.binary]
        good, bad = labels.count("good"), labels.count("bad")
        out[aid] = {"score": mean(r.score for r in rs), "label": "good" if good > bad else "bad" if bad > good else None,
                    "raters": len(rs)}
    return out


# ---- export ----------------------------------------------------------------------------------------------------
def labelled_records(run) -> list[dict]:
    """One record per standing rating, with the question, reference and answer it labels."""
    answers = ok_answers(run)
    qs = {q.id: q for q in run.questions}
    out = []
    for r in sorted(latest(run.dir), key=lambda r: (r.qid, r.approach, r.repeat, r.rater)):
        rec = answers.get(r.answer_id, {})
        q = qs.get(r.qid)
        judge = ((rec.get("scores") or {}).get("judge") or {})
        out.append({"answer_id": r.answer_id, "qid": r.qid, "approach": r.approach, "repeat": r.repeat,
                    "question": q.question if q else None, "reference": q.reference if q else None,
                    "tags": q.tags if q else [], "answer": rec.get("answer"), "rater": r.rater,
                    "rated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.at)), "label": r.binary,
                    "given_label": r.label, "grade": r.grade, "human_score": r.score, "note": r.note,
                    "judge_score": judge.get("value"), "judge_reason": judge.get("reason"),
                    "quality": rec.get("quality")})
    return out


def labelled_jsonl(run) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labelled_records(run))


def export_labelled(run, out: Path | str | None = None) -> Path:
    """Write the labelled JSONL (atomically); default <run>/ratings.labelled.jsonl."""
    import os
    import secrets

    path = Path(out) if out else run.dir / "ratings.labelled.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        tmp.write_text(labelled_jsonl(run), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise RatingError(f"Could not write the labelled ratings to {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---- the judge against people -------------------------------------------------------------------------------------
def _judge(rec: dict) -> dict:
    return ((rec.get("scores") or {}).get("judge") or {})


def judge_binary(rec: dict) -> str | None:
    v = _judge(rec).get("value")
    if v is None:
        return None
    grade = round(float(v) * 4) + 1
    return "good" if grade >= GOOD_GRADE else "bad"


def parse_failures(run) -> dict:
    """Over every answered answer the judge was asked about: how many replies could not be parsed."""
    judged = fails = backend = 0
    for rec in ok_answers(run).values():
        j = _judge(rec)
        reason = str(j.get("reason") or "")
        if not j or reason.startswith(JUDGE_OFF_PREFIXES):
            continue
        judged += 1
        if j.get("value") is None:
            if reason.startswith(PARSE_FAILURE_PREFIXES):
                fails += 1
            else:
                backend += 1
    return {"judged": judged, "parse_failures": fails, "other_failures": backend,
            "rate": fails / judged if judged else None}


def agreement(run) -> Agreement:
    """The judge's good/bad against the people's majority good/bad, over answers both labelled."""
    answers = ok_answers(run)
    human = by_answer(latest(run.dir))
    pairs = [(h["label"], judge_binary(answers[aid])) for aid, h in sorted(human.items()) if aid in answers]
    return cohen_kappa([p[0] for p in pairs], [p[1] for p in pairs])


def human_scores(run) -> list[dict]:
    """Per approach: the human-rated score (mean [95% CI] over questions, repeats resampled) next to the automatic
    quality and judge score, both over all its answers and over the rated answers only."""
    answers = ok_answers(run)
    human = by_answer(latest(run.dir))
    rows = []
    for a in run.approaches:
        mine = {aid: rec for aid, rec in answers.items() if rec["approach"] == a.name}
        rated = {aid: human[aid] for aid in mine if aid in human and human[aid]["score"] is not None}
        groups: dict[str, list[float]] = {}
        for aid, h in rated.items():
            groups.setdefault(mine[aid]["qid"], []).append(h["score"])
        hs = cluster_bootstrap_ci(groups)
        rows.append({"approach": a.name, "rated answers": len(rated), "human score": hs.fmt(),
                     "quality (all)": mean(r.get("quality") for r in mine.values()),
                     "quality (on rated)": mean(mine[aid].get("quality") for aid in rated),
                     "judge (all)": mean(_judge(r).get("value") for r in mine.values()),
                     "judge (on rated)": mean(_judge(mine[aid]).get("value") for aid in rated)})
    return rows


def judge_report(run) -> dict:
    """Everything the report says about the judge and the people: agreement, parse failures, scores."""
    ag = agreement(run)
    pf = parse_failures(run)
    standing = latest(run.dir)
    raters = sorted({r.rater for r in standing})
    n_answers = len({r.answer_id for r in standing})
    _, bad_lines = history(run.dir)
    text = f"{len(standing)} ratings of {n_answers} answers by {len(raters)} rater(s)."
    if pf["judged"]:
        text += (f" Judge vs people (good/bad; judge grade >= {GOOD_GRADE} counts as good): {ag.fmt()}."
                 f" The judge's reply could not be parsed for {pf['parse_failures']} of {pf['judged']} answers "
                 f"({pf['rate']:.0%})" + (f", and failed for {pf['other_failures']} more" if pf["other_failures"]
                                          else "") + ".")
        if ag.kappa is not None:
            trust = ("agrees well with people" if ag.kappa >= 0.6 else "agrees only moderately with people"
                     if ag.kappa >= 0.4 else "agrees poorly with people - do not rank approaches on its score alone")
            text += f" On these answers the judge {trust}."
    else:
        text += " The LLM judge was off for this run, so there is no agreement to measure: run it with the judge on."
    if bad_lines:
        text += f" {bad_lines} unreadable line(s) in ratings.jsonl were skipped."
    return {"text": text, "agreement": ag.to_dict(), "parse_failures": pf, "raters": raters,
            "ratings": len(standing), "by_approach": human_scores(run)}


def rateable(run) -> list[dict]:
    """The answers a person can rate: answer id, question id/text, approach, repeat, answer text."""
    qs = {q.id: q for q in run.questions}
    out = []
    for aid, rec in sorted(ok_answers(run).items(), key=lambda kv: (kv[1]["qid"], kv[1]["approach"], repeat_of(kv[1]))):
        q = qs.get(rec["qid"])
        out.append({"answer_id": aid, "qid": rec["qid"], "approach": rec["approach"], "repeat": repeat_of(rec),
                    "question": q.question if q else "", "answer": rec.get("answer") or ""})
    return out


__all__ = ["Rating", "add_rating", "clear_rating", "history", "latest", "by_answer", "labelled_records",
           "labelled_jsonl", "export_labelled", "parse_failures", "agreement", "human_scores", "judge_report",
           "rateable", "answer_id", "RATINGS_FILE", "GOOD_GRADE"]
