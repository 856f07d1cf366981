"""Views of the Prompt Lab page (app_pages/1_Prompt_Lab.py composes them). Logic lives in core.prompts (edit.py,
run.py, library.py); every session key goes through `S = state("pl")` (keys "pl_...")."""
from __future__ import annotations

from ui.common import lazy_pandas as pd  # imported on first use
import streamlit as st

from core.errors import PromptError, WorkbenchError
from core.prompts import edit
from core.prompts.library import PromptLibrary
from core.prompts.run import (Variant, all_variables, batch_figure, batch_summary, cli_line, param_overrides, prepare,
                              run_batch, stream_variants)
from core.prompts.spec import PromptSpec
from ui.common import PageState, backend_picker, get_backend, md_escape as md, show_error, show_text, show_usage, state

LABELS = ["A", "B", "C", "D"]
TABS = ["Playground", "Batch", "Versions"]
MAX_BATCH = 50
# spec field (core.prompts.edit.spec_fields) -> widget key suffix of column i ("pl_{i}_<suffix>")
FIELD_KEYS = {"name": "name", "system": "system", "template": "template", "chain_of_thought": "cot",
              "temperature": "temperature", "top_p": "top_p", "max_tokens": "max_tokens", "seed": "seed",
              "stop_text": "stop", "schema_text": "schema", "description": "desc"}


def page_state() -> PageState:
    return state("pl")


# ---- library and the columns' state -------------------------------------------------------------------------------
def library(S: PageState) -> PromptLibrary:
    lib = PromptLibrary()
    if not S.get("starter_done"):
        lib.ensure_starter()
        S["starter_done"] = True
    return lib


def load_into(S: PageState, i: int, spec: PromptSpec, ref: str) -> None:
    """Put a spec into column i's widgets (called before the widgets exist or from a callback)."""
    fields = edit.spec_fields(spec)
    S[i, "ref"] = ref
    for field, suffix in FIELD_KEYS.items():
        S[i, suffix] = fields[field]
    S[i, "loaded"] = spec.to_dict()
    S[i, "examples_base"] = fields["examples"]
    S[i, "ex_gen"] = S.get((i, "ex_gen"), 0) + 1


def load_ref(S: PageState, i: int, ref: str, lib: PromptLibrary) -> None:
    spec, v = lib.resolve(ref)
    load_into(S, i, spec, f"{spec.name}@{v}")


def column(S: PageState, i: int, name: str, default=None):
    return S.get((i, name), default)


def sync_query_params(S: PageState) -> None:
    """The loaded prompt versions are in the URL (?variants=zero_shot@1,few_shot@1): a view can be shared."""
    st.query_params["variants"] = ",".join(column(S, i, "ref", "") for i in range(S.get("n", 3)))


def on_pick(i: int) -> None:
    S = page_state()
    try:
        load_ref(S, i, column(S, i, "ref"), PromptLibrary())
    except WorkbenchError as exc:
        S[i, "load_error"] = str(exc)
    sync_query_params(S)


def usecase_refs(uc) -> list[str]:
    """A use case's prompt set as library refs (installed into the library as `NAME__prompt`); [] for the demo
    (its prompts are the starters) or when a prompt file does not parse (shown as a warning)."""
    from core.usecase import workspace

    if uc is None or uc.builtin:
        return []
    try:
        return list(workspace.install_prompts(workspace.get_usecase(uc.name)).values())
    except WorkbenchError as exc:
        st.warning(f"The prompts of use case {md(uc.name)} could not be loaded: {md(exc)}")
        return []


def init(S: PageState, lib: PromptLibrary, uc=None) -> None:
    """Load the columns once per session and use case: the URL's ?variants=, else the use case's prompt set, else
    the starters. Picking another use case loads its prompt set."""
    name = uc.name if uc is not None else ""
    switched = S.get("usecase", name) != name
    S["usecase"] = name
    if S.get("init") and not switched:
        return
    defaults = usecase_refs(uc) or edit.default_refs(lib)
    wanted = [] if switched else [r for r in st.query_params.get("variants", "").split(",") if r.strip()]
    refs = wanted or defaults
    S["n"] = min(4, max(2, len(refs) if wanted else 3))
    for i in range(4):
        ref = refs[i] if i < len(refs) else (defaults[i % len(defaults)] if defaults else "")
        try:
            if not ref:
                raise PromptError("empty library")
            load_ref(S, i, ref, lib)
        except WorkbenchError as exc:
            if ref:
                S[i, "load_error"] = f"Could not load {ref!r}: {exc}"
            try:
                load_ref(S, i, defaults[i % len(defaults)], lib)
            except (WorkbenchError, IndexError, ZeroDivisionError):
                load_into(S, i, PromptSpec(name=f"variant_{LABELS[i].lower()}", system="You are a helpful assistant.",
                                           template="{question}"), "")
    S["init"] = True
    if switched:
        S.pop("results")
        sync_query_params(S)


