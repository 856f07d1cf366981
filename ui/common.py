"""Widgets every page uses: backend/model picker, usage metrics, error display. No torch import here."""
from __future__ import annotations

import streamlit as st

from core.config import get_settings
from core.errors import WorkbenchError
from core.llm.base import Usage
from ui.safe import escape_markdown


def page_setup(title: str, icon: str = "🧪") -> None:
    st.set_page_config(page_title=f"{title} · Approach Workbench", page_icon=icon, layout="wide")


@st.cache_resource(show_spinner=False)
def _backend(name: str):
    from core.llm.registry import get_backend
    return get_backend(name)


def get_backend(name: str | None = None):
    """One backend instance per process and name (the embedded model is loaded once and shared under a lock)."""
    return _backend(name or get_settings().backend)


@st.cache_data(ttl=10, show_spinner=False)
def _statuses():
    from core.llm.registry import all_statuses
    return all_statuses()


def backend_statuses():
    """Every backend's status, cached for 10 s so reruns stay fast."""
    return _statuses()


def refresh_statuses() -> None:
    """Forget the cached statuses so the next call probes every backend again."""
    _statuses.clear()


def backend_picker(key_prefix: str, label: str = "Backend / model", container=None) -> tuple[str, str]:
    """Two selectboxes (backend, model) among the reachable backends. Returns (backend_name, model_id)."""
    c = container or st
    statuses = [s for s in backend_statuses() if s.reachable]
    if not statuses:
        c.error("No LLM backend is reachable. The embedded llama.cpp model should always be: run `make run` again.")
        st.stop()
    names = [s.name for s in statuses]
    default = get_settings().backend
    b = c.selectbox(f"{label}: backend", names, index=names.index(default) if default in names else 0,
                    key=f"{key_prefix}_backend")
    models = [m.id for m in next(s for s in statuses if s.name == b).models]
    m = c.selectbox(f"{label}: model", models, key=f"{key_prefix}_model") if models else ""
    return b, m


def show_usage(usage: Usage | None, container=None) -> None:
    """The usage numbers under an answer, the same on every page."""
    if usage is None:
        return
    c = container or st
    cols = c.columns(5)
    cols[0].metric("Prompt tok", usage.prompt_tokens)
    cols[1].metric("Output tok", usage.completion_tokens)
    cols[2].metric("TTFT", f"{usage.ttft_s * 1000:.0f} ms")
    cols[3].metric("Tok/s", f"{usage.tokens_per_s:.1f}")
    cols[4].metric("Latency", f"{usage.latency_s:.2f} s")
    if usage.n_ctx:
        c.progress(min(1.0, usage.context_used), text=f"Context window used: {usage.total_tokens}/{usage.n_ctx} tokens")


def show_error(exc: Exception, container=None) -> None:
    """Typed workbench errors as a clear message; anything else also shows its type so it can be reported.
    Messages quote file names, model output and server replies: escaped, never rendered as Markdown."""
    c = container or st
    if isinstance(exc, WorkbenchError):
        c.error(escape_markdown(str(exc)))
    else:
        c.error(escape_markdown(f"Unexpected error ({type(exc).__name__}): {exc}"))
