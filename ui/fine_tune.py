"""Views of the Fine-Tune page: data checks, the job spec form, the training job panel, runs, try & export.

Training, the merged-GGUF export and the parity check (which load the full fp32 model) run as jobs in their own
process (core.jobs); this page only starts them and reads their run folders. Opening the page never starts a job.
Session keys start with "ft_"; the selected run is in the URL (?run=<id>).
"""
from __future__ import annotations

from pathlib import Path

from ui.common import lazy_pandas as pd  # imported on first use
import streamlit as st

from core import jobs as joblayer
from core.config import SAMPLE_DOCS, get_settings
from core.errors import DatasetError, WorkbenchError
from core.finetune import runner, views
from core.finetune.datasets import Dataset, parse_bytes, split
from core.finetune.raft import describe_variant
from core.finetune.spec import ALL_LINEAR, METHOD_LEARNING_RATE, METHODS, PRESETS, TRAINERS, JobSpec, preset_spec
from core.jobs.states import ICONS
from ui import safe
from ui.common import show_error
from ui.jobs import job_panel, start_next_button

ss = st.session_state
SAMPLES = {
    "Tidewave transcripts (chat messages)": SAMPLE_DOCS / "finetune" / "train.chat.jsonl",
    "Tidewave transcripts (Alpaca)": SAMPLE_DOCS / "finetune" / "train.alpaca.jsonl",
    "Tidewave transcripts (ShareGPT)": SAMPLE_DOCS / "finetune" / "train.sharegpt.jsonl",
}
HELDOUT = SAMPLE_DOCS / "finetune" / "heldout.chat.jsonl"
SPEC_FIELDS = ["base_model", "name", "method", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate",
               "epochs", "max_steps", "batch_size", "grad_accum", "max_seq_len", "warmup_steps", "load_in_4bit",
               "seed", "val_fraction", "eval_steps", "early_stopping_patience", "trainer", "threads", "data_variant"]
VARIANT_LABELS = {"plain": "Plain transcripts",
                  "raft": "Retrieval-augmented (RAFT): each question with its retrieved context, answers cite [n]"}
METHOD_LABELS = {"lora": "LoRA adapter", "full": "Full fine-tune (every weight)", "qlora": "QLoRA (4-bit base, CUDA only)"}
EXPORTS = {"peft": ("PEFT adapter", "ft_exp_peft"), "gguf-lora": ("GGUF LoRA", "ft_exp_lora"),
           "gguf-merged": ("Merged GGUF", "ft_exp_merged"), "ollama": ("Ollama Modelfile", "ft_exp_ollama")}


# ---- spec state ------------------------------------------------------------------------------------------------
def load_preset(name: str) -> None:
    spec = preset_spec(name)
    for f in SPEC_FIELDS:
        ss[f"ft_{f}"] = getattr(spec, f)
    ss.ft_preset_loaded = name


def _variant_changed() -> None:
    """RAFT rows carry their retrieved context: raise the max sequence length to what they need."""
    from core.finetune.spec import MIN_SEQ_LEN

    need = MIN_SEQ_LEN.get(ss.ft_data_variant, 0)
    if int(ss.get("ft_max_seq_len") or 0) < need:
        ss.ft_max_seq_len = need


def _method_changed() -> None:
    """Switching the method switches to its default learning rate (a full fine-tune needs a far lower one)."""
    ss.ft_learning_rate = METHOD_LEARNING_RATE.get(ss.ft_method, ss.ft_learning_rate)


def run_card(final: dict, method: str | None, key: str, data_variant: str | None = None) -> None:
    """The measured card of a finished run (method, params, memory, s/step, artifact size, load time, losses)."""
    st.dataframe(pd.DataFrame(views.run_card(final, method, data_variant)), hide_index=True, width="stretch", key=key)


def init_state() -> None:
    if "ft_preset_loaded" not in ss:
        ss.ft_preset = "quick"
        load_preset("quick")


