"""Prompt Lab: 2-4 prompt variants side by side, run together on the same input, measured, versioned.

Thin page: rendering, running, validation and versioning live in core.prompts (library.py, run.py, spec.py).
Session keys start with "pl_"; the loaded prompt versions are in the URL (?variants=zero_shot@1,few_shot@1).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import PromptError, WorkbenchError
from core.llm.base import GenParams
from core.prompts.library import PromptLibrary
from core.prompts.run import (Variant, all_variables, batch_figure, batch_summary, cli_line, param_overrides,
                              parse_schema_text, prepare, run_batch, stream_variants)
from core.scenario import scenario_questions
from core.prompts.spec import NAME_RE, FewShot, PromptSpec
from ui.common import backend_picker, get_backend, page_setup, show_error, show_usage

LABELS = ["A", "B", "C", "D"]
PREFERRED = ["zero_shot", "few_shot", "guardrail", "guardrail_json", "chain_of_thought"]
MAX_BATCH = 50

page_setup("Prompt Lab", "✍️")
ss = st.session_state


# ---- library -------------------------------------------------------------------------------------------------
def library() -> PromptLibrary:
    lib = PromptLibrary()
    if not ss.get("pl_starter_done"):
        lib.ensure_starter()
        ss.pl_starter_done = True
    return lib


def all_refs(lib: PromptLibrary) -> list[str]:
    return [f"{name}@{v.version}" for name in lib.names() for v in reversed(lib.versions(name))]


def default_refs(lib: PromptLibrary) -> list[str]:
    names = lib.names()
    ordered = [n for n in PREFERRED if n in names] + [n for n in names if n not in PREFERRED]
    return [f"{n}@{lib.latest_version(n)}" for n in ordered]


def load_into(i: int, spec: PromptSpec, ref: str) -> None:
    """Put a spec into column i's widgets (called before the widgets exist or from a callback)."""
    p = spec.params
    ss[f"pl_{i}_ref"] = ref
    ss[f"pl_{i}_loaded"] = spec.to_dict()
    ss[f"pl_{i}_name"] = spec.name
    ss[f"pl_{i}_system"] = spec.system
    ss[f"pl_{i}_template"] = spec.template
    ss[f"pl_{i}_examples_base"] = [{"user": e.user, "assistant": e.assistant} for e in spec.examples]
    ss[f"pl_{i}_ex_gen"] = ss.get(f"pl_{i}_ex_gen", 0) + 1
    ss[f"pl_{i}_cot"] = spec.chain_of_thought
    ss[f"pl_{i}_temperature"] = float(p.temperature)
    ss[f"pl_{i}_top_p"] = float(p.top_p)
    ss[f"pl_{i}_max_tokens"] = int(p.max_tokens)
    ss[f"pl_{i}_seed"] = int(p.seed if p.seed is not None else 42)
    ss[f"pl_{i}_stop"] = "\n".join(p.stop)
    ss[f"pl_{i}_schema"] = _schema_text(spec.json_schema)
    ss[f"pl_{i}_desc"] = spec.description


def _schema_text(schema) -> str:
    import json
    return json.dumps(schema, indent=2) if schema is not None else ""


def load_ref(i: int, ref: str, lib: PromptLibrary) -> None:
    spec, v = lib.resolve(ref)
    load_into(i, spec, f"{spec.name}@{v}")


def on_pick(i: int) -> None:
    try:
        load_ref(i, ss[f"pl_{i}_ref"], PromptLibrary())
    except WorkbenchError as exc:
        ss[f"pl_{i}_load_error"] = str(exc)
    sync_query_params()


def sync_query_params() -> None:
    n = ss.get("pl_n", 3)
    st.query_params["variants"] = ",".join(ss.get(f"pl_{i}_ref", "") for i in range(n))


