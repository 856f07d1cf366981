"""Fine-Tune: LoRA and full fine-tuning jobs from the browser. Data checks -> train (Unsloth, in its own process) -> live curves ->
compare runs -> try the adapter next to the base model -> export (PEFT, GGUF LoRA, merged GGUF, Ollama) + parity.

Thin page: the views are in ui/fine_tune.py, the logic in core.finetune, the job panel in ui/jobs.py. Training,
exports and the parity check run as jobs (core.jobs) in their own process; opening the page never starts one.
Session keys start with "ft_"; the selected run is in the URL (?run=<id>).
"""
from __future__ import annotations

import streamlit as st

from ui import fine_tune as ft
from ui import usecase_select
from ui.common import page_setup, page_title

page_setup("ft")
ft.init_state()
uc = usecase_select.sidebar()        # ?usecase=NAME: its training dataset

page_title("ft")
st.caption("Teach the model the support voice with a LoRA adapter or a full fine-tune of every weight: check the "
           "transcripts, train (Unsloth, in its own process), watch the curves, try the result next to the base model "
           "and export it for llama.cpp/Ollama.")
t_data, t_train, t_runs, t_try = st.tabs(["Data", "Train", "Runs", "Try & export"])
with t_data:
    dataset = ft.data_tab(uc)
with t_train:
    ft.train_tab(dataset)
with t_runs:
    ft.runs_tab()
with t_try:
    ft.try_tab()