def current_spec() -> JobSpec:
    return JobSpec.from_dict({f: ss[f"ft_{f}"] for f in SPEC_FIELDS if f"ft_{f}" in ss})


def check_base_model_path(base_model: str) -> None:
    """A base model typed as a folder path must lie under the configured roots (WORKBENCH_PATH_ROOTS), like every
    path typed in the UI; a model id (no path separator) is left to the spec's own checks."""
    text = str(base_model or "").strip()
    if "/" in text or text.startswith(("~", ".")):
        from core.paths import ui_path
        ui_path(text, kind="dir")


def selected_run_id() -> str | None:
    return st.query_params.get("run")


def select_run(run_id: str) -> None:
    st.query_params["run"] = run_id


def token_tools(base_model: str):
    """(count, preview) of the base model's tokenizer + chat template. The packaged model goes through llama.cpp
    (no torch on the page); another base model loads its Hugging Face tokenizer only when the user asks."""
    from core.finetune.datasets import light_token_tools, render_preview, token_counter
    tools = light_token_tools(base_model)
    if tools is not None:
        return tools
    if not st.toggle("Check lengths with the model's tokenizer", key="ft_check_lengths",
                     help="Loads the base model's Hugging Face tokenizer (imports transformers)."):
        st.caption("Row lengths are checked against max sequence length when the job starts.")
        return None, None
    with st.spinner("Loading the model's tokenizer …"):
        tok = _hf_tokenizer(base_model)
    return token_counter(tok), (lambda messages: render_preview(messages, tok))


@st.cache_resource(show_spinner=False)
def _hf_tokenizer(base_model: str):
    from core.finetune.datasets import load_tokenizer
    return load_tokenizer(base_model)


# ---- the training job panel ------------------------------------------------------------------------------------
def _details(job: joblayer.Job, live: bool) -> None:
    st_ = job.status
    st.caption(f"Trainer: {safe.md(st_.get('trainer') or '…')} on {safe.md(st_.get('device') or '…')}. {safe.md(st_.get('note') or '')}")
    run = runner.Run(job.id, job.dir, {}, st_)
    rows = run.metrics
    h = views.headline(st_, rows)
    c = st.columns(5)
    c[0].metric("Train loss", h["train_loss"], delta=h["train_delta"], delta_color="inverse")
    c[1].metric("Eval loss", h["eval_loss"])
    c[2].metric("Tokens/s", h["tokens_per_s"])
    c[3].metric("Memory (RSS)", h["rss"])
    c[4].metric("Learning rate", h["lr"])
    st.caption("Train loss: cross-entropy on the assistant answers of the batch (lower = closer to the transcripts). "
               "Eval loss: the same on held-out rows the model never trains on; if it rises while train loss falls, "
               "the adapter is memorising. Tokens/s: training throughput. Memory: resident memory of the job.")
    if rows:
        st.plotly_chart(views.curves_figure([run]), key=f"ft_curve_{job.id}_{'live' if live else 'static'}")
    elif job.active:
        st.info("Waiting for the first training step (loading the model takes a few seconds) …")


def _outcome(job: joblayer.Job) -> None:
    st_ = job.status
    if job.state == "succeeded":
        final = st_.get("final") or {}
        st.success(f"Finished: {final.get('steps')} steps in {views.fmt_s(final.get('train_seconds'))}, loss "
                   f"{final.get('first_loss') or 0:.3f} → {final.get('last_loss') or 0:.3f}. Adapter "
                   f"{safe.md(final.get('model_id') or final.get('adapter_dir'))} is ready in the Try & export tab "
                   "and in the Prompt Lab model list.")
        run_card(final, job.spec.get("method"), key=f"ft_card_{job.id}", data_variant=describe_variant(job.spec))
    elif job.state in ("failed", "interrupted") and job.error:
        st.error(safe.md(f"The job failed: {job.error}" if job.state == "failed" else job.error))
    elif job.state == "cancelled":
        st.warning(f"Cancelled: {safe.md(job.message)}")


