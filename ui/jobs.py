"""One Streamlit panel that shows any job (ingest, training, comparison, parity check, export): state, progress,
per-item lines, the kind's own details, the log tail, a cancel button and the CLI lines that do the same.

It only reads the run folder through core.jobs, so a refresh, a second tab or an app restart shows the same job.
While the job is queued or running the panel is a fragment that re-reads it every `poll_s` seconds; when the job
ends it reruns the page once (results, lists) and stays static. Untrusted text (file names, messages, errors,
log lines) is escaped or shown as code, never rendered as Markdown.
"""
from __future__ import annotations

import time
from typing import Callable

import streamlit as st

from core import jobs
from core.errors import WorkbenchError
from core.jobs.cli import cli_lines
from core.jobs.states import ICONS
from ui.common import md_escape, show_error

MAX_ITEMS = 30


def ago(ts: float | None) -> str:
    if not ts:
        return ""
    s = max(0.0, time.time() - ts)
    return f"{s:.0f} s ago" if s < 90 else (f"{s / 60:.0f} min ago" if s < 5400 else
                                           time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)))


def _default_item_line(item: dict) -> str:
    text = md_escape(item.get("name", ""))
    stage = item.get("stage") or item.get("state") or ""
    msg = item.get("message") or item.get("detail") or ""
    return text + (f" — {md_escape(stage)}" if stage else "") + (f" ({md_escape(msg)})" if msg else "")


def render(job: jobs.Job, *, key: str, title: str | None = None, live: bool = False,
           item_line: Callable[[dict], str] | None = None, progress_text: Callable[[jobs.Job], str] | None = None,
           details: Callable[[jobs.Job, bool], None] | None = None, outcome: Callable[[jobs.Job], None] | None = None,
           cancel_label: str = "Cancel", cancel_help: str | None = None, show_log: bool = True,
           progress_done: bool = False, show_items: bool = True) -> None:
    """The panel for one job, from what its run folder says right now. `title`, `cancel_label`, `cancel_help`
    and the strings `item_line` / `progress_text` return are Markdown: escape untrusted parts (ui.safe.md)."""
    kind = jobs.get_kind(job.kind)
    heading = title or md_escape(job.name)
    head = st.columns([4, 1])
    when = f" · {job.seconds:.0f} s" if job.started and job.active else ""
    head[0].markdown(f"**{heading}** · {ICONS.get(job.state, '')} {md_escape(job.state)}{when}")
    if job.active:
        if job.cancel_requested:
            head[1].caption("Cancelling…")
            st.caption(f"Cancel requested: the job stops at its next safe point, or is stopped after "
                       f"{kind.cancel_grace_s:.0f} s.")
        elif head[1].button(cancel_label, key=f"{key}_cancel_{job.id}", help=cancel_help or
                            "Stops at the next safe point; the process is killed if it does not stop in time."):
            try:
                jobs.cancel(job.id, wait=False)
            except WorkbenchError as exc:
                show_error(exc)
            st.rerun(scope="app")
        if job.held:
            st.caption("Created, not started yet.")
        elif job.state == "queued":
            st.caption(md_escape(job.message or "waiting for its turn"))
    text = progress_text(job) if progress_text else (f"{job.progress * 100:.0f}% · {md_escape(job.message)}"
                                                     if job.message else f"{job.progress * 100:.0f}%")
    if job.active or progress_done:
        st.progress(job.progress, text=text)
    if job.active and job.items and show_items:
        line = item_line or _default_item_line
        for item in job.items[:MAX_ITEMS]:
            try:
                frac = min(1.0, max(0.0, float(item.get("fraction") or 0.0)))
            except (TypeError, ValueError):
                frac = 0.0
            st.progress(frac, text=line(item))
        if len(job.items) > MAX_ITEMS:
            st.caption(f"…and {len(job.items) - MAX_ITEMS} more.")
    if details:
        details(job, live)
    if outcome:
        outcome(job)
    elif job.state == "failed":
        st.error(f"The job failed: {md_escape(job.error)}")
    elif job.state == "interrupted":
        st.warning(md_escape(job.error or job.message))
    elif job.state == "cancelled":
        st.warning(f"Cancelled {ago(job.finished)}: {md_escape(job.message)}")
    if job.active:
        st.caption(f"Job {job.id} runs in its own process: refreshing or closing this tab does not stop it.")
    if show_log:
        with st.expander("Log (last lines)", expanded=job.state in ("failed", "interrupted")):
            st.code("\n".join(job.log_tail(25)) or "(empty)", language=None)
    st.caption("The same from a terminal:")
    st.code(cli_lines(job.id), language="bash")


def _live(job_id: str, opts: dict, on_end: Callable[[jobs.Job], None] | None) -> None:
    try:
        job = jobs.read(job_id)
    except WorkbenchError as exc:
        show_error(exc)
        return
    render(job, live=True, **opts)
    if not job.active:
        if on_end:
            on_end(job)
        st.rerun(scope="app")              # once: the page shows the results; the panel is static from now on


def job_panel(job_id: str | None, *, key: str, poll_s: float = 1.5, on_end: Callable[[jobs.Job], None] | None = None,
              **opts) -> jobs.Job | None:
    """Show one job: live while it is queued or running, static once it has ended. Returns the job read."""
    if not job_id:
        return None
    try:
        job = jobs.read(job_id)
    except WorkbenchError as exc:
        show_error(exc)
        return None
    opts["key"] = key
    if job.active:
        st.fragment(run_every=poll_s)(_live)(job_id, opts, on_end)
    else:
        render(job, **opts)
    return job


def start_next_button(kind: str, key: str) -> None:
    """For a kind with a queue: offer to start the next queued job when none runs (reading never starts one)."""
    waiting = jobs.queued_waiting(kind)
    if waiting and not any(j.state == "running" or j.alive for j in jobs.list_jobs(kind)):
        st.info(f"{len(waiting)} queued job(s) wait, and none is running (the last one ended without starting the "
                "next, e.g. after a crash).")
        if st.button("Start the next queued job", key=f"{key}_start_next"):
            try:
                jobs.reconcile(kind)
            except WorkbenchError as exc:
                show_error(exc)
            st.rerun()
