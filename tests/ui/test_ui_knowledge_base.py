"""AppTest of app_pages/2_Knowledge_Base.py with a real LanceDB folder, the packaged embedder and the embedded GGUF."""
from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from core.rag import jobs

PAGE = str(PROJECT_ROOT / "app_pages" / "2_Knowledge_Base.py")
BAD = PROJECT_ROOT / "tests" / "fixtures" / "bad"


@pytest.fixture(scope="module")
def kb_data(tmp_path_factory):
    """One data folder for the module: the first page run indexes the sample collection (~10-30 s)."""
    d = tmp_path_factory.mktemp("kb-ui")
    old = os.environ.get("WORKBENCH_DATA")
    os.environ["WORKBENCH_DATA"] = str(d)
    yield d
    if old is None:
        os.environ.pop("WORKBENCH_DATA", None)
    else:
        os.environ["WORKBENCH_DATA"] = old


def settle(at: AppTest, timeout: float = 300) -> AppTest:
    """Wait for the page's ingest jobs (worker processes) to finish, then rerun the page as the live fragment does."""
    for job in jobs.active_jobs():
        jobs.wait(job.id, timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def load() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return settle(at) if jobs.active_jobs() else at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow
def test_first_visit_starts_the_sample_job_and_lists_documents(kb_data):
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # the first render only started a worker process: the job's live progress is shown
    job_id = at.session_state["kb_job"]
    assert [j.id for j in jobs.active_jobs()] == [job_id]
    assert jobs.read_job(job_id).collection == "support"
    heads = [m.value for m in at.markdown]
    assert any(h.startswith("**Ingest of sample documents into “support”**") for h in heads), heads
    bars = [p.proto.text for p in at.get("progress")]
    assert bars[0].startswith("Overall: ") and any("plans\\-and\\-limits" in b for b in bars), bars[:3]
    # a second session (another tab, or a refresh) finds the running job instead of starting another one
    other = AppTest.from_file(PAGE, default_timeout=300)
    other.run()
    assert not other.exception
    assert [j.id for j in jobs.active_jobs()] == [job_id]
    assert any(m.value.startswith("**Ingest of sample documents") for m in other.markdown)

    at = settle(at)
    assert at.query_params["collection"] == ["support"] or at.query_params["collection"] == "support"
    assert [t.label for t in at.tabs] == ["Documents", "Retrieval playground", "Ask with citations",
                                          "Retrieval evaluation"]
    job = jobs.read_job(job_id)
    assert job.state == "succeeded" and job.ok == len(job.files) >= 5
    assert any(s.value == f"{job.ok} of {job.ok} files ingested." for s in at.success)
    docs = at.dataframe[-1].value
    assert "plans-and-limits.md" in set(docs["document"]) and (docs["chunks"] > 0).all()
    assert at.selectbox(key="kb_browse_doc").value
    assert any("Chunk 0" in e.label for e in at.expander)


@pytest.mark.slow
def test_upload_good_and_bad_files(kb_data):
    at = load()
    up = at.get("file_uploader")[0]
    up.upload("notes #1.md", b"# Notes\n\nThe harbour office cat is called Biscuit.\n", "text/markdown")
    up.upload("empty.txt", b"", "text/plain")
    up.upload("corrupt.pdf", (BAD / "corrupt.pdf").read_bytes(), "application/pdf")
    click(at, "Ingest files")
    job_id = at.session_state["kb_job"]
    assert any(m.value.startswith("**Ingest of 3 uploaded files") for m in at.markdown)
    at = settle(at)
    by = {f["name"]: f["result"] for f in jobs.read_job(job_id).files}
    assert by["notes #1.md"]["ok"] and not by["empty.txt"]["ok"] and "damaged" in by["corrupt.pdf"]["error"]
    assert any("1 of 3 files ingested" in w.value for w in at.warning)
    results = at.dataframe[0].value           # the per-file results table
    assert list(results["status"]) == ["ok", "error", "error"]
    docs = at.dataframe[-1].value
    assert "notes #1.md" in set(docs["document"])


@pytest.mark.slow
def test_playground_shows_three_modes(kb_data):
    at = load()
    at.text_input(key="kb_query").set_value("What does error TW-4020 mean?")
    click(at, "Search")
    res = at.session_state["kb_search"]
    assert set(res) == {"vector", "fts", "hybrid"}
    shown = [m.value for m in at.markdown]
    assert any(s.startswith("**Vector (meaning)**") for s in shown)
    from core.safe_text import unescape_markdown       # file names are escaped for Markdown (issue 14)
    assert any("error-codes.txt" in unescape_markdown(s) for s in shown)


@pytest.mark.slow
def test_ask_shows_cited_answer_and_version(kb_data):
    at = load()
    at.text_area(key="kb_question").set_value("How much does an SMS top-up pack cost?")
    click(at, "Answer")
    res = at.session_state["kb_answer"]
    assert res.text.strip() and res.usage.completion_tokens > 0
    caps = " ".join(c.value for c in at.caption)
    assert f"Read table version {res.table_version}" in caps
    heads = [h.value for h in at.subheader]
    assert any(h.startswith("[1] ") for h in heads)
    if not res.citations.ok:
        assert at.warning
    # the embedded model's profile: which sentences went into the prompt (as plain text) and the profile used
    texts = [t.value for t in at.text]
    assert res.context_selected and res.profile["name"] == "embedded"
    assert any(t.startswith("Context: embedded profile · k=4 retrieved · selected sentences") for t in texts)
    shown = [s for sn in res.snippets for s in sn.sentences]
    assert shown and all(f"• {s}" in texts for s in shown)
    assert len([h for h in heads if h.startswith("[")]) == len(res.prompt_chunks)


@pytest.mark.slow
def test_eval_tab_runs_and_charts(kb_data):
    at = load()
    click(at, "Run evaluation")
    rep = at.session_state["kb_eval_runs"][-1]
    assert rep.n_questions >= 40 and set(rep.modes) == {"vector", "fts", "hybrid"}
    assert at.get("plotly_chart")
    assert any(m.label.endswith("MRR") for m in at.metric)


@pytest.mark.slow
def test_a_folder_or_question_file_outside_the_roots_is_refused(kb_data):
    """Paths typed in the UI must resolve under WORKBENCH_PATH_ROOTS (issue 14): "/" is never walked, /etc/passwd
    is never read, and the page says why."""
    at = load()
    before = len(jobs.list_jobs(None, limit=100))
    at.text_input(key="kb_folder").set_value("/")
    click(at, "Ingest folder")
    assert any("outside" in e.value.lower() or "root" in e.value.lower() for e in at.error), \
        [e.value for e in at.error]
    assert len(jobs.list_jobs(None, limit=100)) == before                      # no job was started
    at.text_input(key="kb_eval_path").set_value("/etc/passwd")
    click(at, "Run evaluation")
    assert any("outside" in e.value.lower() or "root" in e.value.lower() for e in at.error)