def training_panel(run_id: str | None) -> None:
    if not run_id:
        st.info("No job selected yet: start one above, or pick a run in the Runs tab.")
        return
    job_panel(run_id, key="ft", poll_s=2, title=f"Run `{run_id}`", details=_details, outcome=_outcome,
              progress_text=lambda job: views.step_text(job.status, job.active), progress_done=True,
              cancel_label="Cancel job",
              cancel_help="Stops at the next step (the process is killed if it does not stop within 20 s).")


# ---- Data tab ------------------------------------------------------------------------------------------------
def samples(uc=None) -> dict[str, Path]:
    """The training files offered: the selected use case's dataset, or the demo's transcripts in three formats."""
    if uc is None or uc.builtin:
        return SAMPLES
    return {f"Use case {uc.name}: training rows (chat messages)": uc.train}


def data_tab(uc=None) -> Dataset | None:
    """`uc`: the selected use case (ui.usecase_select): its train.chat.jsonl is the offered dataset."""
    s = get_settings()
    own = uc is not None and not uc.builtin
    if ss.get("ft_usecase", uc.name if uc else "") != (uc.name if uc else ""):
        ss.pop("ft_sample", None)                  # another use case: its own files
    ss.ft_usecase = uc.name if uc else ""
    source = st.radio("Training data", ["Sample transcripts", "Upload a file"], horizontal=True, key="ft_source",
                      format_func=lambda o: f"Use case {uc.name}" if own and o == "Sample transcripts" else o,
                      help="The selected use case's training dataset (the demo's: the scenario's support "
                           "transcripts in Pip's brand voice).")
    ss.ft_data_path = None
    if source == "Sample transcripts":
        avail = {k: v for k, v in samples(uc).items() if v.is_file()}
        if not avail:
            st.warning(f"The use case {safe.md(uc.name)} has no training data yet: import past answers on the Use Case page, "
                       "or upload a file." if own else
                       "The sample transcripts are missing under sample_docs/finetune/: upload a file instead.")
            return None
        label = st.selectbox("Sample file", list(avail), key="ft_sample",
                             help="The use case's train.chat.jsonl." if own else
                             "The same transcripts in three formats, to show format detection.")
        data_bytes, name = avail[label].read_bytes(), avail[label].name
        ss.ft_data_path = str(avail[label])
    else:
        up = st.file_uploader("JSONL or CSV (chat messages, Alpaca or ShareGPT rows)", type=["jsonl", "json", "csv"],
                              key="ft_upload", help=f"Up to {s.max_upload_mb} MB. One format per file.")
        if up is None:
            st.info("Upload a file, or switch to the sample transcripts.")
            return None
        data_bytes, name = up.getvalue(), Path(up.name).name
    try:
        ds = parse_bytes(data_bytes, name, max_mb=s.max_upload_mb)
    except DatasetError as exc:
        st.error(safe.md(exc))
        return None
    spec = current_spec()
    count = preview = None
    lengths: list[int] = []
    if ds.rows and not ds.errors:
        try:
            check_base_model_path(spec.base_model)
            count, preview = token_tools(spec.base_model)
            if count is not None:
                from core.finetune.datasets import check_lengths
                lengths = check_lengths(ds, count, spec.max_seq_len)
        except WorkbenchError as exc:
            show_error(exc)
            count = preview = None
    c = st.columns(4)
    c[0].metric("Format", ds.format or "?")
    c[1].metric("Usable rows", len(ds.rows))
    c[2].metric("Problems", len(ds.errors))
    c[3].metric("Longest row", f"{max(lengths)} tok" if lengths else "–")
    st.caption(f"Format is detected per row (chat `messages`, Alpaca `instruction/output`, ShareGPT "
               f"`conversations/from/value`) and converted to chat messages. Lengths are measured with the model's "
               f"chat template and tokenizer against the max sequence length ({spec.max_seq_len}, Train tab).")
    if ds.problems:
        st.error(f"{len(ds.errors)} problem(s) must be fixed before training — by line:")
        st.dataframe(pd.DataFrame([{"line": p.line, "severity": p.severity, "problem": p.message}
                                   for p in ds.problems]), hide_index=True, key="ft_problems", width="stretch")
    elif not ds.rows:
        st.error("The file has no rows: add some examples.")
    else:
        st.success(f"All {len(ds.rows)} rows are valid.")
    if ds.rows and preview is not None:
        i = st.number_input("Preview row", 1, len(ds.rows), 1, key="ft_preview_row",
                            help="The exact text the model trains on, rendered with its chat template.")
        row = ds.rows[int(i) - 1]
        st.caption(f"Line {row['line']} · {lengths[int(i) - 1] if lengths else '?'} tokens")
        st.code(preview(row["messages"]), language=None, wrap_lines=True)
    if ds.rows:
        train, val = split(ds.rows, spec.val_fraction, spec.seed)
        st.caption(f"Split (validation fraction {spec.val_fraction:.2f}, seed {spec.seed}): {len(train)} train rows, "
                   f"{len(val)} validation rows.")
    ss.ft_data_name = name
    return ds