def reset_to_starters() -> None:
    S = page_state()
    lib = PromptLibrary()
    defaults = edit.default_refs(lib)
    for i in range(4):
        if defaults:
            load_ref(S, i, defaults[i % len(defaults)], lib)
    S.pop("results")
    sync_query_params(S)


def spec_from_state(S: PageState, i: int, examples_df) -> PromptSpec:
    """Raises PromptError / InvalidParams / InvalidSchema with a message for the user."""
    rows = examples_df.to_dict("records") if examples_df is not None else []
    return edit.spec_from_fields(examples=rows, **{f: column(S, i, k) for f, k in FIELD_KEYS.items()})


def saved_spec(S: PageState, i: int) -> PromptSpec | None:
    loaded = column(S, i, "loaded")
    try:
        return PromptSpec.from_dict(loaded) if loaded else None
    except PromptError:
        return None


def questions() -> list[dict]:
    """The selected use case's question set as table rows (strict parser; a bad file shows its error)."""
    from ui.usecase_select import current

    return [q.to_dict() for q in current().question_set()]


# ---- sidebar ----------------------------------------------------------------------------------------------------
def sidebar(S: PageState, lib: PromptLibrary) -> None:
    with st.sidebar:
        st.header("Prompt Lab")
        st.slider("Variants side by side", 2, 4, key=S.key("n"), on_change=lambda: sync_query_params(page_state()),
                  help="How many prompt variants to edit and run together.")
        st.button("Load starter prompts", on_click=reset_to_starters, width="stretch",
                  help="Zero-shot, few-shot, guardrail... from the prompt library into the columns.")
        st.caption(f"Library: {md(lib.root)} · {len(lib.names())} prompts")
        bad = lib.errors()
        if bad:
            with st.expander(f"⚠️ {len(bad)} unreadable file(s) in the library", expanded=False):
                for path, msg in bad:
                    st.caption(f"{md(path.parent.name)}/{md(path.name)}: {md(msg)}")


# ---- playground ---------------------------------------------------------------------------------------------------
def variant_editor(S: PageState, i: int, refs: list[str]):
    """One column's editor. Returns (spec or None, error or None, (backend, model))."""
    st.subheader(f"Variant {LABELS[i]}")
    if column(S, i, "load_error"):
        st.warning(md(S.pop((i, "load_error"))))
    options = list(refs)
    if column(S, i, "ref") and column(S, i, "ref") not in options:
        options.insert(0, column(S, i, "ref"))
    if options:
        st.selectbox("Load prompt", options, key=S.key(i, "ref"), on_change=on_pick, args=(i,),
                     help="A saved version from the prompt library (name@version).")
    st.text_input("Name", key=S.key(i, "name"), help="Library name used when you save this variant.")
    st.text_area("System prompt", key=S.key(i, "system"), height=110)
    st.text_area("User template", key=S.key(i, "template"), height=110,
                 help="{variables} are filled at run time; write literal braces as {{ and }}.")
    st.caption("Few-shot examples (add/remove rows)")
    ex_df = st.data_editor(
        pd.DataFrame(column(S, i, "examples_base") or [], columns=["user", "assistant"], dtype="object"),
        num_rows="dynamic", hide_index=True, key=S.key(i, "ex", column(S, i, "ex_gen", 0)),
        column_config={"user": st.column_config.TextColumn("user"),
                       "assistant": st.column_config.TextColumn("assistant")})
    st.toggle("Chain of thought", key=S.key(i, "cot"),
              help="Ask the model to reason step by step before a final 'Answer:' line.")
    with st.expander("Generation parameters"):
        st.slider("temperature", 0.0, 2.0, step=0.05, key=S.key(i, "temperature"),
                  help="0 = greedy; ~0.2 keeps a small model on topic.")
        st.slider("top_p", 0.0, 1.0, step=0.01, key=S.key(i, "top_p"))
        st.number_input("max_tokens", 1, 4096, step=16, key=S.key(i, "max_tokens"),
                        help="Upper bound on the answer length; counts against the context window.")
        st.number_input("seed", 0, 2**31 - 1, step=1, key=S.key(i, "seed"), help="Same seed = same output.")
        st.text_area("stop sequences (one per line)", key=S.key(i, "stop"), height=68)
    with st.expander("Structured output (JSON schema)"):
        st.text_area("JSON schema", key=S.key(i, "schema"), height=120, label_visibility="collapsed",
                     placeholder='{"type": "object", "properties": {"answer": {"type": "string"}}}',
                     help="When set, the reply must be JSON matching this schema (llama.cpp enforces it "
                          "with a grammar); the output shows valid/invalid.")
    target = backend_picker(S.key(i), label="Model")
    try:
        return spec_from_state(S, i, ex_df), None, target
    except WorkbenchError as exc:
        show_error(exc)
        return None, exc, target