def init(lib: PromptLibrary) -> None:
    if ss.get("pl_init"):
        return
    defaults = default_refs(lib)
    wanted = [r for r in st.query_params.get("variants", "").split(",") if r.strip()]
    refs = wanted or defaults
    ss.pl_n = min(4, max(2, len(refs) if wanted else 3))
    for i in range(4):
        ref = refs[i] if i < len(refs) else (defaults[i % len(defaults)] if defaults else "")
        try:
            if not ref:
                raise PromptError("empty library")
            load_ref(i, ref, lib)
        except WorkbenchError as exc:
            if ref:
                ss[f"pl_{i}_load_error"] = f"Could not load {ref!r}: {exc}"
            try:
                load_ref(i, defaults[i % len(defaults)], lib)
            except (WorkbenchError, IndexError, ZeroDivisionError):
                load_into(i, PromptSpec(name=f"variant_{LABELS[i].lower()}", system="You are a helpful assistant.",
                                        template="{question}"), "")
    ss.pl_init = True


def reset_to_starters() -> None:
    lib = PromptLibrary()
    defaults = default_refs(lib)
    for i in range(4):
        if defaults:
            load_ref(i, defaults[i % len(defaults)], lib)
    ss.pop("pl_results", None)
    sync_query_params()


# ---- building a spec from one column's widgets ----------------------------------------------------------------
def examples_from(df) -> list[FewShot]:
    out = []
    if df is None:
        return out
    for n, row in enumerate(df.to_dict("records"), 1):
        u = row.get("user")
        a = row.get("assistant")
        u = "" if u is None or (isinstance(u, float) and pd.isna(u)) else str(u)
        a = "" if a is None or (isinstance(a, float) and pd.isna(a)) else str(a)
        if not u.strip() and not a.strip():
            continue
        if not u.strip() or not a.strip():
            raise PromptError(f"Few-shot row {n} needs both a user message and an assistant answer.")
        out.append(FewShot(u, a))
    return out


def spec_from_state(i: int, examples_df) -> PromptSpec:
    """Raises PromptError / InvalidParams / InvalidSchema with a message for the user."""
    name = (ss.get(f"pl_{i}_name") or "").strip()
    if not NAME_RE.match(name):
        raise PromptError(f"Name {name!r}: use 1-64 characters of a-z, 0-9 and _ (e.g. few_shot_v2).")
    template = ss.get(f"pl_{i}_template") or ""
    if not template.strip():
        raise PromptError("The user template is empty: write at least {question}.")
    stops = [s for s in (ss.get(f"pl_{i}_stop") or "").split("\n") if s]
    params = GenParams(temperature=float(ss[f"pl_{i}_temperature"]), top_p=float(ss[f"pl_{i}_top_p"]),
                       max_tokens=int(ss[f"pl_{i}_max_tokens"]), seed=int(ss[f"pl_{i}_seed"]), stop=stops)
    params.validate()
    spec = PromptSpec(name=name, system=ss.get(f"pl_{i}_system") or "", template=template,
                      examples=examples_from(examples_df), chain_of_thought=bool(ss.get(f"pl_{i}_cot")),
                      params=params, json_schema=parse_schema_text(ss.get(f"pl_{i}_schema")),
                      description=ss.get(f"pl_{i}_desc") or "")
    spec.variables()
    return spec


def saved_spec(i: int) -> PromptSpec | None:
    loaded = ss.get(f"pl_{i}_loaded")
    try:
        return PromptSpec.from_dict(loaded) if loaded else None
    except PromptError:
        return None


def unsaved_prompt_edits(spec: PromptSpec, saved: PromptSpec | None) -> bool:
    """True when system/template/examples/CoT/schema differ from the loaded version (params become CLI flags)."""
    if saved is None:
        return True
    a = {k: v for k, v in spec.to_dict().items() if k != "params"}
    b = {k: v for k, v in saved.to_dict().items() if k != "params"}
    return a != b


def _parses(spec: PromptSpec) -> bool:
    try:
        spec.variables()
        return True
    except PromptError:
        return False


# ---- page ------------------------------------------------------------------------------------------------------
lib = library()
init(lib)
refs = all_refs(lib)

