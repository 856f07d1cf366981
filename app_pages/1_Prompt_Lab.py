"""Prompt Lab: 2-4 prompt variants side by side, run together on the same input, measured, versioned.

Thin page: the views are in ui/prompt_lab.py; rendering, running, validation and versioning live in core.prompts
(edit.py, run.py, library.py, spec.py). Session keys start with "pl_" (ui.common.state); the loaded prompt
versions and the open tab are in the URL (?variants=zero_shot@1,few_shot@1&pl_tab=Batch).
"""
from __future__ import annotations

import streamlit as st

from core.prompts.edit import all_refs
from ui import prompt_lab as V
from ui import usecase_select
from ui.common import page_setup, page_title

page_setup("pl")
S = V.page_state()
lib = V.library(S)
uc = usecase_select.sidebar()        # ?usecase=NAME: its prompt set and question set
V.init(S, lib, uc)
V.sidebar(S, lib)
n = int(S["n"])

page_title("pl")
st.caption("Edit prompt variants side by side, run them on the same input, compare quality, speed and cost, and "
           "save the winner as a new version.")
tab_play, tab_batch, tab_versions = st.tabs(V.TABS, key=S.key("tab"), bind="query-params")

specs, spec_errors, targets = {}, {}, {}
with tab_play:
    refs = all_refs(lib)
    for i, col in enumerate(st.columns(n, gap="small")):
        with col.container(border=True):
            spec, error, targets[i] = V.variant_editor(S, i, refs)
            if spec is not None:
                specs[i] = spec
            else:
                spec_errors[i] = error
    variables = V.inputs(S, specs)
    run_clicked = st.button("▶ Run all", type="primary", key=S.key("run"), disabled=not specs,
                            help="Run every valid variant on this input; outputs stream into their columns.")
    st.caption("Metrics: **Prompt tok** / **Output tok** = tokens in / out (the cost), **TTFT** = time to first "
               "token, **Tok/s** = generation speed after the first token, **Latency** = total wall time; the bar "
               "shows how much of the model's context window the request uses.")
    V.outputs(S, n, specs, targets, variables, run_clicked)

with tab_batch:
    V.batch_tab(S, n, specs, targets, variables)

with tab_versions:
    V.versions_tab(S, n, lib, specs, spec_errors)
