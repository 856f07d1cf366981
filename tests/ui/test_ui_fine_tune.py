"""AppTest of the Fine-Tune page: sample data checks, upload problems by line, spec errors, start + cancel a job."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core.finetune import runner
from tests.finetune.ft_helpers import BAD, ROOT, link_model_into
from core.safe_text import unescape_markdown  # show_error escapes messages

pytestmark = pytest.mark.slow
PAGE = str(ROOT / "app_pages" / "3_Fine_Tune.py")


@pytest.fixture
def at(data_dir):
    link_model_into(data_dir)            # the converted model, shared (no 30 s conversion per test)
    app = AppTest.from_file(PAGE, default_timeout=180)
    app.run()
    assert not app.exception, app.exception
    return app


def _df(app, column):
    """The first dataframe on the page with that column."""
    for d in app.dataframe:
        if column in d.value.columns:
            return d.value
    raise AssertionError(f"no dataframe with column {column!r}")


def _codes(app) -> list[str]:
    return [c.value for c in app.code]


def test_sample_transcripts_are_checked_and_previewed(at):
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Format"] == "chat" and metrics["Usable rows"] == "192" and metrics["Problems"] == "0"
    assert any("All 192 rows are valid" in s.value for s in at.success)
    codes = _codes(at)
    assert any(c.startswith("<|im_start|>system\nYou are Pip") for c in codes)          # chat-template preview
    assert any(c == "python -m core finetune --data sample_docs/finetune/train.chat.jsonl --preset quick"
               for c in codes)
    at.selectbox(key="ft_sample").set_value("Tidewave transcripts (ShareGPT)").run()
    assert {m.label: m.value for m in at.metric}["Format"] == "sharegpt"
    # lowering the max length flags the long rows by line, before any training
    at.number_input(key="ft_max_seq_len").set_value(96).run()
    assert int({m.label: m.value for m in at.metric}["Problems"]) > 0
    df = _df(at, "problem")
    assert df["problem"].str.contains("too long").all() and (df["line"] > 0).all()
    assert at.button(key="ft_start").disabled


def test_uploaded_malformed_file_shows_problems_by_line(at):
    at.radio(key="ft_source").set_value("Upload a file").run()
    at.file_uploader[0].upload("malformed.jsonl", (BAD / "malformed.jsonl").read_bytes(), "application/jsonl")
    at.run()
    assert not at.exception
    df = _df(at, "problem")
    assert list(df["line"]) == [3] and "not valid JSON" in df["problem"][0]
    assert at.button(key="ft_start").disabled
    at.file_uploader[0].upload("mixed.jsonl", (BAD / "mixed_formats.jsonl").read_bytes(), "application/jsonl")
    at.run()
    assert _df(at, "problem")["problem"].str.contains("one format per file").all()


def test_invalid_spec_is_explained(at):
    at.multiselect(key="ft_target_modules").set_value([]).run()
    assert any("target_modules must be a non-empty list" in unescape_markdown(e.value) for e in at.error)
    assert at.button(key="ft_start").disabled


def test_start_then_cancel_from_the_page(at, data_dir):
    at.number_input(key="ft_max_steps").set_value(3).run()
    assert any("--max-steps 3" in c for c in _codes(at))
    at.button(key="ft_start").click().run()
    assert not at.exception
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    run = runner.load_run(run_id)
    assert run.state in ("running", "succeeded") and run.spec["max_steps"] == 3
    if run.state == "running":
        at.button(key=f"ft_cancel_{run_id}").click().run(timeout=60)
        t0 = time.time()
        while runner.load_run(run_id).state == "running" and time.time() - t0 < 30:
            time.sleep(0.5)
        assert runner.load_run(run_id).state == "cancelled"
    at.run()
    assert any(run_id in str(v) for v in _df(at, "run")["run"])


def test_opening_the_page_never_starts_a_queued_job(data_dir, tmp_path):
    """A job left queued (its predecessor crashed) stays queued when the page is opened; the page offers to
    start it, and only that click starts a worker."""
    from core import jobs
    from core.finetune.datasets import load_file
    from core.finetune.spec import preset_spec
    from tests.finetune.ft_helpers import small_train_file

    link_model_into(data_dir)
    run = runner.create_run(preset_spec("quick").replace(max_steps=500), load_file(small_train_file(tmp_path, 4)))
    folder = jobs.RunFolder(run.dir)
    folder.write_status({**folder.read_status(), "hold": False})        # queued, waiting for its turn
    app = AppTest.from_file(PAGE, default_timeout=180)
    app.run()
    assert not app.exception
    job = jobs.read(run.run_id)
    assert job.state == "queued" and not job.alive and not (run.dir / "worker.json").exists()
    app.button(key="ft_start_next").click().run()
    assert not app.exception
    assert jobs.read(run.run_id).state == "running" and (run.dir / "worker.json").exists()
    assert jobs.cancel(run.run_id, grace_s=5).state == "cancelled"

