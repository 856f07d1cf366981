"""AppTest of app_pages/4_Compare.py: builder, validation, bad uploads, and a real stored run in every tab."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.safe_text import unescape_markdown

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "4_Compare.py")
BAD = '{"id": "a", "question": "fine?"}\n{"id": "b", "reference": "no question"}\nnot json\n'


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120)


def _texts(at) -> str:
    parts = [x.value for x in at.markdown] + [x.value for x in at.caption] + [x.value for x in at.info]
    parts += [x.value for x in at.warning] + [x.value for x in at.error] + [x.value for x in at.success]
    raw = "\n".join(str(p) for p in parts)
    return raw + "\n" + unescape_markdown(raw)     # as written and as read (untrusted parts are escaped)


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


def test_retrieval_only_reference_column_can_be_added(data_dir):
    at = _app().run()
    at.button(key="cmp_add_retrieval").click().run()
    a = at.session_state["cmp_approaches"][-1]
    assert at.session_state[f"cmp_{a['uid']}_name"] == "retrieval_only"
    assert at.session_state[f"cmp_{a['uid']}_model"] == "extractive" and a["rag"] != "off"
    code = " ".join(c.value for c in at.sidebar.code)
    assert "retrieval_only=model=extractive" in code and "rag=" in code
    at.button(key="cmp_add_retrieval").click().run()                          # once only
    assert len(at.session_state["cmp_approaches"]) == 5
    assert not at.exception and not at.error


def test_bad_question_upload_lists_problems(data_dir):
    at = _app().run()
    at.radio(key="cmp_src").set_value("Upload JSONL/CSV")
    at.file_uploader(key="cmp_upload").upload("questions.jsonl", BAD.encode(), "application/jsonl")
    at.button(key="FormSubmitter:cmp_batch_form-Start batch").click().run()
    errs = " ".join(unescape_markdown(e.value) for e in at.error)   # messages are escaped
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
    assert f"Run {run_id}" in unescape_markdown(text)
    assert "Recommended" in unescape_markdown(" ".join(s.value for s in at.success))
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


# ---- wiring of issue 16: the Advisor's pre-fill, repeats, the judge picker, ratings in the results --------------
def _names(at) -> list[str]:
    return [at.session_state[f"cmp_{a['uid']}_name"] for a in at.session_state["cmp_approaches"]]


def _demo_prefill(repeats: int = 3) -> dict:
    from core import advisor as ADV

    return ADV.compare_spec(ADV.advise(ADV.Questionnaire.demo()), repeats=repeats)


def test_advisor_prefill_sets_the_approaches_once(data_dir):
    from core import advisor as ADV

    spec = _demo_prefill(3)
    at = _app()
    at.session_state[ADV.PREFILL_KEY] = spec                         # as app_pages/5_Advisor.py stores it
    at.query_params[ADV.QUERY_PARAM] = spec["query"]                 # ... and the URL it switches to
    at.run()
    assert not at.exception and not at.error
    assert _names(at) == ["prompt_rag", "fine_tuned_rag", "prompt_only"]
    assert at.session_state["cmp_advice"]["recommended"] == "prompt_rag"
    assert at.session_state["cmp_repeats"] == 3 and at.session_state["cmp_temperature"] == 0.7
    assert at.number_input(key="cmp_repeats").value == 3 and at.number_input(key="cmp_temperature").value == 0.7
    assert any("Pre-filled by the Advisor" in i.value for i in at.info)
    assert any(t.value == "Recommended: prompt_rag · next step: fine_tuned_rag · 3 repeat(s)" for t in at.text)
    assert ADV.PREFILL_KEY not in at.session_state
    # the user's edits are not overwritten on a rerun (the ?advice=... was already applied)
    uid = at.session_state["cmp_approaches"][-1]["uid"]
    at.button(key=f"cmp_{uid}_remove").click().run()
    at.run()
    assert _names(at) == ["prompt_rag", "fine_tuned_rag"]
    # a refresh (new session, only the URL) rebuilds the same pre-fill
    fresh = _app()
    fresh.query_params[ADV.QUERY_PARAM] = spec["query"]
    fresh.run()
    assert not fresh.exception and _names(fresh) == ["prompt_rag", "fine_tuned_rag", "prompt_only"]
    # a bad ?advice=... is ignored with a clear warning, the classic preset stays
    bad = _app()
    bad.query_params[ADV.QUERY_PARAM] = "knows:perhaps"
    bad.run()
    assert not bad.exception and any("pre-filled comparison was ignored" in w.value for w in bad.warning)
    assert _names(bad) == ["prompt_only", "prompt_rag", "fine_tuned", "fine_tuned_rag"]


def test_repeats_at_temperature_zero_are_refused_on_the_page(data_dir):
    from core.compare import runner

    at = _app().run()
    at.number_input(key="cmp_repeats").set_value(2)
    at.number_input(key="cmp_temperature").set_value(0.0)
    at.button(key="FormSubmitter:cmp_batch_form-Start batch").click().run()
    assert not at.exception
    assert any("temperature above 0" in e.value for e in at.error) and runner.list_runs() == []


@pytest.mark.slow
def test_prefilled_run_stores_repeats_judge_pick_and_the_advice(data_dir):
    from core import advisor as ADV
    from core.compare import runner
    from core.fileio import read_json

    spec = _demo_prefill(2)
    at = _app()
    at.session_state[ADV.PREFILL_KEY] = spec
    at.run()
    at.number_input(key="cmp_limit").set_value(1)
    at.number_input(key="cmp_max_tokens").set_value(16)
    at.checkbox(key="cmp_judge").check()
    at.selectbox(key="cmp_judge_backend").set_value("embedded")
    at.text_input(key="cmp_judge_model").input("smollm2-135m-instruct")
    at.button(key="FormSubmitter:cmp_batch_form-Start batch").click().run()
    assert not at.exception and not at.error
    (r,) = runner.list_runs()
    run_id = r["run_id"]
    try:
        run = runner.load_run(run_id)
        assert run.spec["judge"] == {"enabled": True, "model": "smollm2-135m-instruct", "backend": "embedded"}
        assert run.spec["params"]["repeats"] == 2 and run.spec["params"]["temperature"] == 0.7
        assert run.spec["name"] == spec["name"] and [a["spec"]["name"] for a in run.spec["approaches"]] == [
            "prompt_rag", "fine_tuned_rag", "prompt_only"]
        assert read_json(run.dir / ADV.ADVICE_FILE)["advice"]["start"] == spec["advice"]["start"]
        assert ADV.load_advice(run.dir).start.approach == "prompt_rag"
        assert "cmp_advice" not in at.session_state                    # attached once, to this run
        assert at.query_params["run"] == run_id
    finally:
        runner.request_stop(run_id)
        runner.wait(run_id, timeout=300)


def test_results_tab_rates_answers_and_the_rating_survives_a_refresh(data_dir):
    from core.compare import ratings as R
    from core.compare import runner
    from tests.compare.run_helpers import add_answer, make_run

    rid, qs = make_run(2)
    for q in qs:
        add_answer(rid, q.id, "prompt_only", 0.4, grade=4)
        add_answer(rid, q.id, "short", 0.6, grade=2)
    at = _app()
    at.query_params["run"] = rid
    at.run()
    assert not at.exception
    first = at.selectbox(key="rate_pick").value
    assert first == f"{qs[0].id}/prompt_only/0"
    at.text_input(key="rate_rater").input("ana")
    at.radio(key="rate_0_label").set_value("good")
    at.radio(key="rate_0_grade").set_value(5)
    at.button(key="FormSubmitter:rate_form_0-Save rating").click().run()
    assert not at.exception and not at.error
    (r,) = R.latest(runner.run_dir(rid))
    assert (r.answer_id, r.rater, r.label, r.grade) == (first, "ana", "good", 5)
    assert (runner.run_dir(rid) / "ratings.jsonl").is_file()
    again = _app()
    again.query_params["run"] = rid
    again.run()
    assert not again.exception
    assert any(t.value.startswith("ana: good · grade 5") for t in again.text)


def test_requests_in_flight_only_for_server_backends_and_stored_with_the_run(data_dir, monkeypatch):
    """The embedded model answers one at a time: the control is disabled; with an OpenAI-compatible default backend
    it is enabled and the run keeps the chosen value (here no server answers: the run fails fast, and that is
    not what is checked)."""
    from core.compare import runner

    at = _app().run()
    assert at.number_input(key="cmp_concurrency").disabled and at.number_input(key="cmp_concurrency").value == 4
    monkeypatch.setenv("WORKBENCH_BACKEND", "openai")
    monkeypatch.setenv("WORKBENCH_COMPARE_CONCURRENCY", "6")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    at = _app().run()
    box = at.number_input(key="cmp_concurrency")
    assert not box.disabled and box.value == 6
    box.set_value(3)
    at.number_input(key="cmp_limit").set_value(1)
    at.button(key="FormSubmitter:cmp_batch_form-Start batch").click().run()
    assert not at.exception and not at.error
    (r,) = runner.list_runs()
    try:
        assert runner.load_run(r["run_id"]).spec["params"]["concurrency"] == 3
    finally:
        runner.request_stop(r["run_id"])
        runner.wait(r["run_id"], timeout=120)
