"""ui.safe through Streamlit: AppTest runs a tiny test app (tests/ui/apps/safe_stream_app.py) that streams
hostile chunks; every Markdown element it renders parses (CommonMark) to text with no image or link, the plain
text elements hold the raw text. The browser test checks the real frontend's DOM."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from conftest import ROOT, free_port, run_server, wait_script_idle

APP = Path(__file__).parent / "apps" / "safe_stream_app.py"
sys.path.insert(0, str(APP.parent))
import hostile  # noqa: E402

RAW = "".join(hostile.CHUNKS)


def _html(md_text: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md_text)


def _apptest():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def test_streamed_hostile_chunks_render_as_text_only():
    at = _apptest()
    assert at.session_state["plain"] == RAW and at.session_state["md"] == RAW
    # plain mode: an st.text element holding the raw text (st.text never parses Markdown)
    assert RAW in [t.value for t in at.text]
    # markdown mode, the name sentence: Markdown elements whose bodies render to no image and no link
    bodies = [m.value for m in at.markdown]
    assert bodies, "the app renders Markdown elements"
    for body in bodies:
        html = _html(body)
        assert "<img" not in html and "<a " not in html, body
        assert "](" not in body.replace("\\]\\(", "")           # never an unescaped link/image tail
    assert any("evil" in _html(b) for b in bodies)              # ... and the text is still shown


def test_hostile_file_name_in_labels_and_errors_is_escaped():
    at = _apptest()
    name = hostile.NAME
    label = at.expander[0].label
    assert "<img" not in _html(label) and "<a " not in _html(label) and "evil" in label
    assert name in [t.value for t in at.text]                   # the body shows it verbatim as text
    err = at.error[0].value
    assert "<img" not in _html(err) and "<a " not in _html(err) and "the file is empty" in err


@pytest.mark.slow
@pytest.mark.browser
def test_browser_dom_has_no_remote_image_or_link(page, tmp_path):
    """The real Streamlit frontend renders the test app: no <img> or <a href> pointing at the hostile host, and
    the browser never requests it."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.address",
           "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    with run_server(cmd, f"http://127.0.0.1:{port}/_stcore/health", tmp_path / "streamlit.log"):
        page.goto(f"http://127.0.0.1:{port}")
        page.get_by_text("Here is the answer", exact=False).first.wait_for()
        wait_script_idle(page)
        page.locator('[data-testid="stExpander"] summary').first.click()     # open the expander
        html = page.content()
        assert page.locator('img[src*="evil.example"]').count() == 0
        assert page.locator('a[href*="evil.example"]').count() == 0
        assert page.locator('[data-testid="stApp"] a[href^="http"]').filter(has_text="evil").count() == 0
        assert "evil.example/?q=secret" in page.inner_text("body")          # shown as text
        assert '<img src="https://evil.example/i.png">' in page.inner_text("body")    # raw HTML shown as text
        assert '<img src="https://evil.example' not in html                           # ... never as a tag
    assert not [u for u in requested if "evil.example" in u]
