"""Knowledge-update drill: change one fact in the documents, then see which approaches pick it up and how long
each kind of change takes to re-evaluate. Thin page: core/drill.py does the work in a job process; views are in
ui/drill.py. Session keys start with "dr_"; the drill job shown is in the URL (?job=<id>).
"""
from __future__ import annotations

import streamlit as st

from ui import drill as view
from ui import jobs as job_ui
from ui.common import page_setup, page_title

page_setup("dr")
ss = st.session_state
if "dr_job" not in ss:
    ss.dr_job = st.query_params.get("job") or None

page_title("dr")
st.caption("Facts change. RAG re-ingests the changed document; a fine-tune keeps the old fact until it is "
           "retrained; a prompt cannot know. This drill changes one fact, re-ingests it into a drill collection "
           "(your own collections are not touched) and asks the classic columns again, measuring each step.")
drill = view.chooser()
c1, c2 = st.columns([1, 3])
max_tokens = c1.number_input("Max tokens per answer", 16, 512, 96, step=16, key="dr_max_tokens")
if drill is not None:
    if c2.button("Run the drill", type="primary", key="dr_run"):
        view.start(drill, int(max_tokens))
    st.caption("The same from a terminal:")
    st.code(view.cli_line(drill), language="bash")
view.past_jobs()
job = job_ui.job_panel(ss.get("dr_job"), key="dr_panel")
if job is not None and job.state == "succeeded" and isinstance(job.result, dict):
    view.results(job.result)
