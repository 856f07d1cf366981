"""AppTest of pages/2_Knowledge_Base.py with a real LanceDB folder, the packaged embedder and the embedded GGUF."""
from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT

PAGE = str(PROJECT_ROOT / "pages" / "2_Knowledge_Base.py")
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


def load() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow
def test_first_visit_indexes_sample_and_lists_documents(kb_data):
    at = load()
    assert at.query_params["collection"] == ["support"] or at.query_params["collection"] == "support"
    assert [t.label for t in at.tabs] == ["Documents", "Retrieval playground", "Ask with citations",
                                          "Retrieval evaluation"]
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
    res = at.session_state["kb_last_results"]
    by = {r.file: r for r in res}
    assert by["notes #1.md"].ok and not by["empty.txt"].ok and "damaged" in by["corrupt.pdf"].error
    assert any("1 of 3 files ingested" in w.value for w in at.warning)
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
    assert any("error-codes.txt" in s.replace("\\", "") for s in shown)


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


@pytest.mark.slow
def test_eval_tab_runs_and_charts(kb_data):
    at = load()
    click(at, "Run evaluation")
    rep = at.session_state["kb_eval_runs"][-1]
    assert rep.n_questions >= 40 and set(rep.modes) == {"vector", "fts", "hybrid"}
    assert at.get("plotly_chart")
    assert any(m.label.endswith("MRR") for m in at.metric)