def inputs(S: PageState, specs: dict[int, PromptSpec]) -> dict[str, str]:
    """The {variable} inputs shared by every column; the scenario's questions can fill {question}."""
    var_names = all_variables(specs.values())
    try:
        qs = questions()
    except WorkbenchError as exc:
        qs = []
        show_error(exc)
    st.markdown("**Input**")
    if qs and "question" in var_names:
        q_labels = ["(type your own)"] + [f"{q['id']}: {q['question'][:90]}" for q in qs]

        def on_question() -> None:
            pick = S.get("question_pick")
            idx = q_labels.index(pick) if pick in q_labels else 0
            if idx:
                S["var_question"] = qs[idx - 1]["question"]

        st.selectbox("Fill {question} from the use case's question set", q_labels, key=S.key("question_pick"),
                     on_change=on_question, help="The selected use case's questions (the demo's: "
                                                 "sample_docs/eval/questions.jsonl)")
    if any("context" in s.variables() for s in specs.values() if edit.parses(s)):
        var_names.append("context")
    var_cols = st.columns(max(1, min(3, len(var_names)))) if var_names else []
    for k, name in enumerate(var_names):
        S.setdefault(("var", name), "")
        var_cols[k % len(var_cols)].text_area(
            f"{{{md(name)}}}" + (" (optional)" if name == "context" else ""), key=S.key("var", name), height=68,
            help="Retrieved passages go here on the RAG page; paste some to try a RAG prompt by hand."
            if name == "context" else f"Value of {{{md(name)}}} in the templates.")
    return {name: S.get(("var", name), "") for name in var_names if S.get(("var", name), "").strip()}


def _variant(S: PageState, i: int, spec: PromptSpec, target: tuple[str, str]) -> Variant:
    backend_name, model = target
    return Variant(LABELS[i], spec, backend_name, model, column(S, i, "ref", ""))


def output_header(S: PageState, i: int, spec: PromptSpec, target: tuple[str, str], variables: dict) -> None:
    """Before anything runs: the context-window bar and the equivalent CLI line."""
    backend_name, model = target
    fill = {k: variables.get(k, f"<{k}>") for k in spec.variables() if k != "context"}
    if "context" in variables:
        fill["context"] = variables["context"]
    try:
        pre = prepare(_variant(S, i, spec, target), fill, get_backend(backend_name))
        if pre.n_ctx:
            st.progress(min(1.0, pre.context_fraction),
                        text=f"Context: {pre.prompt_tokens} prompt + {pre.params.max_tokens} max "
                             f"= {pre.needed_tokens}/{pre.n_ctx} tokens")
        if pre.warning:
            st.warning(md(pre.warning))
    except WorkbenchError as exc:
        show_error(exc)
    saved = saved_spec(S, i)
    ref = column(S, i, "ref") or spec.name
    unsaved = edit.unsaved_prompt_edits(spec, saved)
    cli_vars = {k: variables.get(k, "...") for k in spec.variables() if k != "context" or k in variables}
    line = cli_line(ref if not unsaved else spec.name, cli_vars, backend_name, model,
                    param_overrides(spec.params, saved.params if saved else None))
    with st.expander("CLI"):
        if unsaved:
            st.caption("Unsaved prompt edits: save a version (Versions tab), then run:")
        st.code(line, language="bash", wrap_lines=True)


def show_result(slot, res) -> None:
    status, text_box, below = slot
    if res.error:
        status.empty()
        below.error(md(res.error))
        return
    status.caption(f"✓ done in {res.usage.latency_s:.2f} s" if res.usage else "✓ done")
    show_text(res.text, text_box)
    with below:
        show_usage(res.usage)
        if res.usage and res.usage.finish_reason == "length":
            st.warning("The answer hit max_tokens and was cut off: raise max_tokens to see all of it.")
        if res.json_ok is True:
            st.success("JSON valid ✓ (matches the schema)")
        elif res.json_ok is False:
            st.error(f"JSON invalid: {md(res.json_error)}")


