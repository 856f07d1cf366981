"""The advisor's rules on hand-made use cases, its Compare run spec, and its check against measured results."""
from __future__ import annotations

import shlex

import pytest

from core import advisor as ADV
from core.advisor import Measured, Questionnaire, advise, check_advice, compare_spec
from core.compare.approach import classic_presets, parse_approach
from core.errors import AdvisorError, CompareError


def _one_sentence(text: str) -> bool:
    return text.endswith(".") and ". " not in text[:-1] and "\n" not in text


def test_facts_change_weekly_and_citations_start_with_rag():
    rec = advise(Questionnaire(knows_facts="yes", facts_change="weekly", citations=True))
    assert rec.start.approach == "prompt_rag"
    assert "weekly" in rec.start.reason and "cite" in rec.start.reason
    assert rec.next_step is None                            # no strict format or voice: nothing calls for a fine-tune
    assert rec.test_against == ["prompt_rag", "prompt_only"]   # does retrieval earn its keep?
    assert any("A prompt alone would do if" in w for w in rec.would_change)
    assert _one_sentence(rec.start.reason)


def test_strict_voice_many_examples_stable_facts_fine_tune_is_the_next_step():
    rec = advise(Questionnaire(knows_facts="yes", facts_change="never", strict_voice=True, examples=500,
                               training_budget="low"))
    assert rec.start.approach == "prompt_only"               # start simple: a prompt with examples first
    assert rec.next_step.approach == "fine_tuned" and rec.next_step.ready and not rec.next_step.blockers
    assert "500 examples" in rec.next_step.reason and "behaviour, not knowledge" in rec.next_step.reason
    assert rec.test_against == ["prompt_only", "fine_tuned", "prompt_rag"]
    assert _one_sentence(rec.start.reason) and _one_sentence(rec.next_step.reason)


def test_nothing_needed_gives_prompt_only():
    rec = advise(Questionnaire())
    assert rec.start.approach == "prompt_only" and rec.next_step is None
    assert set(rec.considerations) == {"accuracy", "cost", "latency", "maintenance"}
    assert all(_one_sentence(v) for v in rec.considerations.values())
    assert any("prompt + RAG instead" in w for w in rec.would_change)
    assert "Next step up: none needed" in rec.text()


def test_voice_with_changing_facts_fine_tunes_for_behaviour_only():
    rec = advise(Questionnaire(knows_facts="no", facts_change="weekly", citations=True, strict_voice=True,
                               examples=500, training_budget="low", queries_per_month=500_000,
                               latency_budget_s=0.5))
    assert rec.start.approach == "prompt_rag" and rec.next_step.approach == "fine_tuned_rag"
    assert "RAG keeps serving the facts" in rec.next_step.reason
    assert "keep them out of any fine-tune" in rec.considerations["maintenance"]
    assert "500,000 queries" in rec.considerations["cost"] and "tight" in rec.considerations["latency"]


def test_blocked_fine_tune_says_what_would_unblock_it():
    rec = advise(Questionnaire(strict_format=True, examples=20, training_budget="none"))
    assert rec.next_step.approach == "fine_tuned" and not rec.next_step.ready
    assert len(rec.next_step.blockers) == 2
    assert any(f"at least {ADV.FT_MIN_EXAMPLES}" in w and "you have 20" in w for w in rec.would_change)
    assert any("budget" in w for w in rec.would_change)
    assert "not ready yet" in rec.text() and "Blocked by:" in rec.text()


@pytest.mark.parametrize("bad", [dict(examples=-1), dict(knows_facts="maybe"), dict(facts_change="hourly"),
                                 dict(training_budget="lots"), dict(latency_budget_s=0), dict(citations="yes"),
                                 dict(queries_per_month=1.5)])
def test_bad_answers_raise_a_typed_error(bad):
    with pytest.raises(AdvisorError):
        advise(Questionnaire(**bad))


def test_query_round_trip_and_bad_query():
    q = Questionnaire(knows_facts="partly", facts_change="daily", citations=True, strict_voice=True, examples=42,
                      queries_per_month=123456, latency_budget_s=2.5, training_budget="high")
    assert Questionnaire.from_query(q.to_query()) == q
    assert Questionnaire.from_query(Questionnaire().to_query()) == Questionnaire()
    for bad in ("knows:perhaps", "nope:1", "ex:many", "cite:yes"):
        with pytest.raises(AdvisorError):
            Questionnaire.from_query(bad)
    with pytest.raises(AdvisorError):
        Questionnaire.from_dict({"knows_facts": "yes", "colour": "blue"})


def test_demo_answers_describe_the_shipped_scenario():
    q = Questionnaire.demo()
    assert q.knows_facts == "no" and q.citations and q.strict_voice
    assert q.examples > ADV.FT_MIN_EXAMPLES                  # the scenario's training transcripts
    rec = advise(q)
    assert (rec.start.approach, rec.next_step.approach, rec.next_step.ready) == ("prompt_rag", "fine_tuned_rag", True)


