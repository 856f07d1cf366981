"""Real browser (Debian chromium) against a real `streamlit run app.py`: a shared ?usecase= link opens Compare on
that use case, the choice follows the user to another page through the sidebar navigation, and the sidebar
selector switches back to the demo (and rewrites the link)."""
from __future__ import annotations

import re
import time

import pytest
from conftest import wait_script_idle

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def shown(selectbox) -> str:
    """The value a Streamlit selectbox shows (its input's value, or its text)."""
    inp = selectbox.locator("input")
    return (inp.first.input_value() if inp.count() else "") + " " + selectbox.inner_text()


def loaded(page) -> list[str]:
    """The prompt versions the Prompt Lab columns hold (their "Load prompt" boxes)."""
    return [b.input_value() for b in page.locator('[data-testid="stMain"] input[aria-label="Load prompt"]').all()]


def test_a_usecase_link_drives_compare_and_prompt_lab(fresh_streamlit_server, page, monkeypatch):
    url, data = fresh_streamlit_server
    monkeypatch.setenv("WORKBENCH_DATA", str(data))
    from tests.ui.test_ui_usecase_select import acme

    acme()                                                  # in the server's own data folder
    page.goto(f"{url}/Compare?usecase=acme")
    page.get_by_text("Compare approaches").first.wait_for()
    wait_script_idle(page)
    side = page.locator('[data-testid="stSidebarUserContent"]')
    selector = side.locator('[data-testid="stSelectbox"]').first          # the use-case selector comes first
    selector.wait_for()
    assert "acme — Acme desk" in shown(selector)
    side.get_by_text("acme__guardrail", exact=False).first.wait_for()      # the approaches name its prompts
    assert side.get_by_text("not built yet", exact=False).count() == 1     # its collection, acme_docs
    assert not page.locator('[data-testid="stException"]').count()

    page.locator('[data-testid="stSidebarNav"]').get_by_text("Prompt Lab", exact=True).click()
    page.wait_for_url(re.compile(r"/Prompt_Lab\?.*usecase=acme"))
    page.get_by_text("Variant A", exact=True).wait_for()
    wait_script_idle(page)
    picked = loaded(page)
    assert sum(v.startswith("acme__") for v in picked) >= 2, picked      # the columns hold the use case's prompts
    assert "acme — Acme desk" in shown(selector)

    selector.click()                                                        # open the selector, pick the demo
    page.get_by_role("option", name=re.compile(r"^tidewave")).click()
    page.wait_for_url(re.compile(r"usecase=tidewave"))
    wait_script_idle(page)
    page.get_by_text("Variant A", exact=True).wait_for()
    deadline = time.time() + 60                                             # the rerun of the switch may lag
    while True:
        wait_script_idle(page)
        picked = loaded(page)
        if not any(v.startswith("acme__") for v in picked) or time.time() > deadline:
            break
        time.sleep(0.5)
    assert not any(v.startswith("acme__") for v in picked), picked      # the demo's starter prompts again
    assert "zero_shot@1" in picked
    assert not page.locator('[data-testid="stException"]').count()
