"""Running variants: JSON validation, schema checks, CLI line, token counting and context window with the real
embedded llama.cpp model, streaming several variants, and batch runs."""
from __future__ import annotations

import shlex

import pytest

from core.errors import ContextOverflow, InvalidParams, MissingVariable, ModelNotFound, PromptError
from core.prompts.run import (InvalidSchema, Variant, all_variables, batch_figure, batch_summary, check_schema,
                              cli_line, extract_json, param_overrides, parse_schema_text, prepare,
                              run_batch, run_prepared, run_variants, stream_variants, validate_json_output)
from core.prompts.spec import PromptSpec
from core.llm.base import GenParams

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}, "n": {"type": "integer"}},
          "required": ["answer"], "additionalProperties": False}


def spec(**kw) -> PromptSpec:
    base = dict(name="qa", system="Answer in one short sentence.", template="{question}",
                params={"temperature": 0.2, "max_tokens": 12, "seed": 42})
    base.update(kw)
    return PromptSpec.from_dict(base)


# ---- JSON output / schema (no model) -------------------------------------------------------------------------
@pytest.mark.parametrize("text", ['{"answer": "yes"}', '```json\n{"answer": "yes"}\n```',
                                  'Sure! Here it is: {"answer": "yes"} hope it helps'])
def test_validate_json_output_accepts_json_in_common_wrappings(text):
    ok, err, parsed = validate_json_output(text, SCHEMA)
    assert (ok, err, parsed) == (True, None, {"answer": "yes"})


def test_validate_json_output_reports_schema_errors_with_path():
    ok, err, parsed = validate_json_output('{"answer": "x", "n": "three"}', SCHEMA)
    assert not ok and parsed == {"answer": "x", "n": "three"}
    assert "$.n" in err and "not of type 'integer'" in err
    ok, err, _ = validate_json_output('{"n": 1}', SCHEMA)
    assert not ok and "'answer' is a required property" in err


def test_validate_json_output_not_json():
    ok, err, parsed = validate_json_output("I think the answer is yes.", SCHEMA)
    assert (ok, parsed) == (False, None) and err.startswith("Not valid JSON")
    assert validate_json_output("", None)[1].startswith("Not valid JSON: the reply is empty")
    assert validate_json_output("[1, 2]", None) == (True, None, [1, 2])


def test_extract_json_prefers_whole_text():
    assert extract_json(' {"a": [1, {"b": 2}]} ') == {"a": [1, {"b": 2}]}


def test_schema_checks():
    assert parse_schema_text("  ") is None
    assert parse_schema_text('{"type": "object"}') == {"type": "object"}
    with pytest.raises(InvalidSchema, match="not valid JSON \\(line 1, column 10"):
        parse_schema_text('{"type": }')
    with pytest.raises(InvalidSchema, match="invalid at type"):
        parse_schema_text('{"type": "objekt"}')
    with pytest.raises(InvalidSchema, match="must be a JSON object"):
        check_schema(["type", "object"])


def test_all_variables_union_in_order():
    a = spec(template="{product}: {question}")
    b = spec(template="Context: {context}\n{question} {tone}")
    broken = spec()
    broken.template = "{oops"
    assert all_variables([a, b, broken]) == ["product", "question", "tone"]


def test_cli_line_round_trips_through_the_real_parser():
    from core.cli import build_parser

    line = cli_line("few_shot@2", {"question": "What's {x} & \"y\"?"}, "embedded", "smollm2-135m-instruct",
                    {"temperature": 0.7, "stop": ["\n\n"]})
    argv = shlex.split(line)
    assert argv[:4] == ["python", "-m", "core", "generate"]
    args = build_parser().parse_args(argv[3:])
    assert args.prompt_ref == "few_shot@2"
    assert args.var == ["question=What's {x} & \"y\"?"]
    assert (args.backend, args.model, args.temperature, args.stop) == ("embedded", "smollm2-135m-instruct", 0.7,
                                                                       ["\n\n"])


def test_param_overrides_only_lists_changes():
    saved = GenParams(temperature=0.2, max_tokens=200)
    cur = GenParams(temperature=0.5, max_tokens=200)
    assert param_overrides(cur, saved) == {"temperature": 0.5}
    assert param_overrides(saved, saved) == {}


def test_load_questions_from_the_scenario():
    from core.scenario import scenario_questions
    qs = [q.to_dict() for q in scenario_questions(limit=3)]
    assert len(qs) == 3 and all(q["question"] and q["id"] for q in qs)


def test_batch_summary_and_figure_from_records():
    recs = [
        {"variant": "A", "prompt": "p@1", "model": "m", "error": "", "latency_s": 1.0, "prompt_tokens": 10,
         "completion_tokens": 5, "json_ok": None},
        {"variant": "A", "prompt": "p@1", "model": "m", "error": "", "latency_s": 3.0, "prompt_tokens": 20,
         "completion_tokens": 7, "json_ok": None},
        {"variant": "B", "prompt": "q@1", "model": "m", "error": "boom", "latency_s": 0.1, "prompt_tokens": 0,
         "completion_tokens": 0, "json_ok": False},
    ]
    summary = {s["variant"]: s for s in batch_summary(recs)}
    assert summary["A"]["mean_latency_s"] == 2.0 and summary["A"]["mean_prompt_tokens"] == 15.0
    assert summary["B"]["errors"] == 1 and summary["B"]["mean_latency_s"] is None
    assert summary["B"]["json_valid_rate"] == 0.0
    fig = batch_figure(recs)
    assert {t.type for t in fig.data} == {"box", "bar"}


