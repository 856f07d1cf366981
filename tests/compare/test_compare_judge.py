"""The LLM judge through real backends: structured output parsed into a 0..1 score, or a reason - never NaN."""
from __future__ import annotations

import pytest

from core.compare.judge import JUDGE_SCHEMA, judge_answer
from core.scenario import Question
from core.llm.registry import get_backend

Q = Question("q03", "How long is an invitation to join a Tidewave team valid?", "Seven days. If it expires, press Resend.")


def test_unreachable_judge_backend_gives_reason_not_nan(data_dir, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    s = judge_answer(Q, "Seven days.", get_backend("openai"), "any")
    assert s.value is None and s.reason.startswith("judge failed") and "OPENAI_BASE_URL" in s.reason


def test_empty_answer_is_graded_without_calling_the_judge(data_dir):
    s = judge_answer(Q, "   ", get_backend("openai"))
    assert s.value == 0.0 and "empty answer" in s.reason


@pytest.mark.slow
def test_embedded_judge_returns_schema_valid_grade(data_dir):
    assert JUDGE_SCHEMA["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]   # grammar-enforceable range
    s = judge_answer(Q, "Seven days; press Resend if it expires.", get_backend("embedded"), max_tokens=64)
    assert s.value is not None, s.reason                    # the grammar makes the JSON parseable
    assert 0.0 <= s.value <= 1.0 and s.reason.startswith("judge ") and s.detail["grade"] in (1, 2, 3, 4, 5)