# ---- Train tab -----------------------------------------------------------------------------------------------
def _spec_form() -> None:
    with st.expander("Job spec", expanded=False):
        a = st.columns(4)
        a[0].text_input("Base model", key="ft_base_model",
                        help="smollm2-135m-instruct (packaged) or a local Hugging Face folder.")
        a[1].text_input("Run name (optional)", key="ft_name")
        a[2].selectbox("Trainer", TRAINERS, key="ft_trainer",
                       help="auto: Unsloth (GPU path with CUDA, CPU path otherwise), PEFT+TRL if it cannot import.")
        a[3].number_input("Torch threads (0 = all)", 0, 256, key="ft_threads")
        b = st.columns(4)
        b[0].number_input("LoRA r", 1, 512, key="ft_lora_r", help="Rank of the low-rank update.")
        b[1].number_input("LoRA alpha", 1, 4096, key="ft_lora_alpha", help="Scale = alpha / r.")
        b[2].number_input("LoRA dropout", 0.0, 0.9, step=0.05, key="ft_lora_dropout")
        b[3].multiselect("Target modules", ALL_LINEAR, key="ft_target_modules")
        c = st.columns(4)
        c[0].number_input("Learning rate", 1e-7, 1e-1, format="%.1e", step=1e-4, key="ft_learning_rate")
        c[1].number_input("Max steps (0 = use epochs)", 0, 1_000_000, key="ft_max_steps")
        c[2].number_input("Epochs", 0.0, 100.0, step=0.5, key="ft_epochs")
        c[3].number_input("Warmup steps", 0, 100_000, key="ft_warmup_steps")
        d = st.columns(4)
        d[0].number_input("Batch size", 1, 1024, key="ft_batch_size")
        d[1].number_input("Gradient accumulation", 1, 1024, key="ft_grad_accum")
        d[2].number_input("Max sequence length", 32, 131072, step=32, key="ft_max_seq_len",
                          help="Rows longer than this (with the chat template) are reported in the Data tab.")
        d[3].number_input("Seed", 0, 2**31 - 1, key="ft_seed")
        e = st.columns(4)
        e[0].number_input("Validation fraction", 0.0, 0.5, step=0.05, key="ft_val_fraction")
        e[1].number_input("Eval every N steps (0 = off)", 0, 1_000_000, key="ft_eval_steps")
        e[2].number_input("Early stopping patience (0 = off)", 0, 1000, key="ft_early_stopping_patience",
                          help="Evaluations without an eval-loss improvement before training stops.")
        e[3].checkbox("4-bit base (QLoRA, CUDA only)", key="ft_load_in_4bit")


