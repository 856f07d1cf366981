"""Real browser against a real `streamlit run app.py`: upload the scenario's transcripts, start the quick preset
(fewer steps, to keep CI short), see the loss curve move and the job finish, then compare base vs fine-tuned."""
from __future__ import annotations

import re
import time

import pytest
from conftest import wait_script_idle

from tests.finetune.ft_helpers import TRAIN, link_model_into

pytestmark = [pytest.mark.slow, pytest.mark.browser]
STEPS = 10


def commit(locator, text: str) -> None:
    locator.click()
    locator.fill(text)
    locator.press("Tab")


def progress_step(page) -> int:
    txt = page.get_by_text(re.compile(r"^Step \d+/\d+")).first.inner_text()
    return int(re.match(r"Step (\d+)/", txt).group(1))


def test_upload_train_quick_preset_and_compare(streamlit_server, page):
    url, data = streamlit_server
    link_model_into(data)
    page.goto(f"{url}/Fine_Tune")
    page.get_by_text("Training data", exact=True).wait_for()
    wait_script_idle(page)

    # Data: upload the transcripts; the format is detected and every row checked with the model's tokenizer
    page.get_by_text("Upload a file", exact=True).click()
    wait_script_idle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(TRAIN))
    page.get_by_text(re.compile(r"All \d+ rows are valid")).wait_for(timeout=180_000)
    wait_script_idle(page)

    # Train: quick preset (the default), fewer steps for CI, start
    page.get_by_role("tab", name="Train").click()
    page.get_by_text("Job spec", exact=True).wait_for()
    page.get_by_text("Job spec", exact=True).click()
    commit(page.get_by_label("Max steps (0 = use epochs)", exact=True), str(STEPS))
    commit(page.get_by_label("Eval every N steps (0 = off)", exact=True), "5")
    wait_script_idle(page)
    cli = page.get_by_text(re.compile(rf"--preset quick --max-steps {STEPS} --eval-steps 5"))
    cli.first.wait_for(timeout=60_000)   # the blur's rerun may not have started when the idle check ran
    assert cli.count() == 1
    page.get_by_role("button", name="Start training").click()

    # live panel: the curve appears and the step counter moves while the job runs
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=600_000)
    first = progress_step(page)
    t0 = time.time()
    while progress_step(page) == first and time.time() - t0 < 600:
        time.sleep(2)
    assert progress_step(page) > first
    page.get_by_text(re.compile(r"^Finished: \d+ steps")).wait_for(timeout=1_800_000)
    wait_script_idle(page)
    assert not page.locator('[data-testid="stException"]').count()

    # Runs tab lists it as succeeded, with the adapter hash
    page.get_by_role("tab", name="Runs").click()
    assert page.get_by_text(re.compile("succeeded")).count() >= 1

    # Try & export: base vs fine-tuned, side by side
    page.get_by_role("tab", name="Try & export").click()
    page.get_by_role("button", name="Ask both").click()
    page.get_by_text(re.compile("Both answers come from the embedded llama.cpp backend")).wait_for(timeout=300_000)
    wait_script_idle(page)
    base_col = page.locator('[data-testid="stColumn"]').filter(has_text="Base · smollm2-135m-instruct").last
    ft_col = page.locator('[data-testid="stColumn"]').filter(has_text="Fine-tuned · ft:").last
    base_text = base_col.inner_text().split("\n", 1)[1]
    ft_text = ft_col.inner_text().split("\n", 1)[1]
    assert ft_text.strip() and ft_text != base_text
    assert not page.locator('[data-testid="stException"]').count()
