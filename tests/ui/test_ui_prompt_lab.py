"""AppTest of app_pages/1_Prompt_Lab.py with the real embedded model and a real prompt library folder."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from core.prompts.library import PromptLibrary
from core.safe_text import unescape_markdown

PAGE = str(PROJECT_ROOT / "app_pages" / "1_Prompt_Lab.py")


def load(query: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    if query:
        at.query_params["variants"] = query
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> list[str]:
    """Element bodies as the reader sees them (error messages are Markdown-escaped by ui.common.show_error)."""
    return [unescape_markdown(str(e.value)) for e in elements]


def test_page_loads_starter_variants(data_dir):
    at = load()
    assert at.session_state["pl_n"] == 3
    refs = [at.session_state[f"pl_{i}_ref"] for i in range(3)]
    assert refs == ["zero_shot@1", "few_shot@1", "guardrail@1"]
    assert at.text_input(key="pl_1_name").value == "few_shot"
    assert "Ahoy there" in at.session_state["pl_1_examples_base"][0]["assistant"]
    assert not at.error and not at.json          # no stray values written by Streamlit "magic"
    codes = texts(at.code)
    assert "python -m core generate --prompt zero_shot@1 --var question=... --backend embedded --model " \
           "smollm2-135m-instruct" in codes
    assert PromptLibrary(data_dir / "prompts").names()          # starter library was created on disk
    # context-window bars are computed before anything runs
    assert any("Context:" in p.proto.text for p in at.get("progress"))


def test_query_params_pick_variants(data_dir):
    at = load("guardrail_json@1,few_shot")
    assert at.session_state["pl_n"] == 2
    assert [at.session_state[f"pl_{i}_ref"] for i in range(2)] == ["guardrail_json@1", "few_shot@1"]
    at = load("nope@3,few_shot@1")
    assert any("Could not load 'nope@3'" in w for w in texts(at.warning))


def test_open_tab_is_shareable_in_the_url(data_dir):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.query_params["pl_tab"] = "Versions"
    at.run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Playground", "Batch", "Versions"]
    assert at.session_state["pl_tab"] == "Versions" and at.query_params["pl_tab"] in ("Versions", ["Versions"])


def test_bad_inputs_show_clear_errors_and_save_nothing(data_dir):
    at = load()
    at.text_area(key="pl_0_template").input("   ")
    at.text_area(key="pl_1_schema").input('{"type": "objekt"}')
    at.run()
    errors = texts(at.error)
    assert any("user template is empty" in e for e in errors)
    assert any("JSON schema is invalid at type" in e for e in errors)
    lib = PromptLibrary(data_dir / "prompts")
    before = {n: len(lib.versions(n)) for n in lib.names()}
    at.selectbox(key="pl_save_from").set_value("A")
    at.text_input(key="pl_save_message").input("should not save")
    at.button[[b.label for b in at.button].index("Save version")].click().run()
    assert any("nothing was saved" in e for e in texts(at.error))
    assert {n: len(lib.versions(n)) for n in lib.names()} == before
    at.text_area(key="pl_1_schema").input('{"type": ')
    at.run()
    assert any("not valid JSON (line 1" in e for e in texts(at.error))


def test_save_version_history_diff_and_baseline(data_dir):
    at = load()
    at.text_area(key="pl_1_system").input("You are Pip. Answer in the Tidewave voice.")
    at.run()
    at.selectbox(key="pl_save_from").set_value("B")
    at.text_input(key="pl_save_message").input("shorter system prompt")
    at.button[[b.label for b in at.button].index("Save version")].click().run()
    assert not at.exception
    assert any("Saved variant B as few_shot@2" in s for s in texts(at.success))
    assert at.session_state["pl_1_ref"] == "few_shot@2"
    lib = PromptLibrary(data_dir / "prompts")
    assert lib.get("few_shot@2").system == "You are Pip. Answer in the Tidewave voice."
    assert lib.versions("few_shot")[-1].message == "shorter system prompt"
    # history of the saved prompt, diff of 1 -> 2
    assert at.selectbox(key="pl_hist_name").value == "few_shot"
    hist = next(d.value for d in at.dataframe if "version" in d.value.columns)
    assert list(hist["version"]) == [2, 1] and hist["message"][0] == "shorter system prompt"
    diffs = [c for c in texts(at.code) if c.startswith("--- few_shot@1")]
    assert diffs and "+system: You are Pip. Answer in the Tidewave voice." in diffs[0]
    # label version 1 as baseline, then restore it
    at.selectbox(key="pl_restore_v").set_value(1)
    at.button(key="pl_label").click().run()
    assert lib.resolve("few_shot@baseline")[1] == 1
    at.button(key="pl_restore").click().run()
    assert lib.latest_version("few_shot") == 3 and lib.get("few_shot@3") == lib.get("few_shot@1")
    assert any("Restored few_shot@1 as few_shot@3" in s for s in texts(at.success))


@pytest.mark.slow
def test_run_all_zero_shot_few_shot_guardrail_json(data_dir):
    at = load("zero_shot@1,few_shot@1,guardrail_json@1")
    for i in range(3):
        at.number_input(key=f"pl_{i}_max_tokens").set_value(24 if i < 2 else 60)
    at.text_area(key="pl_var_question").input("How do I reset my password?")
    at.run()
    at.button(key="pl_run").click().run()
    assert not at.exception
    results = at.session_state["pl_results"]
    assert sorted(results) == [0, 1, 2]
    for i in range(3):
        assert results[i].error is None, results[i].error
        assert results[i].text.strip() and results[i].usage.completion_tokens > 0
    shown = texts(at.text)                       # model output is shown as plain text, never as Markdown
    assert results[0].text in shown and results[1].text in shown
    labels = [m.label for m in at.metric]
    assert labels.count("Prompt tok") == 3 and labels.count("TTFT") == 3 and labels.count("Latency") == 3
    # the guardrail_json variant is validated against its schema
    assert results[2].json_ok is not None
    badge = texts(at.success) + texts(at.error)
    assert any(b.startswith("JSON valid") or b.startswith("JSON invalid") for b in badge)


@pytest.mark.slow
def test_100kb_prompt_warns_before_running_and_errors_on_run(data_dir):
    at = load("zero_shot@1,few_shot@1")
    at.text_area(key="pl_0_system").input("lorem ipsum dolor " * (100_000 // 18))
    at.number_input(key="pl_1_max_tokens").set_value(8)
    at.text_area(key="pl_var_question").input("hi")
    at.run()
    assert any("exceeds the" in w and "context window" in w for w in texts(at.warning))
    at.button(key="pl_run").click().run()
    res = at.session_state["pl_results"]
    assert res[0].error_type == "ContextOverflow" and res[1].error is None
    assert any("context window" in e for e in texts(at.error))


@pytest.mark.slow
def test_batch_tab_runs_variants_over_questions(data_dir):
    at = load("zero_shot@1,few_shot@1")
    for i in range(2):
        at.number_input(key=f"pl_{i}_max_tokens").set_value(8)
    at.run()
    at.multiselect[0].set_value(["A", "B"])
    at.number_input[[n.label for n in at.number_input].index("Inputs (first N questions)")].set_value(2)
    at.button[[b.label for b in at.button].index("Run batch")].click().run()
    assert not at.exception
    recs = at.session_state["pl_batch"]
    assert [r["variant"] for r in recs] == ["A", "A", "B", "B"]
    assert all(not r["error"] and r["latency_s"] > 0 for r in recs)
    assert at.get("plotly_chart")
