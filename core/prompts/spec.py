"""PromptSpec: system prompt + user template with {variables} + few-shot examples + params (+ JSON schema).

Rendering turns a spec and variables into chat messages. Retrieved context goes into `{context}` when the
template has it; otherwise it is prepended to the user message, so any prompt works with RAG.
"""
from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass, field

from core.errors import MissingVariable, PromptError, TemplateFieldError
from core.llm.base import GenParams, Message

NAME_RE = re.compile(r"^[a-z0-9_]{1,64}$")
COT_SUFFIX = "\n\nThink step by step: write your reasoning first, then the final answer on a line starting with 'Answer:'."


@dataclass
class FewShot:
    user: str
    assistant: str


@dataclass
class PromptSpec:
    name: str
    system: str = ""
    template: str = "{question}"
    examples: list[FewShot] = field(default_factory=list)
    chain_of_thought: bool = False
    params: GenParams = field(default_factory=GenParams)
    json_schema: dict | None = None
    description: str = ""

    # ---- (de)serialisation: the on-disk YAML/JSON form of sample_docs/prompts/*.yaml ----
    @classmethod
    def from_dict(cls, data: dict) -> "PromptSpec":
        if not isinstance(data, dict):
            raise PromptError("A prompt must be a mapping with at least `name` and `template`.")
        name = str(data.get("name") or "")
        if not NAME_RE.match(name):
            raise PromptError(f"Prompt name {name!r} must be 1-64 characters of a-z, 0-9 and _.")
        examples = []
        for i, ex in enumerate(data.get("examples") or []):
            if not isinstance(ex, dict) or "user" not in ex or "assistant" not in ex:
                raise PromptError(f"Few-shot example {i + 1} of {name!r} needs both `user` and `assistant`.")
            examples.append(FewShot(str(ex["user"]), str(ex["assistant"])))
        schema = data.get("json_schema")
        if schema is not None and not isinstance(schema, dict):
            raise PromptError(f"json_schema of {name!r} must be a mapping or null.")
        return cls(
            name=name,
            system=str(data.get("system") or ""),
            template=str(data.get("template") or ""),
            examples=examples,
            chain_of_thought=bool(data.get("chain_of_thought", False)),
            params=GenParams.from_dict(data.get("params")),
            json_schema=schema,
            description=str(data.get("description") or ""),
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["params"] = {k: v for k, v in self.params.to_dict().items() if k not in ("json_schema", "num_ctx", "keep_alive", "repeat_penalty") or v}
        return d

    # ---- rendering ----
    def variables(self) -> list[str]:
        """Names of the {variables} in the template, in order, without duplicates."""
        try:
            fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(self.template) if f is not None]
        except ValueError as exc:
            raise PromptError(f"Template of {self.name!r} has unbalanced braces ({exc}); write literal braces as {{{{ }}}}.") from exc
        out: list[str] = []
        for n, spec, conv in fields:
            # `{question:>999999999}` would allocate that width and `{x!r}` changes the text: only bare names.
            if spec or conv is not None:
                shown = "{" + n + (f"!{conv}" if conv is not None else "") + (f":{spec}" if spec else "") + "}"
                raise TemplateFieldError(
                    f"Template of {self.name!r} has {shown[:60]}: format specs (`:...`) and conversions (`!r`) are "
                    f"not allowed in template fields; write {{{n}}}, or {{{{ }}}} for literal braces.")
            if not n.isidentifier():
                raise PromptError(f"Template of {self.name!r} has an invalid variable {{{n}}}; use letters, digits and _.")
            if n not in out:
                out.append(n)
        return out

    def render_user(self, variables: dict[str, str], context: str | None = None) -> str:
        """The user message. Values are inserted literally (braces in user text stay as they are)."""
        if not self.template.strip():
            raise PromptError(f"Prompt {self.name!r} has an empty template.")
        values = dict(variables)
        needed = self.variables()
        if "context" in needed and "context" not in values:
            values["context"] = context or "(no context retrieved)"
        missing = [n for n in needed if n not in values]
        if missing:
            raise MissingVariable(f"Prompt {self.name!r} needs a value for {', '.join('{' + m + '}' for m in missing)}.")
        text = self.template.format_map({n: str(values[n]) for n in needed})
        if context and "context" not in needed:
            text = f"Context:\n{context}\n\n{text}"
        if self.chain_of_thought:
            text += COT_SUFFIX
        return text

    def render(self, variables: dict[str, str], context: str | None = None) -> list[Message]:
        """Chat messages: system, few-shot pairs, then the rendered user turn."""
        messages: list[Message] = []
        system = self.system.strip()
        if self.json_schema is not None:
            import json
            system = (system + "\n\n" if system else "") + "Reply with JSON only, matching this schema:\n" + json.dumps(self.json_schema)
        if system:
            messages.append({"role": "system", "content": system})
        for ex in self.examples:
            messages.append({"role": "user", "content": ex.user})
            messages.append({"role": "assistant", "content": ex.assistant})
        messages.append({"role": "user", "content": self.render_user(variables, context)})
        return messages

    def gen_params(self) -> GenParams:
        """Params to send, with the spec's JSON schema attached for structured output."""
        p = GenParams.from_dict(self.params.to_dict())
        p.json_schema = self.json_schema
        return p
