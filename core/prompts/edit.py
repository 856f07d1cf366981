"""Editing prompts: a PromptSpec from the Prompt Lab's editable fields, few-shot rows, unsaved-edit checks and
the library references the Lab offers. No Streamlit here; every problem is a PromptError / InvalidParams /
InvalidSchema whose message the page shows as is."""
from __future__ import annotations

import json
import math
from typing import Any, Iterable

from core.errors import PromptError
from core.llm.base import GenParams
from core.prompts.library import PromptLibrary
from core.prompts.run import parse_schema_text
from core.prompts.spec import NAME_RE, FewShot, PromptSpec

PREFERRED = ("zero_shot", "few_shot", "guardrail", "guardrail_json", "chain_of_thought")


def _cell(value: Any) -> str:
    """A table cell as text: None and NaN (an empty cell of a data editor) are empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def few_shots_from_rows(rows: Iterable[dict]) -> list[FewShot]:
    """Few-shot examples from {user, assistant} rows; blank rows are skipped, half-filled ones are an error."""
    out = []
    for n, row in enumerate(rows, 1):
        u, a = _cell(row.get("user")), _cell(row.get("assistant"))
        if not u.strip() and not a.strip():
            continue
        if not u.strip() or not a.strip():
            raise PromptError(f"Few-shot row {n} needs both a user message and an assistant answer.")
        out.append(FewShot(u, a))
    return out


def spec_from_fields(*, name: str, system: str, template: str, examples: Iterable[dict] = (),
                     chain_of_thought: bool = False, temperature: float = 0.2, top_p: float = 0.95,
                     max_tokens: int = 256, seed: int = 42, stop_text: str = "", schema_text: str = "",
                     description: str = "") -> PromptSpec:
    """A validated PromptSpec from the fields of one Prompt Lab column. Raises PromptError / InvalidParams /
    InvalidSchema with a message for the user."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise PromptError(f"Name {name!r}: use 1-64 characters of a-z, 0-9 and _ (e.g. few_shot_v2).")
    if not (template or "").strip():
        raise PromptError("The user template is empty: write at least {question}.")
    params = GenParams(temperature=float(temperature), top_p=float(top_p), max_tokens=int(max_tokens),
                       seed=int(seed), stop=[s for s in (stop_text or "").split("\n") if s]).validate()
    spec = PromptSpec(name=name, system=system or "", template=template, examples=few_shots_from_rows(examples),
                      chain_of_thought=bool(chain_of_thought), params=params,
                      json_schema=parse_schema_text(schema_text), description=description or "")
    spec.variables()            # unbalanced braces / bad variable names are reported now
    return spec


def spec_fields(spec: PromptSpec) -> dict[str, Any]:
    """The editable fields of a spec (the inverse of spec_from_fields)."""
    p = spec.params
    return {"name": spec.name, "system": spec.system, "template": spec.template,
            "examples": [{"user": e.user, "assistant": e.assistant} for e in spec.examples],
            "chain_of_thought": spec.chain_of_thought, "temperature": float(p.temperature), "top_p": float(p.top_p),
            "max_tokens": int(p.max_tokens), "seed": int(p.seed if p.seed is not None else 42),
            "stop_text": "\n".join(p.stop),
            "schema_text": json.dumps(spec.json_schema, indent=2) if spec.json_schema is not None else "",
            "description": spec.description}


def unsaved_prompt_edits(spec: PromptSpec, saved: PromptSpec | None) -> bool:
    """True when system/template/examples/CoT/schema differ from the loaded version (params become CLI flags)."""
    if saved is None:
        return True
    a = {k: v for k, v in spec.to_dict().items() if k != "params"}
    b = {k: v for k, v in saved.to_dict().items() if k != "params"}
    return a != b


def parses(spec: PromptSpec) -> bool:
    try:
        spec.variables()
        return True
    except PromptError:
        return False


def all_refs(lib: PromptLibrary) -> list[str]:
    """Every version of every prompt, newest first per prompt ("few_shot@2", "few_shot@1", ...)."""
    return [f"{name}@{v.version}" for name in lib.names() for v in reversed(lib.versions(name))]


def default_refs(lib: PromptLibrary, preferred: Iterable[str] = PREFERRED) -> list[str]:
    """The newest version of each prompt, the starter kinds first."""
    preferred = list(preferred)
    names = lib.names()
    ordered = [n for n in preferred if n in names] + [n for n in names if n not in preferred]
    return [f"{n}@{lib.latest_version(n)}" for n in ordered]
