"""One real browser session: open the app in Debian chromium, generate, and watch the streamed answer arrive."""
from __future__ import annotations

import re
import time

import pytest
from conftest import wait_script_idle

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_open_generate_and_see_streamed_text(streamlit_server, page):
    url, _ = streamlit_server
    page.goto(url)
    page.get_by_text("Quick generate").wait_for()
    prompt = page.get_by_role("textbox", name="Prompt", exact=True)
    prompt.fill("Write a short story about a lighthouse keeper.")
    max_tokens = page.get_by_role("spinbutton", name="Max tokens")
    max_tokens.fill("160")
    prompt.press("Control+Enter")                       # keyboard submit of the form
    answer = page.locator(".st-key-home_answer")
    answer.wait_for(timeout=120_000)
    lengths = []                                        # watch the text grow while tokens stream in
    deadline = time.time() + 120
    usage = page.locator('[data-testid="stMetric"]').filter(has_text="Output tok")
    while time.time() < deadline and not usage.count():
        lengths.append(len(answer.inner_text()))
        time.sleep(0.05)
    usage.wait_for(timeout=120_000)
    wait_script_idle(page)
    final = answer.inner_text().strip()
    assert final
    partial = [n for n in lengths if 0 < n < len(final)]
    assert partial, f"never saw a partial answer (lengths seen: {sorted(set(lengths))[:10]})"
    metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert len(metrics) >= 5 and int(metrics[1]) > 0
    assert re.fullmatch(r"\d+ ms", metrics[2])
    assert not page.locator('[data-testid="stException"]').count()


def test_sidebar_navigation_says_home_and_opens_a_page(streamlit_server, page):
    url, _ = streamlit_server
    page.goto(url)
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_text("Home", exact=True).wait_for()
    for title in ("Prompt Lab", "Knowledge Base", "Fine-Tune", "Compare"):
        assert nav.get_by_text(title, exact=True).count() == 1
    assert nav.get_by_text("app", exact=True).count() == 0 and page.title() == "Home · Approach Workbench"
    assert page.locator('[data-testid="stSidebarUserContent"]').get_by_text("Default backend").count() == 1
    nav.get_by_text("Prompt Lab", exact=True).click()
    page.wait_for_url(re.compile(r"/Prompt_Lab"))
    page.get_by_text("Variant A", exact=True).wait_for()
    wait_script_idle(page)
    assert page.title() == "Prompt Lab · Approach Workbench"
    assert not page.locator('[data-testid="stException"]').count()


def test_a_deep_link_as_a_fresh_servers_first_visit_gets_the_apps_navigation(fresh_streamlit_server, page):
    """A shared link is often the first request after `make run`. Streamlit keeps a process in its old multipage mode
    (sidebar from a `pages/` folder, page file run without app.py) until some session has called st.navigation,
    so the app must have no `pages/` folder: the first visit to /Advisor must get app.py's navigation too."""
    url, _ = fresh_streamlit_server
    page.goto(url + "/Advisor")
    page.get_by_text("Advisor: prompt, RAG or fine-tune?").wait_for()
    wait_script_idle(page)
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_text("Home", exact=True).wait_for()
    assert nav.get_by_text("app", exact=True).count() == 0 and nav.get_by_text("Fine-Tune", exact=True).count() == 1
    assert page.locator('[data-testid="stSidebarUserContent"]').get_by_text("Default backend").count() == 1
    assert page.title() == "Advisor · Approach Workbench"