def train_tab(ds: Dataset | None) -> None:
    cols = st.columns([2, 3])
    preset = cols[0].selectbox("Preset", list(PRESETS), format_func=lambda n: PRESETS[n].title, key="ft_preset",
                               help="Loads a complete spec; change any field below afterwards.")
    if preset != ss.get("ft_preset_loaded"):
        load_preset(preset)
    cols[1].caption(safe.md(PRESETS[preset].description))
    st.radio("Method", METHODS, format_func=METHOD_LABELS.get, key="ft_method", horizontal=True,
             on_change=_method_changed,
             help="LoRA trains a small adapter on the frozen base; a full fine-tune trains all 134.5 M weights of "
                  "SmolLM2-135M (a whole model per version, ~4x the memory). QLoRA needs a CUDA GPU.")
    st.radio("Training data", list(VARIANT_LABELS), format_func=VARIANT_LABELS.get, key="ft_data_variant",
             horizontal=True, on_change=_variant_changed,
             help="RAFT turns each transcript into a retrieval-augmented example, retrieved exactly as the RAG "
                  "prompt will be at answer time (the right passage plus distractors), so the adapter learns to "
                  "state the fact from the passage and cite it. Compare's fine-tuned + RAG column uses the newest "
                  "RAFT adapter. Rows that would leak the evaluation set are always left out.")
    if ss.get("ft_method") == "full":
        st.caption("Full fine-tune: the LoRA settings (r, alpha, dropout, target modules) are not used and are "
                   "recorded as ignored; the learning rate defaults to 5e-5. The result is a whole model "
                   "(safetensors) plus a standalone Q8_0 GGUF, registered as ft:<run id>.")
    _spec_form()
    try:
        spec = current_spec()
        spec.validate()
        spec.check_device()
        check_base_model_path(spec.base_model)
        spec_error = None
    except WorkbenchError as exc:
        spec, spec_error = None, exc
    data_name = ss.get("ft_data_name") or "FILE"
    picked = Path(ss.ft_data_path) if ss.get("ft_data_path") and ss.get("ft_source") == "Sample transcripts" else None
    data_path = (str(picked.relative_to(SAMPLE_DOCS.parent)) if picked.is_relative_to(SAMPLE_DOCS) else str(picked)) \
        if picked is not None else data_name
    if spec is not None:
        st.caption("Equivalent command line:")
        st.code(spec.cli_line(data=data_path, preset=preset), language="bash", wrap_lines=True)
    else:
        show_error(spec_error)
    runs = runner.list_runs()
    busy = [r for r in runs if r.state in ("queued", "running")]
    if busy:
        st.caption(f"{len(busy)} job(s) queued or running: a new job waits its turn (one at a time).")
    start_next_button(runner.KIND, "ft")
    can_start = spec is not None and ds is not None and ds.ok
    if ds is not None and not ds.ok:
        st.warning("Fix the data problems in the Data tab before training.")
    if st.button("Start training", type="primary", disabled=not can_start, key="ft_start",
                 help="Starts the job in its own process; the page can be closed meanwhile."):
        try:
            run = runner.submit(spec.replace(data=data_path), ds)
            select_run(run.run_id)
            st.toast(f"Started {safe.md(run.run_id)}")
            st.rerun()
        except WorkbenchError as exc:
            show_error(exc)
            if isinstance(exc, DatasetError) and exc.problems:
                st.write(exc.problems[:20])
    st.divider()
    training_panel(selected_run_id())


