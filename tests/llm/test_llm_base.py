"""core.llm.base.Backend: a tiny backend written in the test proves that chat_stream runs the shared checks once
(params, messages, model, context window) before the backend's own `_stream`, and never calls it on bad input."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.errors import ContextOverflow, EmptyPrompt, InvalidParams, ModelNotFound
from core.llm.base import Backend, BackendStatus, ChatStream, GenParams, ModelInfo, Usage
from core.llm.embedded import EmbeddedBackend
from core.llm.ollama_backend import OllamaBackend
from core.llm.openai_backend import OpenAIBackend

ROOT = Path(__file__).resolve().parents[2]
MSGS = [{"role": "user", "content": "one two three four"}]


class WordBackend(Backend):
    """Counts words as tokens, has a 32-token window, and echoes the user's words back."""
    name = "words"

    def __init__(self):
        self.calls: list[str] = []

    def status(self) -> BackendStatus:
        return BackendStatus(self.name, True, "in the test", self.list_models())

    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("w1", self.name, digest="sha256:w1"), ModelInfo("w2", self.name)]

    def default_model(self) -> str:
        self.calls.append("default_model")
        return "w1"

    def resolve(self, model=None) -> str:
        model_id = super().resolve(model)
        if model_id not in ("w1", "w2"):
            raise ModelNotFound(f"no model {model_id!r}")
        return model_id

    def count_tokens(self, messages, model=None) -> int:
        self.calls.append("count_tokens")
        return sum(len((m.get("content") or "").split()) for m in messages)

    def context_window(self, model=None, params=None) -> int:
        self.calls.append("context_window")
        return 32

    def _stream(self, messages, params, model, report) -> ChatStream:
        self.calls.append("_stream")
        self.seen = (messages, params, model, report)
        words = messages[-1]["content"].split()[: params.max_tokens]
        usage = Usage(self.name, model, prompt_tokens=report.prompt_tokens, completion_tokens=len(words),
                      n_ctx=report.n_ctx)
        return ChatStream(iter(w + " " for w in words), lambda: usage)


def test_shared_checks_run_once_then_the_backends_own_stream():
    be = WordBackend()
    res = be.chat(MSGS, GenParams(max_tokens=3))
    assert res.text == "one two three " and res.usage.prompt_tokens == 4 and res.usage.n_ctx == 32
    assert be.calls == ["default_model", "count_tokens", "context_window", "_stream"]
    messages, params, model, report = be.seen
    assert model == "w1" and report.fits and report.prompt_tokens == 4 and report.max_tokens == 3
    be.calls.clear()
    be.chat_stream(MSGS, GenParams(max_tokens=3), model=" w2 ")
    assert be.calls == ["count_tokens", "context_window", "_stream"] and be.seen[2] == "w2"


@pytest.mark.parametrize("messages, params, model, error", [
    ([{"role": "user", "content": "  "}], GenParams(), None, EmptyPrompt),
    ([{"role": "robot", "content": "hi"}, *MSGS], GenParams(), None, InvalidParams),
    (MSGS, GenParams(temperature=5), None, InvalidParams),
    (MSGS, GenParams(max_tokens=0), None, InvalidParams),
    (MSGS, GenParams(), "nope", ModelNotFound),
    (MSGS, GenParams(max_tokens=29), None, ContextOverflow),      # 4 prompt + 29 > 32
])
def test_bad_input_never_reaches_the_backends_stream(messages, params, model, error):
    be = WordBackend()
    with pytest.raises(error):
        be.chat_stream(messages, params, model)
    assert "_stream" not in be.calls


def test_interface_defaults():
    be = WordBackend()
    assert be.is_loaded() and be.load() is None
    assert be.digest("w1") == "sha256:w1" and be.digest("w2") == ""
    report = be.check_context(MSGS, GenParams(max_tokens=30), "w1")
    assert not report.fits and report.prompt_tokens == 4 and report.n_ctx == 32     # a report, not an error
    with pytest.raises(TypeError):
        type("Half", (Backend,), {"name": "half"})()         # a backend must implement the abstract methods


def test_every_shipped_backend_is_a_backend():
    for cls in (EmbeddedBackend, OllamaBackend, OpenAIBackend):
        assert issubclass(cls, Backend)
        assert "chat_stream" not in vars(cls), f"{cls.__name__} must not bypass the shared checks"


def test_no_caller_probes_a_backend_with_hasattr_or_getattr():
    """default_model, load, is_loaded, resolve, digest ... are part of the interface: nobody needs to ask."""
    names = {"default_model", "load", "is_loaded", "resolve", "digest", "check_context", "count_tokens",
             "context_window", "exact_token_count", "render_prompt", "pull", "status", "list_models"}
    offenders = []
    files = [*ROOT.glob("core/**/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("app_pages/*.py"), ROOT / "app.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("hasattr", "getattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
