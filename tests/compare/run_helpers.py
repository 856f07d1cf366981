"""A real comparison run folder (created by the runner: resolved approaches, pinned questions) whose answers are
hand-made records in the runner's results.jsonl format, so statistics and ratings are checked on known numbers
without generating text."""
from __future__ import annotations

from core.compare import runner
from core.compare.approach import ApproachSpec
from core.compare.questions import scenario_questions
from core.fileio import append_jsonl

APPROACHES = ("prompt_only", "short")


def judge_score(grade: int | None, reason: str | None = None) -> dict:
    if grade is None:
        return {"value": None, "reason": reason or "judge returned invalid JSON: 'oops'"}
    return {"value": (grade - 1) / 4, "reason": f"judge {grade}/5: hand-made", "detail": {"grade": grade}}


def make_run(n_questions: int = 8) -> tuple[str, list]:
    """Two base-model approaches over the first scenario questions; nothing answered yet."""
    qs = scenario_questions()[:n_questions]
    rid = runner.create_run([ApproachSpec("prompt_only", prompt="few_shot"), ApproachSpec("short", prompt="zero_shot")],
                            qs, name="hand-made")
    return rid, qs


def add_answer(run_id: str, qid: str, approach: str, quality: float, grade: int | None = 3, *, repeat: int | None = None,
               answer: str | None = None, judge: dict | None = None) -> dict:
    rec = {"qid": qid, "approach": approach, "ok": True, "answer": answer if answer is not None else
           f"Answer to {qid} by {approach}.", "quality": quality,
           "scores": {"similarity": {"value": quality, "reason": "hand-made"},
                      "judge": judge if judge is not None else judge_score(grade)},
           "latency_s": 1.0, "ttft_s": 0.2, "prompt_tokens": 100 if approach == "prompt_only" else 40,
           "completion_tokens": 20, "usage": {"latency_s": 1.0}, "seed": 42}
    if repeat is not None:
        rec["repeat"] = repeat
    append_jsonl(runner.run_dir(run_id) / "results.jsonl", rec)
    return rec