# ---- Runs tab ------------------------------------------------------------------------------------------------
def runs_tab() -> None:
    runs = runner.list_runs()
    interrupted = [r.run_id for r in runs if r.state == "interrupted"]
    if interrupted:
        st.warning(f"Interrupted (their process had died): {safe.md(', '.join(interrupted))}")
    if not runs:
        st.info("No runs yet: start one in the Train tab.")
        return
    st.dataframe(pd.DataFrame(views.run_rows(runs, ICONS)), hide_index=True, width="stretch", key="ft_runs_table")
    st.caption("first/last loss: train loss at the first and last logging step; eval loss: final loss on held-out "
               "rows; s/step: training seconds per optimiser step; adapter sha256: hash of the adapter weights.")
    by_id = {r.run_id: r for r in runs}
    ids = list(by_id)
    chosen = st.multiselect("Overlay curves", ids, default=[i for i in ids if by_id[i].metrics][:3], key="ft_overlay")
    if chosen:
        st.plotly_chart(views.curves_figure([by_id[i] for i in chosen], height=380), key="ft_overlay_chart")
    pick = st.selectbox("Details of run", ids, index=ids.index(selected_run_id()) if selected_run_id() in ids else 0,
                        key="ft_detail_run")
    run = by_id[pick]
    c = st.columns([1, 1, 1])
    if c[0].button("Show in Train / Try tabs", key="ft_select_btn"):
        select_run(pick)
        st.rerun()
    if run.state not in ("queued", "running") and c[1].button("Delete run", key="ft_delete_btn"):
        try:
            runner.delete_run(pick)
        except WorkbenchError as exc:
            show_error(exc)
        st.rerun()
    final = run.status.get("final") or {}
    if final:
        full = final.get("method") == "full"
        st.markdown(f"{'Model' if full else 'Adapter'}: {safe.md(final.get('adapter_dir'))}  \nsha256 "
                    f"{safe.md(final.get('adapter_sha256'))}  \n{'GGUF model' if full else 'GGUF LoRA'}: "
                    f"{safe.md(final.get('gguf_model' if full else 'gguf_lora', '–'))} · model id "
                    f"{safe.md(final.get('model_id', '–'))}")
        run_card(final, run.spec.get("method"), key="ft_runs_card", data_variant=describe_variant(run.spec))
    st.json(dict(run.spec), expanded=False)
    if run.status.get("error"):
        st.error(safe.md(run.status["error"]))


# ---- Try & export tab ----------------------------------------------------------------------------------------
def default_question() -> str:
    from core.finetune.datasets import read_jsonl
    try:
        return read_jsonl(HELDOUT)[0]["messages"][-2]["content"]
    except (WorkbenchError, OSError, ValueError, KeyError, IndexError):
        return "How do I change my booking page colours?"


def default_system() -> str:
    from core.scenario import load_scenario
    from ui.usecase_select import current

    uc = current()
    if not uc.builtin:
        return uc.system_prompt
    try:
        return str(load_scenario().raw.get("system_prompt") or "")
    except WorkbenchError:
        return ""


def _side_by_side(base_model: str, model_id: str, full: bool = False) -> None:
    with st.form("ft_try_form"):
        system = st.text_area("System prompt", value=default_system(), key="ft_try_system", height=68)
        question = st.text_area("Question", value=default_question(), key="ft_try_question", height=80)
        temp = st.slider("Temperature", 0.0, 1.5, 0.2, 0.1, key="ft_try_temp")
        asked = st.form_submit_button("Ask both", type="primary")
    if not asked:
        return
    from core.llm.base import GenParams
    from ui.common import get_backend, show_usage
    msgs = ([{"role": "system", "content": system}] if system.strip() else []) + [{"role": "user", "content": question}]
    backend = get_backend("embedded")
    params = GenParams(temperature=float(temp), max_tokens=200, seed=42)
    for col, (label, mid) in zip(st.columns(2), [(f"Base · {base_model}", base_model),
                                                 (f"Fine-tuned · {model_id}", model_id)]):
        with col:
            st.markdown(f"**{safe.md(label)}**")
            try:
                stream = backend.chat_stream(msgs, params, model=mid)
                safe.stream(stream)
                show_usage(stream.usage)
            except WorkbenchError as exc:
                show_error(exc)
    st.caption("Both answers come from the embedded llama.cpp backend: the base GGUF, and "
               + ("the fully fine-tuned model's own standalone GGUF (Q8_0, the exact file you would ship)." if full
                  else "the same GGUF with the exported LoRA file loaded at run time (the exact file you would ship)."))


