"""Optional LLM judge: grades an answer 1-5 against the reference with a rubric, through structured output
(a JSON schema the backend must follow). Any failure - backend error, invalid JSON, a grade out of range -
gives Score(None, reason) so it is shown, never a silent NaN."""
from __future__ import annotations

import re

from core.scenario import Question
from core.compare.scores import Score
from core.errors import WorkbenchError
from core.jsonout import loads

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "reason": {"type": "string"},
    },
    "required": ["score", "reason"],
}

RUBRIC = """You grade answers of a customer-support assistant.
Grade the ANSWER against the REFERENCE on a 1-5 scale:
5 = correct and complete, consistent with the reference;
4 = correct, minor omissions;
3 = partly correct or vague;
2 = mostly wrong or misses the point;
1 = wrong, invented facts, or no answer.
Reply with JSON only: {"score": <1-5>, "reason": "<one short sentence>"}."""


def judge_messages(question: Question, answer: str) -> list[dict]:
    user = (f"QUESTION:\n{question.question}\n\nREFERENCE:\n{question.reference or '(none given)'}\n\n"
            f"ANSWER:\n{answer or '(empty)'}")
    return [{"role": "system", "content": RUBRIC}, {"role": "user", "content": user}]


def _short_repr(value, n: int = 80) -> str:
    """repr of a parsed JSON value for a reason text; a value nested too deeply for repr is named, not a crash."""
    try:
        r = repr(value)
    except RecursionError:
        return "a value nested too deeply to show"
    return r if len(r) <= n else r[:n] + "…"


def parse_judge_reply(text: str) -> Score:
    """JSON {score: 1-5, reason} -> Score((score-1)/4, reason). Invalid -> Score(None, 'judge returned ...')."""
    raw = (text or "").strip()
    snippet = raw[:120].replace("\n", " ")
    if not raw:
        return Score(None, "judge returned an empty reply")
    obj = None
    for cand in (raw, (re.search(r"\{.*\}", raw, re.S) or [None])[0]):
        if not cand:
            continue
        try:
            obj = loads(cand)           # NotJSON (a ValueError) when nested too deeply: not a crash
            break
        except ValueError:
            continue
    if obj is None:
        return Score(None, f"judge returned invalid JSON: {snippet!r}")
    if not isinstance(obj, dict) or "score" not in obj:
        return Score(None, f"judge JSON has no `score`: {snippet!r}")
    s = obj["score"]
    if isinstance(s, str) and s.strip().isdigit():
        s = int(s.strip())
    if isinstance(s, bool) or not isinstance(s, (int, float)) or float(s) != int(s) or not 1 <= int(s) <= 5:
        return Score(None, f"judge score must be an integer 1-5, got {_short_repr(obj['score'])}")
    reason = str(obj.get("reason") or "").strip()[:300]
    return Score((int(s) - 1) / 4, f"judge {int(s)}/5: {reason}" if reason else f"judge {int(s)}/5", {"grade": int(s)})


def judge_answer(question: Question, answer: str, backend, model: str | None = None,
                 max_tokens: int = 96, seed: int = 42) -> Score:
    from core.llm.base import GenParams

    if not (answer or "").strip():
        return Score(0.0, "judge skipped: empty answer graded as 1/5", {"grade": 1})
    params = GenParams(temperature=0.0, max_tokens=max_tokens, seed=seed, json_schema=JUDGE_SCHEMA)
    try:
        res = backend.chat(judge_messages(question, answer), params, model=model)
    except WorkbenchError as exc:
        return Score(None, f"judge failed: {exc}")
    except Exception as exc:  # noqa: BLE001 - a judge failure must never break the run
        return Score(None, f"judge failed ({type(exc).__name__}): {exc}")
    return parse_judge_reply(res.text)
