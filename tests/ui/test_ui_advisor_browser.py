"""Real browser: the Advisor form driven from the keyboard, the advice as plain text, then the jump to Compare
with the answers in the URL."""
from __future__ import annotations

import pytest
from conftest import wait_script_idle

from core import advisor as ADV

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_advisor_keyboard_form_then_compare(streamlit_server, page):
    url, _ = streamlit_server
    page.goto(f"{url}/Advisor")
    page.get_by_text("Advisor: prompt, RAG or fine-tune?").wait_for(timeout=120_000)
    wait_script_idle(page)
    # the advice as a plain-text code block (waited for by its text: which code block is first in the DOM can lag
    # behind a rerun; failed once in a fresh-clone CI run with the CLI block first)
    page.locator('[data-testid="stCode"]', has_text="Start with: Prompt engineering only").wait_for(timeout=60_000)
    # keyboard only: type the number of examples and press Enter, which submits the form
    box = page.locator(".st-key-adv_examples input")
    box.click()
    box.press("Control+a")
    box.type("300")
    voice = page.locator(".st-key-adv_voice input")
    voice.focus()
    voice.press("Space")                                  # a checkbox toggles with the space bar
    box.press("Enter")
    page.get_by_text("Next step up: Fine-tuned model (LoRA) + prompt (fine_tuned)").wait_for(timeout=60_000)
    wait_script_idle(page)
    assert not page.locator('[data-testid="stException"]').count()
    page.get_by_role("button", name="Pre-fill a Compare run with these approaches").click()
    page.get_by_text("Compare approaches").first.wait_for(timeout=120_000)
    wait_script_idle(page)
    q = ADV.Questionnaire(strict_voice=True, examples=300)
    assert "/Compare" in page.url and f"{ADV.QUERY_PARAM}=" in page.url
    from urllib.parse import parse_qs, urlparse
    assert parse_qs(urlparse(page.url).query)[ADV.QUERY_PARAM] == [q.to_query()]