def _exports(run_id: str, full: bool = False) -> None:
    from core.finetune import export

    st.subheader("Export")
    st.caption("Each export runs as a job in its own process (the merged GGUF loads the full fp32 model)."
               + (" A full fine-tune has no adapter: its export is the standalone GGUF of the whole model "
                  "(Q8_0 is written when training ends; F16 on request)." if full else ""))
    formats = {"gguf-merged": ("Standalone GGUF", "ft_exp_merged")} if full else EXPORTS
    ec = st.columns(4)
    qtype = ec[2].selectbox("Merged type", ["Q8_0", "F16"], key="ft_qtype",
                            help="Never re-quantised to the base's Q4_1: that erases the fine-tune.")
    for col, (fmt, (label, key)) in zip(ec, formats.items()):
        if col.button(safe.md(label), key=key):
            try:
                export.start_job(run_id, fmt, qtype=qtype)
            except WorkbenchError as exc:
                show_error(exc)
    for fmt in formats:
        last = export.latest_export(run_id, fmt)
        if not last:
            continue
        if last["state"] != "succeeded":
            with st.container(border=True):
                job_panel(last["id"], key="ft_exp", show_log=last["state"] != "running")
            continue
        res = last["result"] or {}
        st.markdown(f"**{safe.md(fmt)}** → {safe.md(res['path'])} ({res['size_bytes'] / 1e6:.2f} MB, {res['seconds']:g} s)")
        if res.get("note"):
            st.caption(safe.md(res["note"]))
        if fmt == "ollama":
            st.code(res["extra"].get("modelfile", ""), language="dockerfile")
            st.download_button("Download Modelfile", res["extra"].get("modelfile", ""), file_name="Modelfile",
                               key="ft_dl_modelfile")
        if fmt == "gguf-lora" and Path(res["path"]).is_file():
            st.download_button("Download adapter.gguf", Path(res["path"]).read_bytes(),
                               file_name=f"{run_id}.gguf", key="ft_dl_gguf")


def _parity(run) -> None:
    from core.finetune import parity

    st.subheader("Parity check")
    st.caption("The same held-out prompts, greedy, through the trained model in-process (transformers + PEFT) and "
               "through the exported GGUF in llama.cpp. Score = mean text similarity (0–1); the base GGUF without "
               "the adapter is the reference. Runs as a job in its own process: ~1–3 minutes on a busy CPU.")
    pc = st.columns([1, 1, 3])
    full = (run.status.get("final") or {}).get("method") == "full"
    kind = pc[0].selectbox("File", ["gguf-merged"] if full else ["gguf-lora", "gguf-merged"], key="ft_parity_kind",
                           help="A full fine-tune is checked as its standalone GGUF against the saved model.")
    if pc[1].button("Run parity check", key="ft_parity_btn"):
        try:
            parity.start_job(run.run_id, kind)
        except WorkbenchError as exc:
            show_error(exc)
    last = parity.latest_job(run.run_id, kind)
    if last and last["state"] != "succeeded":
        with st.container(border=True):
            job_panel(last["id"], key="ft_par")
    rep = parity.saved_parity(run.dir, kind)
    if rep:
        (st.success if rep["passed"] else st.error)(rep["verdict"])
        st.dataframe(pd.DataFrame(views.parity_rows(rep)), hide_index=True, width="stretch", key="ft_parity_table")


def try_tab() -> None:
    done = [r for r in runner.list_runs() if r.state == "succeeded" and (r.status.get("final") or {}).get("model_id")]
    if not done:
        st.info("No finished adapter yet: train one first (the quick preset takes a few minutes on a laptop CPU).")
        return
    by_id = {r.run_id: r for r in done}
    ids = list(by_id)
    sel = selected_run_id()
    run_id = st.selectbox("Adapter", ids, index=ids.index(sel) if sel in ids else 0, key="ft_try_run",
                          help="Every finished run registers its adapter as model ft:<run id>.")
    run = by_id[run_id]
    st.subheader("Base vs fine-tuned")
    full = (run.status.get("final") or {}).get("method") == "full"
    _side_by_side(run.spec.get("base_model", "smollm2-135m-instruct"), run.status["final"]["model_id"], full)
    _exports(run_id, full=full)
    _parity(run)
