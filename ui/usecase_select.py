"""The selected use case, the same on every page: one sidebar selectbox bound to `?usecase=NAME` (a shareable link),
default the bundled demo (`tidewave`). Pages call `sidebar()` and read what it returns
(core.usecase.workspace.PageInputs: collection, prompt set, training dataset, question set, checks).

The choice is kept in the session ("uc_selected"), so it survives moving to a page that has no selector (Home,
Advisor) and back; a link's `?usecase=` decides on the first page of a session. An unknown name in the URL falls back
to the demo with a note. No torch import.
"""
from __future__ import annotations

import streamlit as st

from core.errors import WorkbenchError
from ui.common import key, show_error
from ui.safe import escape_markdown

QUERY = "usecase"
STORE = key("uc", "selected")      # the session's choice (not a widget key: kept while another page is shown)
WIDGET = key("uc", "name")         # the sidebar selectbox
NEXT = key("uc", "select_next")    # set by the Use Case page after creating/copying one: select it on the next run


def _names():
    from core.usecase import workspace

    return workspace.list_usecases()


def _on_change() -> None:
    st.session_state[STORE] = st.session_state[WIDGET]
    st.query_params[QUERY] = st.session_state[WIDGET]


def current_name(names: list[str]) -> str:
    """The selected name among `names`: a just-created one, else the session's, else the URL's, else the demo."""
    from core.usecase.workspace import BUILTIN

    ss = st.session_state
    nxt = ss.pop(NEXT, None)
    if nxt in names:
        ss[STORE] = nxt
    elif ss.get(STORE) not in names:
        q = st.query_params.get(QUERY)
        if q and q not in names:
            st.sidebar.warning(f"No use case named “{escape_markdown(q[:40])}”: showing the demo.")
        ss[STORE] = q if q in names else (BUILTIN if BUILTIN in names else names[0])
    return ss[STORE]


def select(container=None):
    """Draw the selectbox (in `container`, default the sidebar) and return the selected workspace.UseCase."""
    c = container or st.sidebar
    ucs = _names()
    names = [u.name for u in ucs]
    name = current_name(names)
    # always (not only when it differs): after a page switch the widget is a new one on the new page, and the
    # state left by the old page's widget would not reach it
    st.session_state[WIDGET] = name
    labels = {u.name: f"{u.name} — {u.title}" + (" (read-only demo)" if u.read_only else "") for u in ucs}
    c.selectbox("Use case", names, key=WIDGET, format_func=lambda n: labels.get(n, n), on_change=_on_change,
                help="Collection, prompts, training data, question set and checks of every page come from the "
                     "selected use case. Create your own on the Use Case page.")
    if st.query_params.get(QUERY) != name:
        st.query_params[QUERY] = name
    return next(u for u in ucs if u.name == name)


def sidebar():
    """The selector in the sidebar; returns what the pages use (workspace.PageInputs). A use case whose files no
    longer parse shows its error and falls back to the demo."""
    from core.usecase import workspace

    uc = select()
    try:
        return workspace.page_inputs(uc.name)
    except WorkbenchError as exc:
        show_error(exc, st.sidebar)
        return workspace.page_inputs(workspace.BUILTIN)


def current():
    """The session's selected use case as workspace.PageInputs, without drawing anything (for views and
    callbacks; the page drew the selector with `sidebar()` first). The demo when nothing valid is selected."""
    from core.usecase import workspace

    try:
        return workspace.page_inputs(st.session_state.get(STORE) or workspace.BUILTIN)
    except WorkbenchError:
        return workspace.page_inputs(workspace.BUILTIN)
