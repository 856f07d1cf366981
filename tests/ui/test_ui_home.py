"""The home page through Streamlit's AppTest: status cards, help when Ollama is absent, quick generate."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.safe_text import unescape_markdown

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def app(data_dir, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("WORKBENCH_BACKEND", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def texts(at) -> str:
    """Element bodies as written and as the reader sees them (untrusted parts are Markdown-escaped)."""
    raw = "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])
    return raw + "\n" + unescape_markdown(raw)


def test_status_cards_and_help(app):
    t = texts(app)
    assert ":green[● embedded]" in t and ":red[● ollama]" in t and ":red[● openai]" in t
    assert "smollm2-135m-instruct" in t
    assert "ollama serve" in t and "OPENAI_BASE_URL" in t                 # what to do about the red ones
    assert "Tidewave" in t and "sample_docs/knowledge/" in t              # the quick tour
    assert app.selectbox(key="home_backend").options == ["embedded"]      # only reachable backends are offered
    assert app.selectbox(key="home_model").value == "smollm2-135m-instruct"


def test_empty_prompt_is_a_clear_message(app):
    app.button(key="FormSubmitter:home_generate-Generate").click().run()
    assert not app.exception
    assert any("empty" in e.value for e in app.error)


@pytest.mark.slow
def test_quick_generate_streams_and_shows_usage(app):
    app.text_area(key="home_prompt").input("What is the capital of France?")
    app.number_input(key="home_max_tokens").set_value(24)
    app.button(key="FormSubmitter:home_generate-Generate").click().run()
    assert not app.exception and not app.error
    metrics = {m.label: m.value for m in app.metric}
    assert int(metrics["Output tok"]) > 0 and int(metrics["Prompt tok"]) > 10
    assert metrics["TTFT"].endswith("ms") and float(metrics["Tok/s"]) > 0
    answer = app.session_state["home_last"]["text"]
    assert answer.strip()
    # a rerun (any other widget) keeps the answer on screen
    app.run()
    assert any(t.value == answer for t in app.text)      # model output is plain text, never Markdown
    assert {m.label for m in app.metric} >= {"Prompt tok", "Output tok", "TTFT", "Tok/s", "Latency"}


def test_no_pages_folder_beside_app_py():
    """A `pages/` folder next to app.py keeps a fresh server in Streamlit's old multipage mode until a session has
    called st.navigation: a first visit by deep link would run the page file without app.py (generic sidebar, no
    icons, an "app" entry). The page files live in app_pages/ (the browser side: test_ui_home_browser.py)."""
    from ui import nav

    root = Path(APP).parent
    assert not (root / "pages").exists()
    assert all((root / p.script).is_file() for p in nav.PAGES if p.script)


def test_navigation_names_every_page_once_and_home_first(app):
    """st.navigation from the one table in ui/nav.py: the sidebar says "Home" (not "app"), then the pages, at the
    URLs the browser tests open (/Prompt_Lab, /Knowledge_Base, /Fine_Tune, /Compare, /Advisor, /Use_Case, /Drill)."""
    from ui import nav

    pages = list(app._registered_pages.values())         # what st.navigation registered (AppTest's own record)
    assert [(p["page_name"], p["icon"], p["url_pathname"]) for p in pages] == \
        [("Home", ":material/science:", ""), ("Prompt Lab", ":material/edit_note:", "Prompt_Lab"),
         ("Knowledge Base", ":material/library_books:", "Knowledge_Base"),
         ("Fine-Tune", ":material/tune:", "Fine_Tune"), ("Compare", ":material/balance:", "Compare"),
         ("Advisor", ":material/explore:", "Advisor"),
         ("Use Case", ":material/folder_open:", "Use_Case"), ("Drill", ":material/autorenew:", "Drill")]
    assert [p.title for p in nav.PAGES] == [p["page_name"] for p in pages]
    assert app.title[0].value == ":material/science: Approach Workbench"
    links = sorted(link.proto.label for link in app.get("page_link"))     # two columns of links
    assert links == ["Advisor", "Compare", "Drill", "Fine-Tune", "Knowledge Base", "Prompt Lab", "Use Case"]
    app.switch_page("app_pages/1_Prompt_Lab.py").run()       # a page runs inside the navigation, under its title
    assert not app.exception and app.title[0].value == ":material/edit_note: Prompt Lab"
    assert app.session_state["pl_n"] == 3


def test_page_keys_go_through_one_helper():
    from ui.common import key
    assert key("pl", 0, "ref") == "pl_0_ref" and key("home", "prompt") == "home_prompt" and key("kb") == "kb"
    with pytest.raises(KeyError, match="Unknown page id"):
        key("nope", "x")


def test_embedded_card_shows_the_llama_cpp_build_that_setup_verified(app):
    """A bug report from the home page carries the CPU features of the llama.cpp build (issue 10)."""
    from core.llm.buildinfo import build_record

    rec = build_record()
    assert rec.get("ok"), "make setup records a verified build in <venv>/llama-build.json"
    codes = [c.value for c in app.code]
    assert rec["system_info"] in codes and "AVX" in rec["system_info"]
    assert any(t.value.startswith(f"profile: {rec['profile']}") for t in app.text)
