"""core.prompts.edit: a spec from the Prompt Lab's fields and back, few-shot rows, unsaved edits, library refs."""
from __future__ import annotations

import math

import pytest

from core.errors import InvalidParams, PromptError
from core.prompts import edit
from core.prompts.library import PromptLibrary
from core.prompts.run import InvalidSchema

FIELDS = dict(name="qa", system="Be brief.", template="Q: {question}", temperature=0.2, top_p=0.9, max_tokens=64,
              seed=7, stop_text="\n\nEND", schema_text='{"type": "object"}', description="d")


def test_fields_round_trip():
    spec = edit.spec_from_fields(examples=[{"user": "hi", "assistant": "hello"}, {"user": None, "assistant": math.nan}],
                                 **FIELDS)
    assert [(e.user, e.assistant) for e in spec.examples] == [("hi", "hello")]      # the blank row is skipped
    assert spec.params.stop == ["END"] and spec.json_schema == {"type": "object"}
    fields = edit.spec_fields(spec)
    again = edit.spec_from_fields(**{k: v for k, v in fields.items()})
    assert again == spec and not edit.unsaved_prompt_edits(again, spec)
    changed = edit.spec_from_fields(**{**fields, "system": "Other."})
    assert edit.unsaved_prompt_edits(changed, spec) and edit.unsaved_prompt_edits(spec, None)
    params_only = edit.spec_from_fields(**{**fields, "temperature": 1.0})
    assert not edit.unsaved_prompt_edits(params_only, spec)            # params become CLI flags, not a new version


@pytest.mark.parametrize("change, error, match", [
    ({"name": "Bad Name"}, PromptError, "1-64 characters"),
    ({"template": "  "}, PromptError, "template is empty"),
    ({"template": "{question"}, PromptError, "unbalanced braces"),
    ({"temperature": 9}, InvalidParams, "temperature"),
    ({"schema_text": '{"type": "objekt"}'}, InvalidSchema, "invalid at type"),
])
def test_bad_fields_are_typed_errors(change, error, match):
    with pytest.raises(error, match=match):
        edit.spec_from_fields(**{**FIELDS, **change})


def test_half_filled_few_shot_row():
    with pytest.raises(PromptError, match="row 2 needs both"):
        edit.few_shots_from_rows([{"user": "a", "assistant": "b"}, {"user": "only a question", "assistant": ""}])


def test_library_refs(data_dir):
    lib = PromptLibrary()
    lib.ensure_starter()
    defaults = edit.default_refs(lib)
    assert defaults[:3] == ["zero_shot@1", "few_shot@1", "guardrail@1"]
    assert set(defaults) <= set(edit.all_refs(lib)) and len(defaults) == len(lib.names())
