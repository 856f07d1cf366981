"""Real browser (Debian chromium) against a real `streamlit run app.py`: edit two variants, run them, see both
outputs and their metrics."""
from __future__ import annotations

import re

import pytest
from conftest import wait_script_idle

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def commit(locator, text: str) -> None:
    """Type into a Streamlit text widget and commit it (blur), like a user would."""
    locator.click()
    locator.fill(text)
    locator.press("Tab")


def test_edit_two_variants_run_and_see_outputs(streamlit_server, page):
    url, _data = streamlit_server
    page.goto(f"{url}/Prompt_Lab?variants=zero_shot@1,few_shot@1")
    page.get_by_text("Variant B", exact=True).wait_for()
    wait_script_idle(page)

    systems = page.get_by_label("System prompt", exact=True)
    systems.nth(1).wait_for()           # text areas render lazily (a skeleton first) on a busy machine
    assert systems.count() == 2
    commit(systems.nth(0), "You are a terse support agent for Tidewave. Answer in one sentence.")
    wait_script_idle(page)
    commit(page.get_by_label("User template", exact=True).nth(1), "Customer question: {question}")
    wait_script_idle(page)
    # keep the answers short so the test is quick on a busy CPU
    for i in range(2):
        page.get_by_text("Generation parameters", exact=True).nth(i).click()
        box = page.get_by_label("max_tokens", exact=True).nth(i)
        commit(box, "16")
        wait_script_idle(page)
    commit(page.get_by_label("{question}", exact=True), "How do I reset my password?")
    wait_script_idle(page)

    page.get_by_role("button", name=re.compile("Run all")).click()
    page.get_by_text(re.compile(r"done in \d")).nth(1).wait_for(timeout=180_000)
    wait_script_idle(page)

    metrics = page.locator('[data-testid="stMetricLabel"]')
    labels = [metrics.nth(k).inner_text() for k in range(metrics.count())]
    assert labels.count("Prompt tok") == 2 and labels.count("Tok/s") == 2 and labels.count("Latency") == 2
    assert page.get_by_text(re.compile(r"Context window used: \d+/\d+ tokens")).count() == 2
    # both outputs are there, under their own headings
    assert page.get_by_text("Output A").count() == 1 and page.get_by_text("Output B").count() == 1
    # the edited prompts are unsaved: the CLI hint says so (and nothing was written to the library)
    page.get_by_text("CLI", exact=True).nth(0).click()
    assert page.get_by_text("Unsaved prompt edits").first.is_visible()
    assert not page.locator('[data-testid="stException"]').count()
