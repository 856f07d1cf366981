"""Widgets every page uses: backend/model picker, usage metrics, error display. No torch import here."""
from __future__ import annotations


import streamlit as st

from core.config import get_settings
from core.errors import WorkbenchError
from core.llm.base import Usage
from ui import nav
from ui.safe import escape_markdown


def page_setup(page_id: str) -> None:
    """Title, icon and layout of a page, from the one table in ui/nav.py (also right when a test runs the page
    file on its own, without app.py's navigation)."""
    info = nav.page(page_id)
    st.set_page_config(page_title=f"{info.title} · {nav.APP_NAME}", page_icon=info.icon, layout="wide")


def page_title(page_id: str) -> None:
    """The page's heading, under the same icon as its sidebar entry: both from the one table in ui/nav.py."""
    info = nav.page(page_id)
    st.title(f"{info.icon} {info.heading or info.title}")


# ---- session state: page-prefixed keys through ONE helper ----------------------------------------------------
def key(page_id: str, *parts) -> str:
    """The session-state / widget key of `parts` on a page: key("pl", 0, "ref") == "pl_0_ref". Every page-owned
    key goes through here, so two pages never share a key by accident."""
    nav.page(page_id)
    return "_".join([page_id, *(str(p) for p in parts)])


class PageState:
    """st.session_state seen through one page's prefix: for page "pl", S["n"] is st.session_state["pl_n"] and
    S[0, "ref"] is st.session_state["pl_0_ref"]."""

    def __init__(self, page_id: str, defaults: dict | None = None):
        self.page = page_id
        for name, value in (defaults or {}).items():
            st.session_state.setdefault(self._k(name), value)

    def key(self, *parts) -> str:
        return key(self.page, *parts)

    def _k(self, name) -> str:
        return self.key(*name) if isinstance(name, tuple) else self.key(name)

    def __getitem__(self, name):
        return st.session_state[self._k(name)]

    def __setitem__(self, name, value) -> None:
        st.session_state[self._k(name)] = value

    def __contains__(self, name) -> bool:
        return self._k(name) in st.session_state

    def get(self, name, default=None):
        return st.session_state.get(self._k(name), default)

    def pop(self, name, default=None):
        return st.session_state.pop(self._k(name), default)

    def setdefault(self, name, default):
        return st.session_state.setdefault(self._k(name), default)


def state(page_id: str, defaults: dict | None = None) -> PageState:
    """The page's session state (prefixed keys), with `defaults` set where nothing is stored yet."""
    return PageState(page_id, defaults)


def show_text(text: str, container=None, empty: str = "(empty reply)") -> None:
    """Untrusted text (model output) as plain text: never interpreted as Markdown or HTML."""
    (container or st).text(text if text.strip() else empty)


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
    b = c.selectbox(f"{escape_markdown(label)}: backend", names, index=names.index(default) if default in names else 0,
                    key=f"{key_prefix}_backend")
    models = [m.id for m in next(s for s in statuses if s.name == b).models]
    m = c.selectbox(f"{escape_markdown(label)}: model", models, key=f"{key_prefix}_model") if models else ""
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


def md_escape(text) -> str:
    """Text as literal Markdown (no links, emphasis or HTML from document, file or model text): the one
    escaping helper, ui.safe.escape_markdown, under the name the page views use."""
    return escape_markdown(str(text))


class _LazyPandas:
    """pandas imported on first use (~0.5-0.9 s with numpy): a first render that shows no table never pays for it.
    `from ui.common import lazy_pandas as pd`, then `pd.DataFrame(...)` as usual."""

    def __getattr__(self, name):
        import pandas

        return getattr(pandas, name)


lazy_pandas = _LazyPandas()
