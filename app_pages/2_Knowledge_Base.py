"""Knowledge Base: ingest documents into a LanceDB collection, compare retrieval modes, answer with citations,
evaluate retrieval. Thin page: the views are in ui/knowledge_base.py, the logic in core.rag (api.py, jobs.py) and
the job panel in ui/jobs.py. Session keys start with "kb_"; the selected use case and collection are in the URL
(?usecase=tidewave&collection=support). Opening the page never loads the embedder (no torch import).
"""
from __future__ import annotations

import streamlit as st

from ui import knowledge_base as kb
from ui import usecase_select
from ui.common import page_setup, page_title

page_setup("kb")

# first visit: the sample collection is indexed by a background job
kb.ensure_sample()
uc = usecase_select.sidebar()        # ?usecase=NAME: its collection is the default one
state, choices = kb.sidebar(uc)

page_title("kb")
st.caption("RAG gives the model facts it never saw: documents are split into chunks, embedded, stored in LanceDB, "
           "and the best chunks for a question are put into the prompt, numbered, so the answer can cite them.")
kb.sample_retry(state, choices)

tab_docs, tab_search, tab_ask, tab_eval = st.tabs(["Documents", "Retrieval playground", "Ask with citations",
                                                   "Retrieval evaluation"])
with tab_docs:
    kb.documents_tab(state)
with tab_search:
    kb.search_tab(state)
with tab_ask:
    kb.ask_tab(state)
with tab_eval:
    kb.eval_tab(state)
