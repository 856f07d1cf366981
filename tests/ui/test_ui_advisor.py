"""AppTest of app_pages/5_Advisor.py (defaults, demo answers, the form, the URL, the jump to Compare) and of the ratings
panel that the Compare page embeds."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import advisor as ADV
from core.safe_text import unescape_markdown

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "app_pages" / "5_Advisor.py")


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def _advice_text(at) -> str:
    return next(c.value for c in at.code if c.value.startswith("Start with:"))


def test_page_loads_with_the_simplest_case_and_shows_the_cli(data_dir):
    at = _app().run()
    assert not at.exception and not at.error
    text = _advice_text(at)
    assert "Start with: Prompt engineering only (prompt_only)" in text and "Next step up: none needed" in text
    cli = next(c.value for c in at.code if c.value.startswith("python -m core advise"))
    assert "--knows-facts yes" in cli and "python -m core compare --approach prompt_only=" in cli
    assert at.query_params[ADV.QUERY_PARAM] == ADV.Questionnaire().to_query()
    # nothing typed by the user or the model is rendered as Markdown: the advice is in code/text elements
    assert not any("Start with" in m.value for m in at.markdown)


def test_form_answers_change_the_advice(data_dir):
    at = _app().run()
    at.radio(key="adv_knows").set_value("no")
    at.selectbox(key="adv_change").set_value("weekly")
    at.checkbox(key="adv_cite").check()
    at.checkbox(key="adv_voice").check()
    at.number_input(key="adv_examples").set_value(500)
    at.radio(key="adv_budget").set_value("low")
    at.button(key="FormSubmitter:adv_form-Advise").click().run()
    assert not at.exception
    text = _advice_text(at)
    assert "Start with: Prompt engineering + RAG (prompt_rag)" in text
    assert "Next step up: Fine-tuned model (LoRA) + RAG (fine_tuned_rag)" in text and "500 examples" in text
    cells = [t.value for t in at.text]          # the approaches grid: approach, definition, role per row
    i = cells.index("prompt_rag")
    assert cells[i:i + 9:3] == ["prompt_rag", "fine_tuned_rag", "prompt_only"]
    assert cells[i + 2:i + 9:3] == ["recommended", "next step", "alternative"]


def test_demo_button_and_answers_from_the_url(data_dir):
    at = _app().run()
    at.button(key="adv_demo").click().run()
    assert at.session_state["adv_knows"] == "no" and at.session_state["adv_voice"] is True
    assert "Start with: Prompt engineering + RAG" in _advice_text(at)
    q = ADV.Questionnaire(strict_format=True, examples=20)
    at = _app()
    at.query_params[ADV.QUERY_PARAM] = q.to_query()
    at.run()
    assert at.session_state["adv_format"] is True and at.session_state["adv_examples"] == 20
    assert "not ready yet" in _advice_text(at)
    bad = _app()
    bad.query_params[ADV.QUERY_PARAM] = "knows:perhaps"
    bad.run()
    assert not bad.exception and any("ignored" in w.value for w in bad.warning)
    assert "Prompt engineering only" in _advice_text(bad)


def test_prefill_button_stores_the_spec_and_opens_compare(data_dir):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("app_pages/5_Advisor.py").run()
    at.button(key="adv_demo").click().run()
    at.number_input(key="adv_repeats").set_value(3).run()
    at.button(key="adv_to_compare").click().run()
    assert not at.exception
    assert ADV.PREFILL_KEY not in at.session_state                     # the Compare page took the pre-fill ...
    spec = at.session_state["cmp_advice"]                               # ... and keeps it for the run it starts
    assert spec["kind"] == "compare_prefill" and spec["recommended"] == "prompt_rag" and spec["repeats"] == 3
    assert [s.name for s in ADV.prefill_specs(spec)] == ["prompt_rag", "fine_tuned_rag", "prompt_only"]
    assert spec["query"] == ADV.Questionnaire.demo().to_query()
    assert at.query_params[ADV.QUERY_PARAM] == spec["query"]
    assert any("Compare approaches" in t.value for t in at.title)        # the Compare page ran
    assert [at.session_state[f"cmp_{a['uid']}_name"] for a in at.session_state["cmp_approaches"]] == [
        "prompt_rag", "fine_tuned_rag", "prompt_only"]                   # ... with the advisor's approaches
    assert at.session_state["cmp_repeats"] == 3
    at.switch_page("app_pages/5_Advisor.py").run()                          # back: the answers are still there
    assert at.session_state["adv_knows"] == "no" and at.session_state["adv_examples"] == spec["advice"]["answers"]["examples"]
    assert "Start with: Prompt engineering + RAG" in _advice_text(at)


# ---- the ratings panel ------------------------------------------------------------------------------------------
def _panel(run_dir: str, answers: list):
    from ui.ratings import ratings_panel

    ratings_panel(run_dir, answers)


TRICKY = "**not bold** <b>raw html</b> [link](http://example.com)"


def _rated_run():
    from tests.compare.run_helpers import add_answer, make_run
    from core.compare import runner

    rid, qs = make_run(3)
    for q in qs:
        add_answer(rid, q.id, "prompt_only", 0.4, grade=4, answer=TRICKY if q is qs[0] else None)
        add_answer(rid, q.id, "short", 0.6, grade=2)
    run = runner.load_run(rid)
    from core.compare.summary import matrix_rows
    return run, matrix_rows(run)


def test_ratings_panel_rates_answers_shown_as_plain_text(data_dir):
    from core.compare import ratings as R

    run, rows = _rated_run()
    at = AppTest.from_function(_panel, args=(str(run.dir), rows), default_timeout=60).run()
    assert not at.exception
    first = at.selectbox(key="rate_pick").value
    assert first.endswith("/prompt_only/0")
    assert any(c.value == TRICKY for c in at.code)                       # shown verbatim in a code block
    assert not any("not bold" in m.value for m in at.markdown)
    # no name: refused, nothing written
    at.radio(key="rate_0_label").set_value("good")
    at.button(key="FormSubmitter:rate_form_0-Save rating").click().run()
    assert any("rater's name" in unescape_markdown(e.value) for e in at.error) and not R.latest(run.dir)
    at.text_input(key="rate_rater").input("ana")
    at.radio(key="rate_0_label").set_value("good")
    at.radio(key="rate_0_grade").set_value(4)
    at.text_input(key="rate_0_note").input("right price")
    at.button(key="FormSubmitter:rate_form_0-Save rating").click().run()
    assert not at.exception and not at.error
    (r,) = R.latest(run.dir)
    assert (r.answer_id, r.rater, r.label, r.grade, r.note) == (first, "ana", "good", 4, "right price")
    assert at.selectbox(key="rate_pick").value != first                 # moved on to the next unrated answer
    assert at.metric[0].value == "1/6"
    assert any("1 ratings of 1 answers" in t.value for t in at.text)
    # a fresh session (a refresh) sees the stored rating
    again = AppTest.from_function(_panel, args=(str(run.dir), rows), default_timeout=60).run()
    assert any(t.value.startswith("ana: good · grade 4 · right price") for t in again.text)
