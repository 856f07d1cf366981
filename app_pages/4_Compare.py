"""Compare: every approach on the same questions in one view, measured, with a decision report.

Thin page: the views are in ui/compare.py; approaches, runs, scores, summaries, charts and reports live in
core.compare; batch runs are jobs (core.jobs) in a background process that writes <data>/compare/<run_id>/, and
their panel is ui/jobs.py. Session keys start with "cmp_"; the selected run and use case are in the URL
(?run=<id>&usecase=NAME).
"""
from __future__ import annotations

import streamlit as st

from ui import compare as cmp
from ui import usecase_select
from ui.common import page_setup, page_title

page_setup("cmp")
ss = st.session_state
uc = usecase_select.sidebar()        # ?usecase=NAME: its collection, prompts, question set and checks

page_title("cmp")
st.caption("Prompt engineering, RAG and fine-tuning on the same questions: accuracy, latency, cost and maintenance, "
           "measured — then a decision report.")
if "cmp_approaches" not in ss or ss.get("cmp_usecase", uc.name) != uc.name:
    cmp.set_preset()         # the classic approaches on the selected use case (again when another one is picked)
ss.cmp_usecase = uc.name
cmp.apply_prefill()          # the Advisor's "Pre-fill a Compare run" (once; from the session or ?advice=...)
if "cmp_run" not in ss or (st.query_params.get("run") and st.query_params.get("run") != ss.cmp_run):
    ss.cmp_run = st.query_params.get("run") or None      # a link (e.g. the Use Case page's) selects its run
cmp.sidebar_builder()
specs, problems = cmp.current_specs()
tabs = st.tabs(["Single question", "Batch run", "Results", "Charts", "Decision report"])
with tabs[0]:
    cmp.single_tab(specs)
with tabs[1]:
    cmp.advice_note()
    cmp.batch_tab(specs, problems)
run, summary = cmp.load_selected()
with tabs[2]:
    cmp.results_tab(run, summary)
with tabs[3]:
    cmp.charts_tab(run, summary)
with tabs[4]:
    cmp.report_tab(run, summary)
