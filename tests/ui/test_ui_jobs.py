"""AppTest of the one job panel (ui/jobs.py) on real jobs of small test kinds run by real worker processes."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs
from core.jobs import Kind

KINDS = [Kind("ui-loop", "tests.jobs.kinds:until_cancelled", title="loop", cancel_grace_s=30.0),
         Kind("ui-fail", "tests.jobs.kinds:fail", title="failing")]


@pytest.fixture(autouse=True)
def kinds(data_dir):
    for k in KINDS:
        jobs.register(k)
    yield
    for j in jobs.list_jobs(reconcile=False):
        if j.alive:
            jobs.cancel(j.id, grace_s=0, timeout=15)
    for k in KINDS:
        jobs.unregister(k.name)


def _panel_script():
    import streamlit as st

    from ui.jobs import job_panel

    job_panel(st.session_state["job_id"], key="t", poll_s=0.5)


def _app(job_id: str) -> AppTest:
    at = AppTest.from_function(_panel_script, default_timeout=60)
    at.session_state["job_id"] = job_id
    return at.run()


def _wait(pred, timeout=90.0):          # a worker process may take long to start on a loaded 2-core machine
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_panel_shows_a_running_job_and_its_cancel_button_cancels_it(data_dir):
    job = jobs.create("ui-loop", {}, name="a <b>loop</b>")
    _wait(lambda: jobs.read(job.id).message.startswith("step"))
    at = _app(job.id)
    assert not at.exception
    head = at.markdown[0].value
    from core.safe_text import escape_markdown
    assert head.startswith(f"**{escape_markdown('a <b>loop</b>')}**") and "<b>" not in head   # names are escaped
    assert "running" in head
    assert at.get("progress")[0].proto.text.startswith("0% · step")
    codes = [c.value for c in at.code]
    assert f"python -m core jobs cancel {job.id}" in "\n".join(codes)
    at.button(key=f"t_cancel_{job.id}").click().run()
    assert not at.exception
    _wait(lambda: jobs.read(job.id).state == "cancelled")
    at.run()
    assert any("Cancelled" in w.value for w in at.warning)
    assert not at.get("button")                                                      # nothing to cancel


def test_panel_shows_why_a_job_failed_with_its_log(data_dir):
    job = jobs.wait(jobs.create("ui-fail", {}).id, timeout=60)
    at = _app(job.id)
    assert not at.exception
    assert any("the input is wrong" in e.value for e in at.error)
    assert any(e.label == "Log (last lines)" for e in at.expander)
    assert any("failed: the input is wrong" in c.value for c in at.code)
