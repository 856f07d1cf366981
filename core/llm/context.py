"""Context-window checks: count the prompt before generating and refuse (or warn) instead of silently truncating.

`check_context(backend, messages, params, model)` returns a `ContextReport` the UI can show as a warning;
backends call `ensure_fits` before they stream, which raises `ContextOverflow`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from core.errors import ContextOverflow
from core.llm.base import GenParams, Message

WARN_RATIO = 0.85          # warn when prompt + max_tokens uses more than this share of the window
CHARS_PER_TOKEN = 3.5      # estimate for backends without a tokenizer endpoint (English text ~4 chars/token)
PER_MESSAGE_OVERHEAD = 4   # role markers of a chat template


@dataclass
class ContextReport:
    prompt_tokens: int
    max_tokens: int
    n_ctx: int
    fits: bool
    ratio: float            # (prompt + max_tokens) / n_ctx
    exact: bool = True      # False when prompt_tokens is an estimate (Ollama, OpenAI-compatible servers)
    model: str = ""

    @property
    def warn(self) -> bool:
        return not self.fits or self.ratio >= WARN_RATIO

    def message(self) -> str:
        approx = "" if self.exact else "about "
        head = (f"The prompt is {approx}{self.prompt_tokens} tokens + {self.max_tokens} for the answer = "
                f"{self.ratio:.0%} of the {self.n_ctx}-token context window")
        if not self.fits:
            return head + ": it does not fit. Shorten the prompt or the retrieved context, or lower max_tokens."
        if self.warn:
            return head + ": close to the limit; a longer context would not fit."
        return head + "."

    def to_dict(self) -> dict:
        d = asdict(self)
        d["warn"] = self.warn
        return d


def estimate_tokens(messages: list[Message]) -> int:
    """A tokenizer-free estimate (used where the backend offers no tokenizer)."""
    chars = sum(len(m.get("content") or "") for m in messages)
    return int(math.ceil(chars / CHARS_PER_TOKEN)) + PER_MESSAGE_OVERHEAD * len(messages) + 3


def make_report(prompt_tokens: int, max_tokens: int, n_ctx: int, exact: bool = True, model: str = "") -> ContextReport:
    total = prompt_tokens + max_tokens
    return ContextReport(prompt_tokens=prompt_tokens, max_tokens=max_tokens, n_ctx=n_ctx,
                         fits=total <= n_ctx if n_ctx else True, ratio=(total / n_ctx) if n_ctx else 0.0,
                         exact=exact, model=model)


def ensure_fits(report: ContextReport) -> ContextReport:
    if not report.fits:
        raise ContextOverflow(report.prompt_tokens, report.max_tokens, report.n_ctx, report.model)
    return report


def check_context(backend, messages: list[Message], params: GenParams | None = None,
                  model: str | None = None) -> ContextReport:
    """Count the prompt with the backend's own tokenizer (or an estimate) against its context window."""
    params = params or GenParams()
    n_ctx = backend.context_window(model, params) if _takes_params(backend) else backend.context_window(model)
    prompt_tokens = backend.count_tokens(messages, model)
    exact = bool(getattr(backend, "exact_token_count", True))
    return make_report(prompt_tokens, params.max_tokens, n_ctx, exact, model or "")


def _takes_params(backend) -> bool:
    import inspect
    try:
        return "params" in inspect.signature(backend.context_window).parameters
    except (TypeError, ValueError):
        return False