with st.sidebar:
    st.header("Prompt Lab")
    st.slider("Variants side by side", 2, 4, key="pl_n", on_change=sync_query_params,
              help="How many prompt variants to edit and run together.")
    st.button("Load starter prompts", on_click=reset_to_starters, width="stretch",
              help="Zero-shot, few-shot, guardrail... from the prompt library into the columns.")
    st.caption(f"Library: `{lib.root}` · {len(lib.names())} prompts")
    bad = lib.errors()
    if bad:
        with st.expander(f"⚠️ {len(bad)} unreadable file(s) in the library", expanded=False):
            for path, msg in bad:
                st.caption(f"{path.parent.name}/{path.name}: {msg}")

n = int(ss.pl_n)
st.title("Prompt Lab")
st.caption("Edit prompt variants side by side, run them on the same input, compare quality, speed and cost, and "
           "save the winner as a new version.")

tab_play, tab_batch, tab_versions = st.tabs(["Playground", "Batch", "Versions"])

specs: dict[int, PromptSpec] = {}
spec_errors: dict[int, Exception] = {}
targets: dict[int, tuple[str, str]] = {}

with tab_play:
    cols = st.columns(n, gap="small")
    for i, col in enumerate(cols):
        with col.container(border=True):
            st.subheader(f"Variant {LABELS[i]}")
            if ss.get(f"pl_{i}_load_error"):
                st.warning(ss.pop(f"pl_{i}_load_error"))
            options = list(refs)
            if ss.get(f"pl_{i}_ref") and ss[f"pl_{i}_ref"] not in options:
                options.insert(0, ss[f"pl_{i}_ref"])
            if options:
                st.selectbox("Load prompt", options, key=f"pl_{i}_ref", on_change=on_pick, args=(i,),
                             help="A saved version from the prompt library (name@version).")
            st.text_input("Name", key=f"pl_{i}_name", help="Library name used when you save this variant.")
            st.text_area("System prompt", key=f"pl_{i}_system", height=110)
            st.text_area("User template", key=f"pl_{i}_template", height=110,
                         help="{variables} are filled at run time; write literal braces as {{ and }}.")
            st.caption("Few-shot examples (add/remove rows)")
            ex_df = st.data_editor(
                pd.DataFrame(ss.get(f"pl_{i}_examples_base") or [], columns=["user", "assistant"], dtype="object"),
                num_rows="dynamic", hide_index=True, key=f"pl_{i}_ex_{ss.get(f'pl_{i}_ex_gen', 0)}",
                column_config={"user": st.column_config.TextColumn("user"),
                               "assistant": st.column_config.TextColumn("assistant")})
            st.toggle("Chain of thought", key=f"pl_{i}_cot",
                      help="Ask the model to reason step by step before a final 'Answer:' line.")
            with st.expander("Generation parameters"):
                st.slider("temperature", 0.0, 2.0, step=0.05, key=f"pl_{i}_temperature",
                          help="0 = greedy; ~0.2 keeps a small model on topic.")
                st.slider("top_p", 0.0, 1.0, step=0.01, key=f"pl_{i}_top_p")
                st.number_input("max_tokens", 1, 4096, step=16, key=f"pl_{i}_max_tokens",
                                help="Upper bound on the answer length; counts against the context window.")
                st.number_input("seed", 0, 2**31 - 1, step=1, key=f"pl_{i}_seed", help="Same seed = same output.")
                st.text_area("stop sequences (one per line)", key=f"pl_{i}_stop", height=68)
            with st.expander("Structured output (JSON schema)"):
                st.text_area("JSON schema", key=f"pl_{i}_schema", height=120, label_visibility="collapsed",
                             placeholder='{"type": "object", "properties": {"answer": {"type": "string"}}}',
                             help="When set, the reply must be JSON matching this schema (llama.cpp enforces it "
                                  "with a grammar); the output shows valid/invalid.")
            targets[i] = backend_picker(f"pl_{i}", label="Model")
            try:
                specs[i] = spec_from_state(i, ex_df)
            except WorkbenchError as exc:
                spec_errors[i] = exc
                show_error(exc)

    # ---- variables ----
    var_names = all_variables(specs.values())
    try:
        questions = [q.to_dict() for q in scenario_questions()]
    except WorkbenchError as exc:
        questions = []
        show_error(exc)
    st.markdown("**Input**")
    if questions and "question" in var_names:
        q_labels = ["(type your own)"] + [f"{q['id']}: {q['question'][:90]}" for q in questions]

        def on_question() -> None:
            idx = q_labels.index(ss.pl_question_pick) if ss.pl_question_pick in q_labels else 0
            if idx:
                ss["pl_var_question"] = questions[idx - 1]["question"]

        st.selectbox("Fill {question} from the scenario's question set", q_labels, key="pl_question_pick",
                     on_change=on_question, help="sample_docs/eval/questions.jsonl")
    if any("context" in s.variables() for s in specs.values() if _parses(s)):
        var_names.append("context")
    var_cols = st.columns(max(1, min(3, len(var_names)))) if var_names else []
    for k, name in enumerate(var_names):
        ss.setdefault(f"pl_var_{name}", "")
        var_cols[k % len(var_cols)].text_area(
            f"{{{name}}}" + (" (optional)" if name == "context" else ""), key=f"pl_var_{name}", height=68,
            help="Retrieved passages go here on the RAG page; paste some to try a RAG prompt by hand."
            if name == "context" else f"Value of {{{name}}} in the templates.")
    variables = {name: ss.get(f"pl_var_{name}", "") for name in var_names if ss.get(f"pl_var_{name}", "").strip()}

    run_clicked = st.button("▶ Run all", type="primary", key="pl_run", disabled=not specs,
                            help="Run every valid variant on this input; outputs stream into their columns.")
    st.caption("Metrics: **Prompt tok** / **Output tok** = tokens in / out (the cost), **TTFT** = time to first "
               "token, **Tok/s** = generation speed after the first token, **Latency** = total wall time; the bar "
               "shows how much of the model's context window the request uses.")

    out_cols = st.columns(n, gap="small")
    slots = {}
    prepared = {}
    for i, col in enumerate(out_cols):
        with col:
            st.markdown(f"**Output {LABELS[i]}**" + (f" · `{specs[i].name}`" if i in specs else ""))
            status = st.empty()
            text_box = st.empty()
            below = st.container()
            slots[i] = (status, text_box, below)
            if i in specs:
                backend_name, model = targets[i]
                variant = Variant(LABELS[i], specs[i], backend_name, model, ss.get(f"pl_{i}_ref", ""))
                fill = {k: variables.get(k, f"<{k}>") for k in specs[i].variables() if k != "context"}
                if "context" in variables:
                    fill["context"] = variables["context"]
                try:
                    pre = prepare(variant, fill, get_backend(backend_name))
                    prepared[i] = pre
                    if pre.n_ctx:
                        st.progress(min(1.0, pre.context_fraction),
                                    text=f"Context: {pre.prompt_tokens} prompt + {pre.params.max_tokens} max "
                                         f"= {pre.needed_tokens}/{pre.n_ctx} tokens")
                    if pre.warning:
                        st.warning(pre.warning)
                except WorkbenchError as exc:
                    show_error(exc)
                # the equivalent CLI line
                saved = saved_spec(i)
                ref = ss.get(f"pl_{i}_ref") or specs[i].name
                cli_vars = {k: variables.get(k, "...") for k in specs[i].variables()
                            if k != "context" or k in variables}
                line = cli_line(ref if not unsaved_prompt_edits(specs[i], saved) else specs[i].name,
                                cli_vars, backend_name, model,
                                param_overrides(specs[i].params, saved.params if saved else None))
                with st.expander("CLI"):
                    if unsaved_prompt_edits(specs[i], saved):
                        st.caption("Unsaved prompt edits: save a version (Versions tab), then run:")
                    st.code(line, language="bash", wrap_lines=True)

    def show_result(i: int, res) -> None:
        status, text_box, below = slots[i]
        if res.error:
            status.empty()
            below.error(res.error)
            return
        status.caption(f"✓ done in {res.usage.latency_s:.2f} s" if res.usage else "✓ done")
        text_box.markdown(res.text or "_(empty reply)_")
        with below:
            show_usage(res.usage)
            if res.usage and res.usage.finish_reason == "length":
                st.warning("The answer hit max_tokens and was cut off: raise max_tokens to see all of it.")
            if res.json_ok is True:
                st.success("JSON valid ✓ (matches the schema)")
            elif res.json_ok is False:
                st.error(f"JSON invalid: {res.json_error}")

    if run_clicked:
        ss.pl_results = {}
        runnable = []
        for i in range(n):
            if i not in specs:
                continue
            backend_name, model = targets[i]
            variant = Variant(LABELS[i], specs[i], backend_name, model, ss.get(f"pl_{i}_ref", ""))
            try:
                runnable.append((i, prepare(variant, variables, get_backend(backend_name))))
            except WorkbenchError as exc:
                slots[i][2].error(str(exc))
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
                text_box.markdown(texts[i])
            elif ev.kind in ("done", "error"):
                ss.pl_results[i] = ev.result
                show_result(i, ev.result)
    else:
        for i, res in (ss.get("pl_results") or {}).items():
            if i < n:
                show_result(i, res)