# ---- with the real embedded model ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def backend():
    from core.llm.registry import get_backend
    return get_backend("embedded")


@pytest.mark.slow
def test_token_counting_matches_generation(backend, data_dir):
    zero = Variant("A", spec(), "embedded", "smollm2-135m-instruct")
    few = Variant("B", spec(examples=[{"user": "Is Tidewave free?", "assistant": "There is a free plan."}]),
                  "embedded", "smollm2-135m-instruct")
    pz = prepare(zero, {"question": "What is Tidewave?"}, backend)
    pf = prepare(few, {"question": "What is Tidewave?"}, backend)
    assert 10 < pz.prompt_tokens < pf.prompt_tokens                        # few-shot costs tokens
    assert pf.prompt_tokens - pz.prompt_tokens >= 10
    assert pz.n_ctx == backend.context_window("smollm2-135m-instruct") > 0
    res = run_prepared(pz)
    assert res.error is None and res.text.strip()
    assert res.usage.prompt_tokens == pz.prompt_tokens                       # pre-flight count is exact
    assert 0 < res.usage.completion_tokens <= 12
    assert res.usage.latency_s >= res.usage.ttft_s > 0


@pytest.mark.slow
def test_100kb_prompt_overflows_before_generating(backend, data_dir):
    big = spec(system="lorem ipsum dolor " * (100_000 // 18))
    p = prepare(Variant("A", big, "embedded", ""), {"question": "hi"}, backend)
    assert p.overflow and p.prompt_tokens > p.n_ctx
    assert "exceeds the" in p.warning and "context window" in p.warning
    res = run_prepared(p)
    assert res.error_type == "ContextOverflow" and res.text == "" and res.usage is None
    assert "context window" in res.error
    with pytest.raises(ContextOverflow):
        raise p.overflow_error()


@pytest.mark.slow
def test_bad_inputs_raise_typed_errors(backend, data_dir):
    with pytest.raises(MissingVariable, match="{question}"):
        prepare(Variant("A", spec(), "embedded", ""), {}, backend)
    empty = spec()
    empty.template = " "
    with pytest.raises(PromptError, match="template is empty"):
        prepare(Variant("A", empty, "embedded", ""), {}, backend)
    with pytest.raises(ModelNotFound, match="no model 'no-such-model'"):
        prepare(Variant("A", spec(), "embedded", "no-such-model"), {"question": "x"}, backend)
    bad_params = spec(params={"max_tokens": 0})
    with pytest.raises(InvalidParams, match="max_tokens"):
        prepare(Variant("A", bad_params, "embedded", ""), {"question": "x"}, backend)
    with pytest.raises(InvalidSchema):
        prepare(Variant("A", spec(json_schema={"type": 5}), "embedded", ""), {"question": "x"}, backend)


@pytest.mark.slow
def test_stream_two_variants_and_json_output(backend, data_dir):
    a = Variant("A", spec(), "embedded", "")
    b = Variant("B", spec(json_schema=SCHEMA, params={"temperature": 0.0, "max_tokens": 40, "seed": 1}),
                "embedded", "")
    prepared = [prepare(v, {"question": "What colour is the sky?"}, backend) for v in (a, b)]
    events = list(stream_variants(prepared))
    kinds = {i: [e.kind for e in events if e.index == i] for i in (0, 1)}
    for i in (0, 1):
        assert kinds[i][0] == "waiting" and kinds[i][-1] == "done" and "delta" in kinds[i]
    done = {e.index: e.result for e in events if e.kind == "done"}
    streamed = "".join(e.text for e in events if e.index == 0 and e.kind == "delta")
    assert done[0].text == streamed and done[0].json_ok is None
    # the grammar forces JSON: it parses, and validation reports either valid or the exact schema problem
    assert done[1].parsed is not None or done[1].usage.finish_reason == "length"
    assert done[1].json_ok is True or done[1].json_error
    # same seed, same params: a second run gives the same text (sequential on the shared model)
    again = run_variants([prepare(a, {"question": "What colour is the sky?"}, backend)], parallel=False)
    assert again[0].text == done[0].text


@pytest.mark.slow
def test_batch_over_questions(backend, data_dir):
    from core.scenario import scenario_questions
    rows = [q.to_dict() for q in scenario_questions(limit=2)] + [{"id": "bad", "question": "x", "nothing": 1}]
    variant = Variant("A", spec(template="{question} ({tone})"), "embedded", "", "qa@1")
    seen = []
    recs = run_batch(variant, rows, backend, fixed={"tone": "short"}, progress=lambda k, n, r: seen.append((k, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert [r["id"] for r in recs] == [rows[0]["id"], rows[1]["id"], "bad"]
    assert all(not r["error"] and r["output"] and r["prompt_tokens"] > 0 and r["latency_s"] > 0 for r in recs)
    missing = run_batch(Variant("B", spec(template="{question} {tone}"), "embedded", ""), rows[:1], backend)
    assert "{tone}" in missing[0]["error"] and missing[0]["output"] == ""