def outputs(S: PageState, n: int, specs: dict, targets: dict, variables: dict, run_clicked: bool) -> None:
    """One output column per variant; with run_clicked, every valid variant streams into its column."""
    slots = {}
    for i, col in enumerate(st.columns(n, gap="small")):
        with col:
            st.markdown(f"**Output {LABELS[i]}**" + (f" · {md(specs[i].name)}" if i in specs else ""))
            slots[i] = (st.empty(), st.empty(), st.container())
            if i in specs:
                output_header(S, i, specs[i], targets[i], variables)
    if not run_clicked:
        for i, res in (S.get("results") or {}).items():
            if i < n:
                show_result(slots[i], res)
        return
    S["results"] = {}
    runnable = []
    for i in range(n):
        if i not in specs:
            continue
        try:
            runnable.append((i, prepare(_variant(S, i, specs[i], targets[i]), variables,
                                        get_backend(targets[i][0]))))
        except WorkbenchError as exc:
            slots[i][2].error(md(exc))
    texts = {i: "" for i, _ in runnable}
    order = [i for i, _ in runnable]
    for ev in stream_variants([p for _, p in runnable]):
        i = order[ev.index]
        status, text_box, _ = slots[i]
        if ev.kind == "waiting":
            status.caption("⏳ waiting for the model…")
        elif ev.kind == "start":
            status.caption("✍️ generating…")
        elif ev.kind == "delta":
            texts[i] += ev.text
            text_box.text(texts[i])
        elif ev.kind in ("done", "error"):
            S["results"][i] = ev.result
            show_result(slots[i], ev.result)


# ---- batch --------------------------------------------------------------------------------------------------------
def batch_tab(S: PageState, n: int, specs: dict, targets: dict, variables: dict) -> None:
    st.caption("Run variants over the selected use case's question set (the demo's: sample_docs/eval/questions.jsonl), "
               "one input after another, and compare latency and token cost.")
    try:
        all_q = questions()
    except WorkbenchError as exc:
        show_error(exc)
        return
    with st.form(S.key("batch_form")):
        picked = st.multiselect("Variants", [LABELS[i] for i in range(n) if i in specs],
                                default=[LABELS[i] for i in range(min(n, 2)) if i in specs],
                                help="Each picked variant runs over the same inputs.")
        limit = st.number_input("Inputs (first N questions)", 1, min(MAX_BATCH, len(all_q)),
                                value=min(5, len(all_q)), help=f"Up to {MAX_BATCH}; about 1-3 s each.")
        go = st.form_submit_button("Run batch", type="primary")
    if go and picked:
        records = []
        bar = st.progress(0.0, text="Starting…")
        total = len(picked) * int(limit)
        counter = [0]
        fixed = {k: v for k, v in variables.items() if k != "question"}
        for lab in picked:
            i = LABELS.index(lab)

            def progress(k, tot, rec, lab=lab):
                counter[0] += 1
                bar.progress(min(1.0, counter[0] / total), text=f"Variant {lab}: {k}/{tot} — {md(rec['input'][:60])}")

            try:
                records += run_batch(_variant(S, i, specs[i], targets[i]), all_q, get_backend(targets[i][0]),
                                     fixed=fixed, limit=int(limit), progress=progress)
            except WorkbenchError as exc:
                show_error(exc)
        bar.progress(1.0, text=f"Done: {len(records)} runs")
        S["batch"] = records
    elif go:
        st.warning("Pick at least one variant.")
    records = S.get("batch") or []
    if records:
        st.subheader("Summary")
        st.dataframe(pd.DataFrame(batch_summary(records)), hide_index=True)
        st.plotly_chart(batch_figure(records), key=S.key("batch_chart"))
        st.subheader("Results")
        st.dataframe(pd.DataFrame(records), hide_index=True,
                     column_config={"output": st.column_config.TextColumn("output", width="large")})
        if any(r["error"] for r in records):
            st.warning(f"{sum(1 for r in records if r['error'])} input(s) failed; see the error column.")


# ---- versions -----------------------------------------------------------------------------------------------------
def _flash(kind: str, text: str) -> None:
    page_state()["flash"] = (kind, text)


