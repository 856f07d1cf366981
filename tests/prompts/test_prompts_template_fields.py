"""Template fields are bare names: a format spec (`{question:>999999999}`) or a conversion (`{x!r}`) is refused
with a typed error before anything is rendered, saved or sent."""
from __future__ import annotations

import pytest

from core.errors import PromptError, TemplateFieldError
from core.prompts.spec import PromptSpec


@pytest.mark.parametrize("template", ["Q: {question:>999999999}", "{question!r}", "{question!s:>10}",
                                      "{context:{question}}", "A {question:.1000000f}"])
def test_format_specs_and_conversions_are_rejected(template):
    spec = PromptSpec(name="p", template=template)
    with pytest.raises(TemplateFieldError, match="not allowed in template fields") as exc:
        spec.variables()
    assert isinstance(exc.value, PromptError)
    with pytest.raises(TemplateFieldError):
        spec.render({"question": "hi", "context": "c"})


def test_library_refuses_to_save_such_a_template(data_dir):
    from core.prompts.library import PromptLibrary
    lib = PromptLibrary()
    with pytest.raises(TemplateFieldError):
        lib.save(PromptSpec(name="wide", template="{question:>999999999}"), message="try a wide field")
    assert not (lib.root / "wide").exists() or not list((lib.root / "wide").glob("v*.yaml"))


def test_plain_fields_and_literal_braces_still_work():
    spec = PromptSpec(name="p", template="Answer {question} using {{json}} and {context}")
    assert spec.variables() == ["question", "context"]
    assert spec.render_user({"question": "{x:>9}", "context": "c"}) == "Answer {x:>9} using {json} and c"
