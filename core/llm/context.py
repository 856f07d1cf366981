"""Context-window checks: count the prompt before generating and refuse (or warn) instead of silently truncating.

`check_context(backend, messages, params, model)` returns a `ContextReport` the UI can show as a warning;
`Backend.chat_stream` calls `ensure_fits` before it streams, which raises `ContextOverflow`. (No import of
core.llm.base here: the base class builds on this module.)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from core.errors import ContextOverflow

if TYPE_CHECKING:
    from core.llm.base import Backend, GenParams, Message

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


def estimate_tokens(messages: list["Message"]) -> int:
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


def check_context(backend: "Backend", messages: list["Message"], params: "GenParams | None" = None,
                  model: str | None = None) -> ContextReport:
    """Count the prompt with the backend's own tokenizer (or its estimate) against its context window."""
    return backend.check_context(messages, params, model)