# ---- batch ---------------------------------------------------------------------------------------------------
with tab_batch:
    st.caption("Run variants over the scenario's question set (sample_docs/eval/questions.jsonl), one input after "
               "another, and compare latency and token cost.")
    try:
        all_q = [q.to_dict() for q in scenario_questions()]
    except WorkbenchError:
        all_q = []
    if not all_q:
        st.info("No question set found at sample_docs/eval/questions.jsonl.")
    else:
        with st.form("pl_batch_form"):
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
            for lab in picked:
                i = LABELS.index(lab)
                backend_name, model = targets[i]
                variant = Variant(lab, specs[i], backend_name, model, ss.get(f"pl_{i}_ref", ""))
                fixed = {k: v for k, v in variables.items() if k != "question"}

                def progress(k, tot, rec, lab=lab):
                    counter[0] += 1
                    bar.progress(min(1.0, counter[0] / total), text=f"Variant {lab}: {k}/{tot} — {rec['input'][:60]}")

                try:
                    records += run_batch(variant, all_q, get_backend(backend_name), fixed=fixed, limit=int(limit),
                                         progress=progress)
                except WorkbenchError as exc:
                    show_error(exc)
            bar.progress(1.0, text=f"Done: {len(records)} runs")
            ss.pl_batch = records
        elif go:
            st.warning("Pick at least one variant.")
        records = ss.get("pl_batch") or []
        if records:
            st.subheader("Summary")
            st.dataframe(pd.DataFrame(batch_summary(records)), hide_index=True)
            st.plotly_chart(batch_figure(records), key="pl_batch_chart")
            st.subheader("Results")
            st.dataframe(pd.DataFrame(records), hide_index=True,
                         column_config={"output": st.column_config.TextColumn("output", width="large")})
            if any(r["error"] for r in records):
                st.warning(f"{sum(1 for r in records if r['error'])} input(s) failed; see the error column.")

