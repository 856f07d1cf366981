"""Advisor: eight questions about the use case -> where to start (prompting, RAG, fine-tuning), the next step up,
why, what would change the answer, and a button that pre-fills a Compare run testing the advice.

Thin page: the rules live in core.advisor. Session keys start with "adv_"; the answers are mirrored in the URL
(?advice=...), so a refresh or a shared link shows the same advice. Everything shown is plain text.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import advisor as ADV
from core.errors import WorkbenchError
from ui.common import page_setup, page_title, show_error
from ui.safe import grid, md

page_setup("adv")
ss = st.session_state
COMPARE_PAGE = Path(__file__).resolve().with_name("4_Compare.py")   # absolute: works from any entrypoint

KNOWS_TEXT = {"yes": "Yes, it knows them", "partly": "Partly", "no": "No (private or new facts)"}
CHANGE_TEXT = {"never": "Never", "yearly": "About once a year", "monthly": "Monthly", "weekly": "Weekly",
               "daily": "Daily"}
BUDGET_TEXT = {"none": "None", "low": "A few GPU-hours now and then", "high": "Regular retraining"}
FIELDS = {"knows_facts": "adv_knows", "facts_change": "adv_change", "citations": "adv_cite",
          "strict_format": "adv_format", "strict_voice": "adv_voice", "examples": "adv_examples",
          "queries_per_month": "adv_qpm", "latency_budget_s": "adv_latency", "training_budget": "adv_budget"}


def load_answers(q: ADV.Questionnaire) -> None:
    """Put a questionnaire into the widgets (before they are drawn)."""
    for name, key in FIELDS.items():
        v = getattr(q, name)
        ss[key] = (float(v) if v is not None else 0.0) if name == "latency_budget_s" else v


def use_demo() -> None:
    try:
        load_answers(ADV.Questionnaire.demo())
    except WorkbenchError as exc:
        ss.adv_problem = str(exc)


def current_answers() -> ADV.Questionnaire:
    lat = float(ss.get("adv_latency") or 0.0)
    return ADV.Questionnaire(
        knows_facts=ss.adv_knows, facts_change=ss.adv_change, citations=bool(ss.adv_cite),
        strict_format=bool(ss.adv_format), strict_voice=bool(ss.adv_voice), examples=int(ss.adv_examples),
        queries_per_month=int(ss.adv_qpm), latency_budget_s=lat if lat > 0 else None,
        training_budget=ss.adv_budget).validate()


# widgets forget their values when another page is shown: restore the last answers of this session, else the
# URL's, else the simplest case
if "adv_knows" not in ss:
    q0 = ADV.Questionnaire()
    if isinstance(ss.get("adv_answers"), dict):
        q0 = ADV.Questionnaire(**ss.adv_answers)
    elif st.query_params.get(ADV.QUERY_PARAM):
        try:
            q0 = ADV.Questionnaire.from_query(st.query_params[ADV.QUERY_PARAM])
        except WorkbenchError as exc:
            ss.adv_problem = f"The link's advisor answers were ignored: {exc}"
    load_answers(q0)

page_title("adv")
st.caption("Answer eight questions about your use case. The advice follows the start-simple progression: prompting "
           "first, retrieval when the model lacks knowledge, fine-tuning when prompting and retrieval cannot give "
           "the consistency you need. Then test it on your own questions in Compare.")
if ss.get("adv_problem"):
    st.warning(md(ss.pop("adv_problem")))
st.button("Fill in the Tidewave demo answers", key="adv_demo", on_click=use_demo,
          help="The shipped support-desk scenario: a fictional product, updated facts, cited answers, a fixed voice.")

with st.form("adv_form", border=True):
    st.radio("Does the base model already know the facts it must answer with?", list(ADV.KNOWS),
             format_func=KNOWS_TEXT.get, horizontal=True, key="adv_knows")
    st.selectbox("How often do those facts change?", list(ADV.CHANGES), format_func=CHANGE_TEXT.get,
                 key="adv_change")
    c1, c2, c3 = st.columns(3)
    c1.checkbox("Citations / source attribution required", key="adv_cite")
    c2.checkbox("Strict output format required", key="adv_format", help="e.g. a JSON schema on every answer")
    c3.checkbox("Strict brand voice required", key="adv_voice", help="a persona, fixed greeting, sign-off ...")
    c1, c2, c3 = st.columns(3)
    c1.number_input("Examples of the desired behaviour", 0, ADV.MAX_EXAMPLES, step=50, key="adv_examples",
                    help=f"Curated input -> ideal answer pairs. A LoRA fine-tune wants at least "
                         f"{ADV.FT_MIN_EXAMPLES}.")
    c2.number_input("Queries per month", 0, ADV.MAX_QUERIES, step=1000, key="adv_qpm")
    c3.number_input("Latency budget, p95 seconds (0 = none)", 0.0, 3600.0, step=0.5, key="adv_latency")
    st.radio("Budget for training / GPU", list(ADV.BUDGETS), format_func=BUDGET_TEXT.get, horizontal=True,
             key="adv_budget")
    st.form_submit_button("Advise", type="primary")

try:
    answers = current_answers()
    rec = ADV.advise(answers)
except WorkbenchError as exc:
    show_error(exc)
    st.stop()
st.query_params[ADV.QUERY_PARAM] = answers.to_query()
ss.adv_answers = answers.to_dict()

st.subheader("Recommendation")
st.text(f"Start with {rec.start.label}."
        + (f" Next step up: {rec.next_step.label}." if rec.next_step else " No next step needed."))
st.code(rec.text(), language=None, wrap_lines=True)

st.subheader("Test it in Compare")
c1, c2 = st.columns([1, 2])
repeats = c1.number_input("Repeats per question", 1, 20, 1, key="adv_repeats",
                          help="Each question answered N times with seeds base+0..N-1; only useful with "
                               "temperature > 0. Shows the spread and widens the intervals honestly.")
all4 = c2.checkbox("All four classic approaches", key="adv_all4",
                   help="Otherwise: the recommended start, its next step, and the simpler/nearer alternative.")
try:
    spec = ADV.compare_spec(rec, repeats=int(repeats), include_all=bool(all4))
except WorkbenchError as exc:
    show_error(exc)
    st.stop()
# a plain-text grid, not st.dataframe: a few rows, and no pandas/pyarrow import on the page's first render
grid([{"approach": a.split("=", 1)[0], "definition": a.split("=", 1)[1],
       "role": "recommended" if a.startswith(rec.start.approach + "=") else
               "next step" if rec.next_step and a.startswith(rec.next_step.approach + "=") else "alternative"}
      for a in spec["approaches"]], widths=[1, 4, 1])
if st.button("Pre-fill a Compare run with these approaches", key="adv_to_compare", type="primary"):
    ss[ADV.PREFILL_KEY] = spec
    st.switch_page(COMPARE_PAGE, query_params={ADV.QUERY_PARAM: answers.to_query()})
st.caption("The same from the command line:")
st.code(ADV.advise_cli_line(answers) + "\n" + spec["cli"], language="bash", wrap_lines=True)
st.caption("After a run: `python -m core advise ... --attach RUN` stores this advice with the run, so its decision "
           "report quotes it and says whether the measurement contradicts it.")
