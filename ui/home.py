"""The home page: what the workbench is for, live backend status, a quick generate box, the page links and the
demo scenario's tour. app.py runs `render` as the default page of its navigation.

Kept light on purpose: no torch / llama_cpp / lancedb import here (the embedded model loads on the first generate).
"""
from __future__ import annotations

import streamlit as st

from core.config import get_settings
from core.errors import WorkbenchError
from core.llm.base import GenParams
from core.scenario import load_scenario
from ui import nav
from ui.safe import md
from ui.common import (backend_picker, backend_statuses, get_backend, key, page_setup, page_title, refresh_statuses,
                       show_error, show_text, show_usage, state)

OLLAMA_HELP = ("1. Install Ollama on this or another machine (https://ollama.com/download).\n"
               "2. Start it: `ollama serve`, then pull a model: `ollama pull llama3.2:1b`.\n"
               "3. If it runs elsewhere, start the workbench with `OLLAMA_HOST=host:11434`.\n\n"
               "Until then the built-in embedded model does everything.")
OPENAI_HELP = ("Any OpenAI-compatible server works (vLLM, llama.cpp server, LM Studio):\n\n"
               "`OPENAI_BASE_URL=http://gpu-box:8000/v1 OPENAI_API_KEY=... make run`\n\n"
               "Locally, for a try: `python -m llama_cpp.server --model <file.gguf>` and "
               "`OPENAI_BASE_URL=http://127.0.0.1:8000/v1`.")


def status_cards() -> None:
    head, refresh = st.columns([6, 1])
    head.subheader("LLM backends")
    if refresh.button("↻ Refresh", key=key("home", "refresh"), help="Probe every backend again (cached for 10 s otherwise)."):
        refresh_statuses()
    default_backend = get_settings().backend
    statuses = backend_statuses()
    for col, status in zip(st.columns(len(statuses)), statuses):
        with col.container(border=True):
            default = " · default" if status.name == default_backend else ""
            colour = "green" if status.reachable else "red"
            st.markdown(f"**:{colour}[● {md(status.name)}]**{default}")
            st.caption(md(status.reason))
            if status.models:
                st.markdown("\n".join(f"- {md(m.id)}" for m in status.models[:8]))
                if len(status.models) > 8:
                    st.caption(f"… and {len(status.models) - 8} more")
            loaded = status.detail.get("loaded") if status.detail else None
            if loaded:
                st.caption("Loaded: " + ", ".join(f"{md(m['model'])} ({m['load_s']:.2f} s to load)" for m in loaded))
            build = status.detail.get("build") if status.detail else None
            if build:
                with st.expander("llama.cpp build (CPU features)"):
                    # set-up's record (scripts/setup_llama.py); plain text, so a bug report can copy it as is
                    st.text(f"profile: {build['profile']}  ·  smoke check: "
                            f"{'passed ' + build['verified_at'] if build['smoke_ok'] else 'not recorded'}")
                    st.code(build["system_info"] or "no system info recorded: run `make setup`", language=None)
                    if build["cmake_args"]:
                        st.code(build["cmake_args"], language=None)
            if not status.reachable and status.name == "ollama":
                with st.expander("How to use Ollama"):
                    st.markdown(OLLAMA_HELP)
            if not status.reachable and status.name == "openai":
                with st.expander("How to use a shared GPU server"):
                    st.markdown(OPENAI_HELP)


def quick_generate() -> None:
    S = state("home")
    st.subheader("Quick generate")
    backend_name, model = backend_picker(S.key(), label="Generate with")
    with st.form(S.key("generate"), border=True):
        prompt = st.text_area("Prompt", key=S.key("prompt"), height=100,
                              placeholder="e.g. How do I connect my Google Calendar to Tidewave?",
                              help="Ctrl+Enter submits.")
        system = st.text_input("System prompt (optional)", key=S.key("system"),
                               help="Instructions the model follows for the whole chat.")
        c1, c2, c3 = st.columns(3)
        temperature = c1.slider("Temperature", 0.0, 2.0, 0.2, 0.05, key=S.key("temperature"),
                                help="Higher = more varied. Small models do best around 0.2.")
        max_tokens = c2.number_input("Max tokens", 1, 4096, 200, key=S.key("max_tokens"),
                                     help="Upper bound on the answer's length.")
        seed = c3.number_input("Seed", 0, 2**31 - 1, 42, key=S.key("seed"),
                               help="Same seed + settings = same answer.")
        submitted = st.form_submit_button("Generate", type="primary")

    if not submitted:
        if S.get("last"):
            with st.container(border=True, key=S.key("answer")):
                show_text(S["last"]["text"])
            show_usage(S["last"]["usage"])
        return
    S.pop("last")
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
            st.warning(md(report.message()))
        stream = backend.chat_stream(messages, params, model)
        with st.container(border=True, key=S.key("answer")):
            box = st.empty()
            for _ in stream:
                box.text(stream.text)
            show_text(stream.text, box)
        S["last"] = {"text": stream.text, "usage": stream.usage}
        show_usage(stream.usage)
        st.caption("TTFT = time to the first token; Tok/s = output tokens per second after the first one; "
                   "Latency = whole request.")
    except Exception as exc:  # noqa: BLE001 - never a traceback in the UI (typed errors read as messages)
        show_error(exc)


def page_links() -> None:
    st.subheader("Pages")
    cols = st.columns(2)
    for i, p in enumerate(q for q in nav.PAGES if q.script):
        with cols[i % 2].container(border=True):
            st.page_link(p.script, label=p.title, icon=p.icon)
            st.caption(p.description)


def tour() -> None:
    st.subheader("Quick tour: the demo scenario")
    try:
        sc = load_scenario()
    except WorkbenchError as exc:
        show_error(exc)
        return
    product = sc.product or "a fictional SaaS product"
    st.markdown(
        f"The sample data in `sample_docs/` is the support desk of **{md(product)}**"
        + (f" — {md(sc.description)}" if sc.description else ".") + "\n\n"
        f"1. **Prompt Lab** — try the prompts in `sample_docs/prompts/` (zero-shot, few-shot, chain-of-thought, "
        f"guardrails) and see what prompting alone gets you.\n"
        f"2. **Knowledge Base** — ingest `sample_docs/knowledge/` (Markdown, text, HTML, PDF, DOCX) into the "
        f"{md(sc.collection)} collection, then ask questions with retrieved context.\n"
        f"3. **Fine-Tune** — train a LoRA adapter on the support transcripts in `sample_docs/finetune/` so the model "
        f"learns the house voice; it appears here as model `ft:<name>`.\n"
        f"4. **Compare** — run all three on the question set `sample_docs/eval/questions.jsonl` and read quality, "
        f"latency and cost side by side."
    )


def render() -> None:
    page_setup("home")
    page_title("home")
    st.markdown(
        "Try **prompt engineering**, **retrieval-augmented generation** and **LoRA fine-tuning** on one use case, "
        "then compare them side by side with measured quality, latency and cost. "
        "Everything runs on this machine (a small llama.cpp model is built in); point it at Ollama or an "
        "OpenAI-compatible GPU server when you have one."
    )
    status_cards()
    quick_generate()
    page_links()
    tour()
