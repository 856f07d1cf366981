"""AppTest of app_pages/7_Drill.py: pick the shipped drill, see the change and the CLI line; a custom change without a
document gets a clear message; a real drill started from the page runs as a job and its results are shown."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT

PAGE = str(PROJECT_ROOT / "app_pages" / "7_Drill.py")


def load(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_shipped_drill_is_shown_with_its_change_and_cli_line(data_dir):
    at = load()
    assert at.selectbox(key="dr_name").value == "topup-price"
    codes = [c.value for c in at.code]
    assert any(c.startswith("- <section") and "+ <section class=\"release\" id=\"v4.5.0\">" in c for c in codes)
    assert "python -m core drill topup-price" in codes
    assert any(b.label == "Run the drill" for b in at.button)


def test_a_custom_change_without_a_document_gets_a_clear_message(data_dir):
    at = load()
    at.radio(key="dr_mode").set_value("My own changed document").run()
    at.text_area(key="dr_questions").set_value("How much is a pack?")
    at.text_input(key="dr_new").set_value("€13")
    next(b for b in at.button if b.label == "Use this change").click().run()
    assert not at.exception
    assert any("Upload the changed document first" in w.value for w in at.warning)
    assert not any(b.label == "Run the drill" for b in at.button)


@pytest.mark.slow
def test_a_drill_started_from_the_page_runs_as_a_job_and_shows_what_it_measured(data_dir):
    from core import jobs

    at = load()
    next(b for b in at.button if b.label == "Run the drill").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job_id = at.session_state["dr_job"]
    assert at.query_params["job"] == [job_id] or at.query_params["job"] == job_id
    job = jobs.wait(job_id, "drill", timeout=900)
    assert job.state == "succeeded", (job.error, job.log_tail(30))
    at = load({"job": job_id})
    frames = [df.value for df in at.dataframe]
    per = next(f for f in frames if "new value retrieved" in f.columns)
    rag = per[per["approach"] == "prompt_rag"].iloc[0]
    assert rag["new value retrieved"].startswith("yes, rank") and rag["before"] and rag["after"]
    it = next(f for f in frames if "change" in f.columns)
    assert list(it["change"]) == ["prompt edit", "document change", "retrain"]
