"""Score functions on hand-made cases (no model needed): every score is a float in [0, 1] or None + reason."""
from __future__ import annotations

import math

import pytest

from core.compare import scores as S
from core.compare.judge import parse_judge_reply
from core.scenario import Question, VoiceCheck
from core.rag.context import check_citations

VOICE = [VoiceCheck("greeting", r"^\s*Ahoy there!"),
         VoiceCheck("numbered_steps", r"(?ms)^\s*1[.)]\s+\S.*?^\s*2[.)]\s+\S"),
         VoiceCheck("signoff", r"(?m)^\s*Smooth sailing!\s*[—–-]+\s*Pip, Tidewave Support")]


def _ok(score: S.Score) -> None:
    assert score.value is None or (0.0 <= score.value <= 1.0 and not math.isnan(score.value))
    assert score.value is not None or score.reason, "a None score must say why"


def test_keywords_counts_whole_words_case_insensitive():
    s = S.keywords("The pack has 500 credits for €10.", ["500", "10", "Frankfurt"])
    assert s.value == pytest.approx(2 / 3) and "Frankfurt" in s.reason
    assert S.keywords("It costs 1000 euros", ["10"]).value == 0.0      # 10 is not inside 1000
    assert S.keywords("", ["500"]).value == 0.0
    assert S.keywords("anything", []).value is None


def test_patterns_and_invalid_pattern():
    assert S.patterns("Order TW-4020 failed", [r"TW-\d{4}", r"quota"]).value == 0.5
    bad = S.patterns("x", ["("])
    assert bad.value is None and "invalid pattern" in bad.reason


def test_exact_only_for_short_references():
    assert S.exact("Seven days.", "Seven days").value == 1.0
    assert S.exact("It is valid for seven days, then resend it.", "seven days").value == 1.0
    assert S.exact("Eight days", "Seven days").value == 0.0
    long_ref = "In the EU: the primary region is Frankfurt, Germany, with backups in Dublin."
    assert S.exact("Frankfurt", long_ref).value is None
    assert S.exact("", "Seven days").value == 0.0                       # empty answer is wrong, not n/a
    assert S.exact("Answer: seven days", "seven days", forced=True).value == 1.0


def test_json_valid_cases():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    assert S.json_valid('{"answer": "7 days"}', schema).value == 1.0
    assert S.json_valid('Sure!\n```json\n{"answer": "7 days"}\n```', schema).value == 1.0
    assert S.json_valid('{"reply": "7 days"}', schema).value == 0.0      # valid JSON, wrong shape
    other_format = S.json_valid("1. Open settings\n2. Click resend", schema)   # answer in another format
    assert other_format.value == 0.0 and "not JSON" in other_format.reason
    assert S.json_valid("", schema).value == 0.0
    assert S.json_valid('{"a": 1}', None).value is None


def test_voice_checks_from_scenario_patterns():
    good = "Ahoy there! Here is how:\n1. Open Settings > Team.\n2. Press Resend.\nSmooth sailing! — Pip, Tidewave Support"
    s = S.voice(good, VOICE)
    assert s.value == 1.0 and s.detail == {"greeting": True, "numbered_steps": True, "signoff": True}
    flat = S.voice("1. one 2. two", VOICE)                              # steps on one line do not count
    assert flat.value == 0.0 and "numbered_steps" in flat.reason
    assert S.voice("", VOICE).value == 0.0
    tagged = [VoiceCheck("g", r"Ahoy", tags=["brand_voice"])]
    assert S.voice("Ahoy", tagged, ["fact_lookup"]).value is None
    assert S.voice("Ahoy", tagged, ["brand_voice"]).value == 1.0


