"""Real browser: the four classic approaches on three scenario questions in a background batch, then the
results matrix, a chart and the exported HTML report."""
from __future__ import annotations

import re
import time

import pytest
from conftest import wait_script_idle

pytestmark = [pytest.mark.slow, pytest.mark.browser]
# status text is escaped for Markdown (issue 14): allow its backslashes and invisible word joiners
DONE = re.compile(r"succeeded\\?:")
FAILED = re.compile(r"failed\\?:")


def test_classic_batch_matrix_chart_and_export(streamlit_server, page, tmp_path):
    url, _ = streamlit_server
    page.goto(f"{url}/Compare")
    page.get_by_text("Compare approaches").first.wait_for(timeout=120_000)
    wait_script_idle(page)
    build = page.get_by_role("button", name="Build collection 'support'")
    if build.count():                                   # the Knowledge Base test may have built it already
        build.click()
        page.get_by_text("Collection ready").wait_for(timeout=400_000)
        wait_script_idle(page)

    page.get_by_role("tab", name="Batch run").click()
    # the embedded model answers one at a time: "Requests in flight" is only for server backends
    assert page.locator(".st-key-cmp_concurrency input").is_disabled()
    page.locator(".st-key-cmp_limit input").fill("3")
    page.locator(".st-key-cmp_max_tokens input").fill("32")
    page.locator(".st-key-cmp_name input").fill("browser classic")
    page.get_by_role("button", name="Start batch").click()
    progress = page.locator('[data-testid="stProgress"]')
    progress.first.wait_for(timeout=60_000)
    deadline = time.time() + 600
    while time.time() < deadline:
        if page.get_by_text(DONE).count() or page.get_by_text(FAILED).count():
            break
        time.sleep(0.5)
    page.get_by_text(DONE).first.wait_for(timeout=10_000)
    wait_script_idle(page)
    assert not page.locator('[data-testid="stException"]').count()

    page.get_by_role("tab", name="Results").click()
    page.get_by_text("Matrix: quality per question × approach").wait_for()
    assert page.locator('[data-testid="stDataFrame"]').count() >= 3

    page.get_by_role("tab", name="Charts").click()
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for(timeout=60_000)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 5

    page.get_by_role("tab", name="Decision report").click()
    page.get_by_text("Recommended:", exact=False).first.wait_for()
    with page.expect_download() as dl:
        page.get_by_role("button", name="HTML report", exact=False).click()
    target = tmp_path / "report.html"
    dl.value.save_as(target)
    html = target.read_text(encoding="utf-8")
    assert "Decision report: browser classic" in html and "Plotly.newPlot" in html
    for name in ("prompt_only", "prompt_rag", "fine_tuned", "fine_tuned_rag"):
        assert name in html
    assert "<script src=" not in html
