"""Use Case: bring your own documents and past answers, get a reviewed question set, a training dataset and the
command of a first comparison. Thin page: the views are in ui/usecase.py, the logic in core.usecase.

Steps: 1 pick or create a use case (?usecase=NAME) · 2 documents (indexed as a background job) · 3 past answers
(column mapping, duplicates, personal data) · 4 derived voice/format checks · 5 candidate questions · 6 review ·
7 first comparison. Session keys start with "uc_".
"""
from __future__ import annotations

import streamlit as st

from ui import usecase as views
from ui.common import page_setup, page_title

page_setup("uc")
page_title("uc")
st.write("From a folder of documents and a file of past answers to a reviewed question set, a training dataset and "
         "a first comparison - on the built-in model, no GPU needed.")

views.new_usecase_form()
uc = views.pick_usecase()
views.readonly_banner(uc)

# on_change="rerun": a tab switch reruns the page and each tab knows whether it is open (tab.open), so the review
# table (pandas + pyarrow, ~0.5 s) is only built while its tab is open or holds unsaved edits
steps = st.tabs(["1 · Documents", "2 · Past answers", "3 · Checks", "4 · Generate questions", "5 · Review",
                 "6 · First comparison"], key="uc_step", on_change="rerun")
with steps[0]:
    views.documents_view(uc)
with steps[1]:
    views.answers_view(uc)
with steps[2]:
    views.checks_view(uc)
with steps[3]:
    views.generate_view(uc)
with steps[4]:
    if steps[4].open or views.review_has_unsaved_edits(uc):
        views.review_view(uc)
with steps[5]:
    views.comparison_view(uc)
