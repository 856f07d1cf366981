"""The one interface every LLM backend implements (`Backend`, a base class). The UI and the other core packages only
see this.

A chat is a stream: iterate a `ChatStream` for text deltas; when it is exhausted, `stream.usage` holds the
measured `Usage`. `Backend.chat(...)` is the non-streaming convenience that returns a `ChatResult`.
"""
from __future__ import annotations

import math
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

from core.errors import EmptyPrompt, InvalidParams
from core.llm.context import ContextReport, ensure_fits, make_report

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass
class GenParams:
    temperature: float = 0.2
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int | None = 42
    stop: list[str] = field(default_factory=list)
    json_schema: dict | None = None        # structured output: the reply must match this JSON schema
    num_ctx: int | None = None             # context window to ask for (Ollama num_ctx); None = backend default
    keep_alive: str | None = None          # Ollama keep_alive, e.g. "5m"
    repeat_penalty: float | None = None    # llama.cpp / Ollama repetition penalty (1.0 = off); None = backend default

    def validate(self) -> "GenParams":
        """Raise InvalidParams with a message that names the bad field and its allowed range."""
        checks = [
            ("temperature", self.temperature, 0.0, 2.0),
            ("top_p", self.top_p, 0.0, 1.0),
            ("max_tokens", self.max_tokens, 1, 32768),
        ]
        for name, val, lo, hi in checks:
            if not isinstance(val, (int, float)) or isinstance(val, bool) or math.isnan(float(val)) or not lo <= val <= hi:
                raise InvalidParams(f"{name} must be between {lo} and {hi} (got {val!r}).")
        if self.repeat_penalty is not None and (isinstance(self.repeat_penalty, bool) or not isinstance(
                self.repeat_penalty, (int, float)) or not 0.5 <= float(self.repeat_penalty) <= 2.0):
            raise InvalidParams(f"repeat_penalty must be between 0.5 and 2.0 (got {self.repeat_penalty!r}).")
        if self.num_ctx is not None and not (128 <= int(self.num_ctx) <= 1_048_576):
            raise InvalidParams(f"num_ctx must be between 128 and 1048576 (got {self.num_ctx!r}).")
        if self.seed is not None and not isinstance(self.seed, int):
            raise InvalidParams(f"seed must be an integer (got {self.seed!r}).")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise InvalidParams("stop sequences must be non-empty strings.")
        if self.json_schema is not None and not isinstance(self.json_schema, dict):
            raise InvalidParams("json_schema must be a JSON object (a dict).")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "GenParams":
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Usage:
    """What one generation cost and how fast it was. Times in seconds."""
    backend: str
    model: str
    digest: str = ""                 # model file hash / Ollama digest, so a run can be reproduced exactly
    adapter: str = ""                # LoRA adapter id used, if any
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float = 0.0              # time to first token
    latency_s: float = 0.0           # total wall time
    tokens_per_s: float = 0.0        # completion tokens / generation time after the first token
    n_ctx: int = 0                   # context window the request ran with
    finish_reason: str = ""          # "stop" | "length" | ...
    load_s: float = 0.0              # model load time paid by this request (first call only; 0 afterwards)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def context_used(self) -> float:
        return (self.total_tokens / self.n_ctx) if self.n_ctx else 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChatResult:
    text: str
    usage: Usage


@dataclass
class ModelInfo:
    id: str                          # what to pass as `model=`
    backend: str
    description: str = ""
    digest: str = ""
    n_ctx: int = 0
    size_bytes: int = 0
    adapter: str = ""                # non-empty for fine-tuned adapters (embedded: "ft:<name>")
    base_model: str = ""


@dataclass
class BackendStatus:
    name: str
    reachable: bool
    reason: str = ""                 # why not reachable, and what to do about it
    models: list[ModelInfo] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class ChatStream:
    """Iterate for text deltas; `usage` is set once the stream is exhausted. Safe to pass to st.write_stream."""

    def __init__(self, deltas: Iterator[str], finish: Callable[[], Usage]):
        self._deltas = deltas
        self._finish = finish
        self.usage: Usage | None = None
        self.text = ""

    def __iter__(self) -> Iterator[str]:
        if self.usage is not None:       # already consumed: iterating again yields nothing
            return
        try:
            for delta in self._deltas:
                self.text += delta
                yield delta
        finally:
            # an abandoned stream (closed tab, rerun) must release the backend (model lock, HTTP response)
            self.close()
        self.usage = self._finish()

    def close(self) -> None:
        """Stop generating and free the backend; safe to call twice."""
        close = getattr(self._deltas, "close", None)
        if close is not None:
            close()

    def result(self) -> ChatResult:
        """Consume what is left and return the whole text with its usage."""
        for _ in self:
            pass
        assert self.usage is not None
        return ChatResult(self.text, self.usage)


