"""Rendering a PromptSpec: variables, literal braces, few-shot assembly, chain of thought, JSON schema, context."""
from __future__ import annotations

import pytest

from core.errors import MissingVariable, PromptError
from core.llm.base import GenParams
from core.prompts.spec import COT_SUFFIX, FewShot, PromptSpec


def make(**kw) -> PromptSpec:
    base = dict(name="qa", system="Be brief.", template="Q: {question}\nA:")
    base.update(kw)
    return PromptSpec.from_dict(base)


def test_missing_variable_is_named():
    spec = make(template="Product {product}: {question}")
    with pytest.raises(MissingVariable) as ei:
        spec.render({"question": "why?"})
    assert "{product}" in str(ei.value) and "qa" in str(ei.value)


def test_braces_in_user_text_stay_literal():
    spec = make()
    text = 'my JSON is {"a": {b}} and {question} stays'
    msgs = spec.render({"question": text})
    assert msgs[-1]["content"] == f"Q: {text}\nA:"


def test_doubled_braces_in_template_are_literal_and_not_variables():
    spec = make(template='Reply like {{"answer": "..."}} to: {question}')
    assert spec.variables() == ["question"]
    assert spec.render_user({"question": "hi"}) == 'Reply like {"answer": "..."} to: hi'


def test_unbalanced_brace_is_a_clear_error():
    spec = make(template="Q: {question")
    with pytest.raises(PromptError, match="unbalanced braces"):
        spec.variables()


def test_empty_template_is_an_error():
    with pytest.raises(PromptError, match="empty template"):
        make(template="   ").render({})


def test_few_shot_assembly_order():
    spec = make(examples=[{"user": "u1", "assistant": "a1"}, {"user": "u2", "assistant": "a2"}])
    msgs = spec.render({"question": "real"})
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in msgs[1:5]] == ["u1", "a1", "u2", "a2"]
    assert msgs[-1]["content"] == "Q: real\nA:"


def test_few_shot_rows_need_both_sides():
    with pytest.raises(PromptError, match="example 1"):
        make(examples=[{"user": "only a question"}])


def test_no_system_message_when_system_empty():
    msgs = make(system="").render({"question": "x"})
    assert [m["role"] for m in msgs] == ["user"]


def test_chain_of_thought_appends_instruction():
    msgs = make(chain_of_thought=True).render({"question": "x"})
    assert msgs[-1]["content"].endswith(COT_SUFFIX)


def test_json_schema_goes_into_system_and_params():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    spec = make(json_schema=schema)
    msgs = spec.render({"question": "x"})
    assert '"required": ["answer"]' in msgs[0]["content"]
    assert spec.gen_params().json_schema == schema


def test_context_slot_and_prepending():
    spec = make(template="Context:\n{context}\nQ: {question}")
    assert spec.variables() == ["context", "question"]
    assert "[1] passage" in spec.render_user({"question": "x"}, context="[1] passage")
    assert "(no context retrieved)" in spec.render_user({"question": "x"})
    plain = make()
    assert plain.render_user({"question": "x"}, context="[1] p").startswith("Context:\n[1] p\n\n")


def test_round_trip_to_dict():
    spec = make(examples=[{"user": "u", "assistant": "a"}], params={"temperature": 0.7, "stop": ["\n\n"]})
    again = PromptSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.examples == [FewShot("u", "a")]
    assert isinstance(again.params, GenParams) and again.params.temperature == 0.7


@pytest.mark.parametrize("name", ["", "Has Space", "UPPER", "x" * 65, "../etc"])
def test_bad_names_rejected(name):
    with pytest.raises(PromptError, match="name"):
        make(name=name)
