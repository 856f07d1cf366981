"""AppTest of pages/4_Compare.py: builder, validation, bad uploads, and a real stored run in every tab."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "4_Compare.py")
BAD = '{"id": "a", "question": "fine?"}\n{"id": "b", "reference": "no question"}\nnot json\n'


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120)


def _texts(at) -> str:
    parts = [x.value for x in at.markdown] + [x.value for x in at.caption] + [x.value for x in at.info]
    parts += [x.value for x in at.warning] + [x.value for x in at.error] + [x.value for x in at.success]
    return "\n".join(str(p) for p in parts)


def test_page_loads_with_classic_preset(data_dir):
    at = _app().run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Single question", "Batch run", "Results", "Charts", "Decision report"]
    names = [at.session_state[f"cmp_{a['uid']}_name"] for a in at.session_state["cmp_approaches"]]
    assert names == ["prompt_only", "prompt_rag", "fine_tuned", "fine_tuned_rag"]
    text = _texts(at)
    assert "train one on the Fine-Tune page" in text          # no adapter: explained, not an error
    assert "No runs yet" in text
    assert not at.error


def test_builder_add_remove_and_validation(data_dir):
    at = _app().run()
    at.button(key="cmp_add").click().run()
    assert len(at.session_state["cmp_approaches"]) == 5
    uid = at.session_state["cmp_approaches"][-1]["uid"]
    at.text_input(key=f"cmp_{uid}_name").set_value("prompt_only").run()      # duplicate name
    assert any("unique" in e.value for e in at.error)
    at.button(key="cmp_add").click().run()
    assert at.button(key="cmp_add").disabled                                   # 6 is the maximum
    at.button(key=f"cmp_{uid}_remove").click().run()
    assert len(at.session_state["cmp_approaches"]) == 5 and not any("unique" in e.value for e in at.error)
    assert not at.exception


def test_bad_question_upload_lists_problems(data_dir):
    at = _app().run()
    at.radio(key="cmp_src").set_value("Upload JSONL/CSV")
    at.file_uploader(key="cmp_upload").upload("questions.jsonl", BAD.encode(), "application/jsonl")
    at.button(key="FormSubmitter:cmp_batch_form-Start batch").click().run()
    errs = " ".join(e.value for e in at.error)
    assert "line 2" in errs and "missing field `question`" in errs and "line 3" in errs
    assert any(list(df.value["line"]) == [2, 3] for df in at.dataframe if "line" in df.value.columns)
    assert not at.exception


@pytest.mark.slow
def test_stored_run_shows_results_charts_and_report(data_dir):
    from core.compare import approach as A
    from core.compare import runner
    from core.scenario import scenario_questions

    specs = [A.ApproachSpec("zs", prompt="zero_shot"), A.ApproachSpec("fs", prompt="few_shot"),
             A.ApproachSpec("ft", "ft:latest", "zero_shot")]
    run_id = runner.create_run(specs, scenario_questions(limit=2), max_tokens=24)
    assert runner.run_batch(runner.run_dir(run_id))["state"] == "succeeded"
    at = _app()
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    text = _texts(at)
    assert f"Run {run_id}" in text and "Recommended:" in " ".join(s.value for s in at.success)
    assert any("zs" in df.value.get("approach", []).tolist() for df in at.dataframe if "approach" in df.value)
    assert "ft could not run" in text and "Fine-Tune page" in text
    labels = [b.label for b in at.get("download_button")]
    assert any("HTML report" in (l or "") for l in labels) and any("Markdown" in (l or "") for l in labels)
    assert len(at.get("plotly_chart")) == 5
    # a second run diffed against the first
    run2 = runner.create_run(specs[:1], scenario_questions(limit=2), max_tokens=24, baseline=run_id)
    runner.run_batch(runner.run_dir(run2))
    at = _app()
    at.query_params["run"] = run2
    at.run()
    assert f"Against baseline run `{run_id}`" in _texts(at)
    assert not at.exception


@pytest.mark.slow
def test_single_question_answers_side_by_side(data_dir):
    at = _app().run()
    for a in list(at.session_state["cmp_approaches"])[1:]:
        at.button(key=f"cmp_{a['uid']}_remove").click().run()
    at.button(key="cmp_add").click().run()                                    # zero_shot, no retrieval
    uid = at.session_state["cmp_approaches"][-1]["uid"]
    at.text_input(key=f"cmp_{uid}_name").set_value("short").run()
    at.text_area(key="cmp_single_q").input("How long is a team invitation valid?")
    at.number_input(key="cmp_single_max").set_value(24)
    at.button(key="FormSubmitter:cmp_single_form-Ask every approach").click().run()
    assert not at.exception
    single = at.session_state["cmp_single"]
    assert set(single["answers"]) == {"prompt_only", "short"}
    for rec in single["answers"].values():
        assert rec["error"] is None and rec["text"].strip() and rec["usage"]["completion_tokens"] > 0
    assert any(m.label == "Output tok" for m in at.metric)