# ---- versions ------------------------------------------------------------------------------------------------
ss.pl_specs_last = specs                 # what the save callback saves (the columns as rendered in this run)
ss.pl_spec_errors_last = {i: str(e) for i, e in spec_errors.items()}


def flash(kind: str, text: str) -> None:
    ss.pl_flash = (kind, text)


def on_save() -> None:
    lab = ss.get("pl_save_from", "A")
    i = LABELS.index(lab)
    if i in (ss.get("pl_spec_errors_last") or {}):
        flash("error", f"Variant {lab} is not valid, nothing was saved: {ss.pl_spec_errors_last[i]}")
        return
    spec = (ss.get("pl_specs_last") or {}).get(i)
    if spec is None:
        flash("error", f"Variant {lab} is not shown; raise the number of variants first.")
        return
    try:
        v = PromptLibrary().save(spec, ss.get("pl_save_message") or "")
    except WorkbenchError as exc:
        flash("error", f"Nothing was saved: {exc}")
        return
    ref = f"{spec.name}@{v}"
    ss[f"pl_{i}_ref"] = ref
    ss[f"pl_{i}_loaded"] = spec.to_dict()
    ss.pl_hist_name = spec.name
    ss.pl_save_message = ""
    sync_query_params()
    flash("success", f"Saved variant {lab} as {ref}.")