def test_compare_spec_is_what_the_compare_cli_accepts():
    from core.cli import build_parser
    from core.compare.cli import _approaches

    rec = advise(Questionnaire(knows_facts="no", strict_voice=True, examples=300, training_budget="low"))
    spec = compare_spec(rec, "support")
    classic = {s.name: s.to_string() for s in classic_presets("support")}
    assert spec["approaches"] == [classic["prompt_rag"], classic["fine_tuned_rag"], classic["prompt_only"]]
    assert spec["recommended"] == "prompt_rag" and spec["next_step"] == "fine_tuned_rag" and spec["repeats"] == 1
    assert [s.to_string() for s in ADV.prefill_specs(spec)] == spec["approaches"]
    argv = shlex.split(spec["cli"])
    assert argv[:4] == ["python", "-m", "core", "compare"]
    args = build_parser().parse_args(argv[3:])
    assert [s.to_string() for s in _approaches(args)] == spec["approaches"]
    every = compare_spec(rec, "support", include_all=True)
    assert [parse_approach(a).name for a in every["approaches"]] == ["prompt_rag", "fine_tuned_rag", "prompt_only",
                                                                     "fine_tuned"]
    assert ADV.prefill_from_query(rec.answers.to_query(), "support")["approaches"] == spec["approaches"]
    with pytest.raises(AdvisorError):
        compare_spec(rec, "support", repeats=0)
    with pytest.raises(CompareError):
        ADV.prefill_specs({"approaches": ["not a spec"]})
    with pytest.raises(CompareError):
        ADV.prefill_specs({})


# ---- advice vs measurement -------------------------------------------------------------------------------------
QIDS = [f"q{i:02d}" for i in range(30)]
WIGGLE = [0.03 if i % 2 else -0.03 for i in range(30)]


def _m(name: str, rung: str, level: float, wiggle: float = 1.0, available: bool = True) -> Measured:
    return Measured(name, rung, {q: level + 0.2 * (i % 3) / 2 + wiggle * WIGGLE[i] for i, q in enumerate(QIDS)},
                    available, "" if available else "no adapter yet")


RAG_ADVICE = advise(Questionnaire(knows_facts="no", strict_voice=True, examples=300, training_budget="low"))


def test_measurement_supports_rag_when_it_clearly_beats_the_prompt():
    chk = check_advice(RAG_ADVICE, [_m("prompt_only", "prompt_only", 0.2), _m("prompt_rag", "prompt_rag", 0.5, -1)])
    assert chk.verdict == "supported" and chk.start == "prompt_rag"
    assert chk.comparisons[0]["winner"] == "prompt_rag"


def test_measurement_contradicts_rag_when_the_prompt_is_as_good():
    chk = check_advice(RAG_ADVICE, [_m("prompt_only", "prompt_only", 0.4), _m("prompt_rag", "prompt_rag", 0.4, 0.9)])
    assert chk.verdict == "contradicted" and "not earned" in chk.text
    better = check_advice(RAG_ADVICE, [_m("prompt_only", "prompt_only", 0.6), _m("prompt_rag", "prompt_rag", 0.3, -1)])
    assert better.verdict == "contradicted" and "simpler approach is clearly better" in better.text
    assert "prompt_only beats prompt_rag by 0.30" in better.text


def test_next_step_is_due_when_it_clearly_beats_the_start():
    chk = check_advice(RAG_ADVICE, [_m("prompt_only", "prompt_only", 0.1), _m("prompt_rag", "prompt_rag", 0.4, -1),
                                    _m("ft_rag", "fine_tuned_rag", 0.7)])
    assert chk.verdict == "next step justified" and "ft_rag beats prompt_rag" in chk.text


def test_unmeasured_start_and_noisy_small_runs():
    chk = check_advice(RAG_ADVICE, [_m("prompt_only", "prompt_only", 0.2), _m("prompt_rag", "prompt_rag", 0, available=False)])
    assert chk.verdict == "not measured" and "(no adapter yet)" in chk.text and not chk.comparisons
    few = [f"q{i}" for i in range(6)]
    noisy_a = Measured("prompt_only", "prompt_only", dict(zip(few, [0.1, 0.9, 0.2, 0.8, 0.3, 0.7])))
    noisy_b = Measured("prompt_rag", "prompt_rag", dict(zip(few, [0.9, 0.2, 0.8, 0.3, 0.9, 0.1])))
    chk = check_advice(RAG_ADVICE, [noisy_a, noisy_b])
    assert chk.verdict == "inconclusive" and "not separated" in chk.text


def test_take_prefill_applies_once_from_the_session_or_the_url():
    rec = advise(Questionnaire(knows_facts="no"))
    spec = compare_spec(rec, "support")
    session, query = {ADV.PREFILL_KEY: spec}, {ADV.QUERY_PARAM: spec["query"]}
    assert ADV.take_prefill(session, query, "support") == spec
    assert ADV.PREFILL_KEY not in session
    assert ADV.take_prefill(session, query, "support") is None          # a rerun keeps the user's edits
    fresh = {}                                                          # a refresh: only the URL is left
    again = ADV.take_prefill(fresh, query, "support")
    assert again["approaches"] == spec["approaches"] and ADV.take_prefill(fresh, query, "support") is None
    assert ADV.take_prefill({}, {}, "support") is None
    with pytest.raises(AdvisorError):
        ADV.take_prefill({}, {ADV.QUERY_PARAM: "knows:perhaps"}, "support")