def test_citations_valid_invalid_and_source():
    sources = ["team-and-roles.txt", "error-codes.txt"]
    s = S.citations("Valid for 7 days [1].", sources, "knowledge/team-and-roles.txt", check_citations)
    assert s.value == 1.0 and "expected source" in s.reason
    wrong_src = S.citations("Valid for 7 days [2].", sources, "knowledge/team-and-roles.txt", check_citations)
    assert wrong_src.value == 0.5
    invalid = S.citations("See [1] and [7].", sources, None, check_citations)
    assert invalid.value == 0.5 and "[7]" in invalid.reason
    assert S.citations("No citations here.", sources, None, check_citations).value == 0.0
    assert S.citations("x [1]", [], None).value is None


def test_context_hit_verbatim_without_embedder():
    chunks = ["Members get an invitation email that is valid for 7 days.", "Other text."]
    assert S.context_hit("an invitation email that is VALID for 7 days", chunks).value == 1.0
    assert S.context_hit("Harbor keeps 365 days of audit history.", chunks).value == 0.0
    assert S.context_hit(None, chunks).value is None
    assert S.context_hit("x", []).value == 0.0


def test_score_answer_without_retrieval_marks_rag_scores_na():
    q = Question("q1", "How long is an invite valid?", "Seven days", keywords=["7 days"])
    out = S.score_answer(q, "", rag=False, voice_checks=VOICE, embed=lambda t: (_ for _ in ()).throw(AssertionError()))
    assert out["similarity"].value == 0.0 and out["similarity"].reason == "empty answer"
    for k in S.RAG_SCORES:
        assert out[k].value is None and "retrieval is off" in out[k].reason
    for sc in out.values():
        _ok(sc)
    assert S.quality({k: v.to_dict() for k, v in out.items()}) == 0.0


def test_quality_ignores_none_and_never_nan():
    assert S.quality({"similarity": {"value": None, "reason": "n/a"}}) is None
    assert S.quality({"similarity": {"value": 0.5}, "voice": {"value": 1.0}, "context_hit": {"value": 0.0}}) == 0.75
    assert S.Score(float("nan"), "x").value is None
    assert S.Score(1.7).value == 1.0 and S.Score(-0.2).value == 0.0


@pytest.mark.parametrize("reply,value,needle", [
    ('{"score": 5, "reason": "correct"}', 1.0, "5/5"),
    ('{"score": 1, "reason": "wrong"}', 0.0, "1/5"),
    ('Here: {"score": 3, "reason": "partly"} done', 0.5, "3/5"),
    ('{"score": "4", "reason": "ok"}', 0.75, "4/5"),
    ("not json at all", None, "judge returned invalid JSON"),
    ('{"score": 9, "reason": "too high"}', None, "integer 1-5"),
    ('{"score": 2.5, "reason": "half"}', None, "integer 1-5"),
    ('{"grade": 4}', None, "no `score`"),
    ("", None, "empty reply"),
    ('{"score": true, "reason": "bool"}', None, "integer 1-5"),
])
def test_judge_reply_parsing(reply, value, needle):
    s = parse_judge_reply(reply)
    assert s.value == value
    assert needle in s.reason


def test_cached_embed_embeds_each_text_once():
    import numpy as np

    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype="float32")

    ce = S.CachedEmbed(embed, max_items=3)
    a = ce(["aa", "b", "aa"])
    assert a.tolist() == [[2, 1], [1, 1], [2, 1]] and calls == [["aa", "b"]]
    ce(["b", "ccc"])
    assert calls[-1] == ["ccc"] and ce.hits == 2
    out = ce(["dddd", "aa"])                      # over the bound: cache resets, results stay right
    assert out.tolist() == [[4, 1], [2, 1]]


def test_json_answers_are_scored_on_their_answer_field():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}, "citations": {"type": "array"}},
              "required": ["answer"]}
    q = Question("q", "Invite valid?", "Seven days", keywords=["seven days"])
    out = S.score_answer(q, '{"answer": "Seven days.", "citations": [1]}', rag=False, prompt_schema=schema,
                         embed=lambda t: __import__("numpy").ones((len(t), 2)) / 2 ** 0.5)
    assert out["json_valid"].value == 1.0 and out["keywords"].value == 1.0 and out["exact"].value == 1.0
    assert S.answer_text("not json {") == "not json {"