def on_restore() -> None:
    name, v = ss.pl_hist_name, ss.pl_restore_v
    try:
        nv = PromptLibrary().restore(f"{name}@{v}")
        flash("success", f"Restored {name}@{v} as {name}@{nv}.")
    except WorkbenchError as exc:
        flash("error", str(exc))


def on_label() -> None:
    name, v = ss.pl_hist_name, ss.pl_restore_v
    try:
        PromptLibrary().label(name, v, "baseline")
        flash("success", f"{name}@baseline now points to version {v}.")
    except WorkbenchError as exc:
        flash("error", str(exc))


def on_load_into() -> None:
    i = LABELS.index(ss.get("pl_load_target", "A"))
    ref = f"{ss.pl_hist_name}@{ss.pl_restore_v}"
    try:
        load_ref(i, ref, PromptLibrary())
        sync_query_params()
        flash("success", f"Loaded {ref} into variant {LABELS[i]}.")
    except WorkbenchError as exc:
        flash("error", str(exc))


with tab_versions:
    if ss.get("pl_flash"):
        kind, text = ss.pop("pl_flash")
        (st.success if kind == "success" else st.error)(text)
    st.markdown("**Save a variant as a new version**")
    with st.form("pl_save_form"):
        st.selectbox("Variant", [LABELS[i] for i in range(n)], key="pl_save_from",
                     help="Saved under the variant's Name; an existing name gets its next version number.")
        st.text_input("Message", key="pl_save_message", placeholder="what changed and why",
                      help="Every save is a new immutable version; the message is its history line.")
        st.form_submit_button("Save version", type="primary", on_click=on_save)

    names = lib.names()
    if not names:
        st.info("The library is empty: save a variant above.")
    else:
        st.divider()
        if ss.get("pl_hist_name") not in names:
            ss.pl_hist_name = ss.get("pl_0_name") if ss.get("pl_0_name") in names else names[0]
        hname = st.selectbox("Prompt", names, key="pl_hist_name", help="History of one prompt in the library.")
        versions = lib.versions(hname)
        st.dataframe(pd.DataFrame([{"version": v.version, "created": v.created, "message": v.message,
                                    "labels": ", ".join(v.labels)} for v in reversed(versions)]),
                     hide_index=True)
        vnums = [v.version for v in reversed(versions)]
        c1, c2 = st.columns(2)
        with c1:
            st.markdown("**Diff two versions**")
            a = st.selectbox("From", vnums, index=min(1, len(vnums) - 1), key=f"pl_diff_a_{hname}_{len(vnums)}")
            b = st.selectbox("To", vnums, index=0, key=f"pl_diff_b_{hname}_{len(vnums)}")
            try:
                diff = lib.diff(f"{hname}@{a}", f"{hname}@{b}")
                st.code(diff or "(identical)", language="diff")
            except WorkbenchError as exc:
                show_error(exc)
        with c2:
            st.markdown("**Restore, label or load a version**")
            if ss.get("pl_restore_v") not in vnums:
                ss.pl_restore_v = vnums[0]
            st.selectbox("Version", vnums, key="pl_restore_v")
            st.button("Restore as newest version", key="pl_restore", on_click=on_restore,
                      help="Saves this old version again as a new version (history is never rewritten).")
            st.button("Label as baseline", key="pl_label", on_click=on_label,
                      help="The Compare page and `--prompt NAME@baseline` use this version.")
            lc1, lc2 = st.columns([1, 2])
            lc1.selectbox("Into", [LABELS[i] for i in range(n)], key="pl_load_target", label_visibility="collapsed")
            lc2.button("Load into variant", key="pl_load_into", on_click=on_load_into)
