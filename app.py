"""Home page of Approach Workbench: what it is for, live backend status, a quick generate box, the page links.

Kept light on purpose: no torch / llama_cpp / lancedb import here (the embedded model loads on the first generate).
"""
from __future__ import annotations

import streamlit as st

from core.config import PROJECT_ROOT, get_settings
from core.errors import WorkbenchError
from core.llm.base import GenParams
from core.scenario import load_scenario
from ui.common import (backend_picker, backend_statuses, get_backend, page_setup, refresh_statuses, show_error,
                       show_usage)

page_setup("Home", "🧪")

PAGES = [
    ("pages/1_Prompt_Lab.py", "Prompt Lab", "✍️",
     "Write and version prompts (zero-shot, few-shot, chain-of-thought, guardrails) and try them on any backend."),
    ("pages/2_Knowledge_Base.py", "Knowledge Base", "📚",
     "Ingest documents into a LanceDB collection and test retrieval (RAG)."),
    ("pages/3_Fine_Tune.py", "Fine-Tune", "🎛️",
     "Train a LoRA adapter on support transcripts and try it as model `ft:<name>`."),
    ("pages/4_Compare.py", "Compare", "⚖️",
     "Run prompt-only, RAG and fine-tuned variants on the same question set: quality, latency, cost."),
]

st.title("🧪 Approach Workbench")
st.markdown(
    "Try **prompt engineering**, **retrieval-augmented generation** and **LoRA fine-tuning** on one use case, "
    "then compare them side by side with measured quality, latency and cost. "
    "Everything runs on this machine (a small llama.cpp model is built in); point it at Ollama or an "
    "OpenAI-compatible GPU server when you have one."
)

# ---- backend status -----------------------------------------------------------------------------------------------
head, refresh = st.columns([6, 1])
head.subheader("LLM backends")
if refresh.button("↻ Refresh", key="home_refresh", help="Probe every backend again (cached for 10 s otherwise)."):
    refresh_statuses()

settings = get_settings()
statuses = backend_statuses()
cols = st.columns(len(statuses))
for col, status in zip(cols, statuses):
    with col.container(border=True):
        default = " · default" if status.name == settings.backend else ""
        if status.reachable:
            st.markdown(f"**:green[● {status.name}]**{default}")
        else:
            st.markdown(f"**:red[● {status.name}]**{default}")
        st.caption(status.reason)
        if status.models:
            st.markdown("\n".join(f"- `{m.id}`" for m in status.models[:8]))
            if len(status.models) > 8:
                st.caption(f"… and {len(status.models) - 8} more")
        loaded = status.detail.get("loaded") if status.detail else None
        if loaded:
            st.caption("Loaded: " + ", ".join(f"{m['model']} ({m['load_s']:.2f} s to load)" for m in loaded))
        if not status.reachable and status.name == "ollama":
            with st.expander("How to use Ollama"):
                st.markdown(
                    "1. Install Ollama on this or another machine (https://ollama.com/download).\n"
                    "2. Start it: `ollama serve`, then pull a model: `ollama pull llama3.2:1b`.\n"
                    "3. If it runs elsewhere, start the workbench with `OLLAMA_HOST=host:11434`.\n\n"
                    "Until then the built-in embedded model does everything.")
        if not status.reachable and status.name == "openai":
            with st.expander("How to use a shared GPU server"):
                st.markdown(
                    "Any OpenAI-compatible server works (vLLM, llama.cpp server, LM Studio):\n\n"
                    "`OPENAI_BASE_URL=http://gpu-box:8000/v1 OPENAI_API_KEY=... make run`\n\n"
                    "Locally, for a try: `python -m llama_cpp.server --model <file.gguf>` and "
                    "`OPENAI_BASE_URL=http://127.0.0.1:8000/v1`.")

# ---- quick generate -----------------------------------------------------------------------------------------------
st.subheader("Quick generate")
backend_name, model = backend_picker("home", label="Generate with")
with st.form("home_generate", border=True):
    prompt = st.text_area("Prompt", key="home_prompt", height=100,
                          placeholder="e.g. How do I connect my Google Calendar to Tidewave?",
                          help="Ctrl+Enter submits.")
    system = st.text_input("System prompt (optional)", key="home_system",
                           help="Instructions the model follows for the whole chat.")
    c1, c2, c3 = st.columns(3)
    temperature = c1.slider("Temperature", 0.0, 2.0, 0.2, 0.05, key="home_temperature",
                            help="Higher = more varied. Small models do best around 0.2.")
    max_tokens = c2.number_input("Max tokens", 1, 4096, 200, key="home_max_tokens",
                                 help="Upper bound on the answer's length.")
    seed = c3.number_input("Seed", 0, 2**31 - 1, 42, key="home_seed", help="Same seed + settings = same answer.")
    submitted = st.form_submit_button("Generate", type="primary")

if submitted:
    st.session_state.pop("home_last", None)
    messages = ([{"role": "system", "content": system}] if system.strip() else []) + \
               [{"role": "user", "content": prompt}]
    try:
        params = GenParams(temperature=float(temperature), max_tokens=int(max_tokens), seed=int(seed)).validate()
        backend = get_backend(backend_name)
        if not backend.is_loaded(model):
            with st.spinner("Loading model…"):
                backend.load(model)
        report = backend.check_context(messages, params, model)
        if report.warn:
            st.warning(report.message())
        stream = backend.chat_stream(messages, params, model)
        with st.container(border=True, key="home_answer"):
            st.write_stream(stream)
        st.session_state["home_last"] = {"text": stream.text, "usage": stream.usage}
        show_usage(stream.usage)
        st.caption("TTFT = time to the first token; Tok/s = output tokens per second after the first one; "
                   "Latency = whole request.")
    except WorkbenchError as exc:
        show_error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback in the UI
        show_error(exc)
elif st.session_state.get("home_last"):
    last = st.session_state["home_last"]
    with st.container(border=True, key="home_answer"):
        st.markdown(last["text"])
    show_usage(last["usage"])

# ---- pages ----------------------------------------------------------------------------------------------------
st.subheader("Pages")
page_cols = st.columns(2)
for i, (path, label, icon, desc) in enumerate(PAGES):
    with page_cols[i % 2].container(border=True):
        if (PROJECT_ROOT / path).is_file():
            st.page_link(path, label=label, icon=icon)
        else:
            st.markdown(f"{icon} **{label}** _(not installed)_")
        st.caption(desc)

# ---- quick tour -------------------------------------------------------------------------------------------------
st.subheader("Quick tour: the demo scenario")


try:
    scn = load_scenario().raw
except WorkbenchError as exc:
    scn = {}
    show_error(exc)
product = scn.get("product", "a fictional SaaS product")
st.markdown(
    f"The sample data in `sample_docs/` is the support desk of **{product}**"
    + (f" — {scn['description']}" if scn.get("description") else ".") + "\n\n"
    f"1. **Prompt Lab** — try the prompts in `sample_docs/prompts/` (zero-shot, few-shot, chain-of-thought, "
    f"guardrails) and see what prompting alone gets you.\n"
    f"2. **Knowledge Base** — ingest `sample_docs/knowledge/` (Markdown, text, HTML, PDF, DOCX) into the "
    f"`{scn.get('collection', 'support')}` collection, then ask questions with retrieved context.\n"
    f"3. **Fine-Tune** — train a LoRA adapter on the support transcripts in `sample_docs/finetune/` so the model "
    f"learns the house voice; it appears here as model `ft:<name>`.\n"
    f"4. **Compare** — run all three on the question set `sample_docs/eval/questions.jsonl` and read quality, "
    f"latency and cost side by side."
)