class Backend(ABC):
    """The one interface every LLM backend implements: subclass it and fill in the abstract methods.

    `chat_stream` is not overridden: it runs the shared checks once - params in range, messages well formed, the
    model id resolved, prompt + max_tokens within the context window (ContextOverflow instead of a silent
    truncation) - and only then calls the backend's own streaming step `_stream`. Everything a caller may need is
    part of the interface (no probing with hasattr): `default_model`, `resolve`, `load`, `is_loaded`, `digest`.
    """

    name: str = ""
    exact_token_count: bool = True      # False: count_tokens is an estimate (no tokenizer endpoint)
    # True: a server that answers several requests at once (Ollama, vLLM, ...), so a batch run may keep several in
    # flight; False: one in-process model behind a lock (embedded llama.cpp), requests take turns.
    serves_concurrently: bool = False

    # ---- each backend's own part ------------------------------------------------------------------------------
    @abstractmethod
    def status(self) -> BackendStatus:
        """Reachable or not (never raises, answers within ~1 s), why, and the models it offers."""

    @abstractmethod
    def list_models(self) -> list[ModelInfo]:
        """Models this backend can run now. Raises BackendUnavailable when it cannot be reached."""

    @abstractmethod
    def default_model(self) -> str:
        """The model used when none is named. Raises ModelNotFound / BackendUnavailable if there is none."""

    @abstractmethod
    def count_tokens(self, messages: list[Message], model: str | None = None) -> int:
        """Prompt tokens of these messages once the chat template is applied (exact where the backend can)."""

    @abstractmethod
    def context_window(self, model: str | None = None, params: GenParams | None = None) -> int:
        """The context window in tokens the model runs with (for these params, e.g. Ollama's num_ctx)."""

    @abstractmethod
    def _stream(self, messages: list[Message], params: GenParams, model: str, report: ContextReport) -> ChatStream:
        """Start streaming. Called by chat_stream only, after the shared checks; `model` is resolved, `params`
        validated and `report` holds the prompt tokens and context window that were checked."""

    # ---- shared, with defaults a backend may refine -----------------------------------------------------------
    def resolve(self, model: str | None = None) -> str:
        """The model id a request will use: the given one, else the default."""
        return (model or "").strip() or self.default_model()

    def load(self, model: str | None = None) -> object:
        """Make the model ready to answer and return the backend's handle for it (embedded: the loaded llama.cpp
        model). Servers load on their own: nothing to do, None."""
        return None

    def is_loaded(self, model: str | None = None) -> bool:
        """False when the first request would have to load the model first (worth a spinner)."""
        return True

    def digest(self, model: str | None = None) -> str:
        """A content hash of the model (so a result can be reproduced), "" when the backend has none."""
        model_id = self.resolve(model)
        for m in self.list_models():
            if m.id == model_id or m.id == f"{model_id}:latest":
                return m.digest or ""
        return ""

    def check_context(self, messages: list[Message], params: GenParams | None = None,
                      model: str | None = None) -> ContextReport:
        """Prompt tokens (the backend's own count) + max_tokens against the context window; never raises for
        an overflow (the report says it does not fit)."""
        params = params or GenParams()
        prompt_tokens = int(self.count_tokens(messages, model))
        n_ctx = int(self.context_window(model, params))
        return make_report(prompt_tokens, params.max_tokens, n_ctx, self.exact_token_count, model or "")

    def chat_stream(self, messages: list[Message], params: GenParams | None = None,
                    model: str | None = None) -> ChatStream:
        """Stream a chat reply. Raises before streaming on bad input: EmptyPrompt, InvalidParams,
        ModelNotFound, BackendUnavailable, ContextOverflow (prompt + max_tokens > context window)."""
        params = (params or GenParams()).validate()
        check_messages(messages)
        model_id = self.resolve(model)
        report = ensure_fits(self.check_context(messages, params, model_id))
        return self._stream(messages, params, model_id, report)

    def chat(self, messages: list[Message], params: GenParams | None = None, model: str | None = None) -> ChatResult:
        """Non-streaming: the whole reply and its usage."""
        return self.chat_stream(messages, params, model).result()


def check_messages(messages: list[Message]) -> None:
    """Shared input check for every backend."""
    if not messages or not any((m.get("content") or "").strip() for m in messages if m.get("role") == "user"):
        raise EmptyPrompt("The prompt is empty: write a question or a user message first.")
    for m in messages:
        if m.get("role") not in ("system", "user", "assistant"):
            raise InvalidParams(f"Unknown message role {m.get('role')!r}: use system, user or assistant.")


def connect_error(url: str, timeout: float = 1.0) -> OSError | ValueError | None:
    """Why a TCP connection to the url's host and port fails (refused, unknown host, timed out), or None when
    something accepts it. Status probes call this first, so a machine without a server answers "unavailable"
    without importing the HTTP clients (httpx + ollama cost ~0.5 s of the app's first render)."""
    from urllib.parse import urlsplit
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        return exc
    return None


class Timer:
    """Measures ttft / latency / tokens-per-second the same way for every backend."""

    def __init__(self):
        self.start = time.perf_counter()
        self.first: float | None = None
        self.end: float | None = None

    def mark_token(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def stop(self) -> None:
        self.end = time.perf_counter()

    def fill(self, usage: Usage) -> Usage:
        end = self.end or time.perf_counter()
        first = self.first or end
        usage.ttft_s = first - self.start
        usage.latency_s = end - self.start
        gen_time = end - first
        if usage.completion_tokens > 1 and gen_time > 0:
            usage.tokens_per_s = (usage.completion_tokens - 1) / gen_time
        elif usage.latency_s > 0:
            usage.tokens_per_s = usage.completion_tokens / usage.latency_s
        return usage