def on_save() -> None:
    S = page_state()
    lab = S.get("save_from", "A")
    i = LABELS.index(lab)
    errors = S.get("spec_errors_last") or {}
    if i in errors:
        _flash("error", f"Variant {lab} is not valid, nothing was saved: {errors[i]}")
        return
    spec = (S.get("specs_last") or {}).get(i)
    if spec is None:
        _flash("error", f"Variant {lab} is not shown; raise the number of variants first.")
        return
    try:
        v = PromptLibrary().save(spec, S.get("save_message") or "")
    except WorkbenchError as exc:
        _flash("error", f"Nothing was saved: {exc}")
        return
    ref = f"{spec.name}@{v}"
    S[i, "ref"] = ref
    S[i, "loaded"] = spec.to_dict()
    S["hist_name"] = spec.name
    S["save_message"] = ""
    sync_query_params(S)
    _flash("success", f"Saved variant {lab} as {ref}.")


def on_restore() -> None:
    S = page_state()
    name, v = S["hist_name"], S["restore_v"]
    try:
        nv = PromptLibrary().restore(f"{name}@{v}")
        _flash("success", f"Restored {name}@{v} as {name}@{nv}.")
    except WorkbenchError as exc:
        _flash("error", str(exc))


def on_label() -> None:
    S = page_state()
    name, v = S["hist_name"], S["restore_v"]
    try:
        PromptLibrary().label(name, v, "baseline")
        _flash("success", f"{name}@baseline now points to version {v}.")
    except WorkbenchError as exc:
        _flash("error", str(exc))


def on_load_into() -> None:
    S = page_state()
    i = LABELS.index(S.get("load_target", "A"))
    ref = f"{S['hist_name']}@{S['restore_v']}"
    try:
        load_ref(S, i, ref, PromptLibrary())
        sync_query_params(S)
        _flash("success", f"Loaded {ref} into variant {LABELS[i]}.")
    except WorkbenchError as exc:
        _flash("error", str(exc))


def versions_tab(S: PageState, n: int, lib: PromptLibrary, specs: dict, spec_errors: dict) -> None:
    S["specs_last"] = specs                 # what the save callback saves (the columns as rendered in this run)
    S["spec_errors_last"] = {i: str(e) for i, e in spec_errors.items()}
    if S.get("flash"):
        kind, text = S.pop("flash")
        (st.success if kind == "success" else st.error)(text)
    st.markdown("**Save a variant as a new version**")
    with st.form(S.key("save_form")):
        st.selectbox("Variant", [LABELS[i] for i in range(n)], key=S.key("save_from"),
                     help="Saved under the variant's Name; an existing name gets its next version number.")
        st.text_input("Message", key=S.key("save_message"), placeholder="what changed and why",
                      help="Every save is a new immutable version; the message is its history line.")
        st.form_submit_button("Save version", type="primary", on_click=on_save)
    names = lib.names()
    if not names:
        st.info("The library is empty: save a variant above.")
        return
    st.divider()
    if S.get("hist_name") not in names:
        S["hist_name"] = column(S, 0, "name") if column(S, 0, "name") in names else names[0]
    hname = st.selectbox("Prompt", names, key=S.key("hist_name"), help="History of one prompt in the library.")
    versions = lib.versions(hname)
    st.dataframe(pd.DataFrame([{"version": v.version, "created": v.created, "message": v.message,
                                "labels": ", ".join(v.labels)} for v in reversed(versions)]), hide_index=True)
    vnums = [v.version for v in reversed(versions)]
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Diff two versions**")
        a = st.selectbox("From", vnums, index=min(1, len(vnums) - 1), key=S.key("diff_a", hname, len(vnums)))
        b = st.selectbox("To", vnums, index=0, key=S.key("diff_b", hname, len(vnums)))
        try:
            st.code(lib.diff(f"{hname}@{a}", f"{hname}@{b}") or "(identical)", language="diff")
        except WorkbenchError as exc:
            show_error(exc)
    with c2:
        st.markdown("**Restore, label or load a version**")
        if S.get("restore_v") not in vnums:
            S["restore_v"] = vnums[0]
        st.selectbox("Version", vnums, key=S.key("restore_v"))
        st.button("Restore as newest version", key=S.key("restore"), on_click=on_restore,
                  help="Saves this old version again as a new version (history is never rewritten).")
        st.button("Label as baseline", key=S.key("label"), on_click=on_label,
                  help="The Compare page and `--prompt NAME@baseline` use this version.")
        lc1, lc2 = st.columns([1, 2])
        lc1.selectbox("Into", [LABELS[i] for i in range(n)], key=S.key("load_target"), label_visibility="collapsed")
        lc2.button("Load into variant", key=S.key("load_into"), on_click=on_load_into)
