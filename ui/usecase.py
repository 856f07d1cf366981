"""Views of the Use Case page: pick or create a use case, import past answers, accept derived checks, generate
candidate questions (a background job), review them, and run the first comparison (a Compare job). All logic is
in core.usecase.

Untrusted text (file names, documents, answers, questions) is only shown through st.text, st.code, st.dataframe
and st.data_editor cells, never as Markdown. Session keys start with "uc_".
"""
from __future__ import annotations

import streamlit as st

from core.config import PROJECT_ROOT
from core.errors import WorkbenchError
from ui.common import md_escape, show_error
from ui.jobs import job_panel
from ui.safe import grid, md

ss = st.session_state
STATUS_ICON = {"pending": "⏳", "accepted": "✅", "rejected": "❌"}


# --- pick / create ------------------------------------------------------------------------------------------------
def pick_usecase():
    """The selected use case: the sidebar selector every page shares (ui.usecase_select, ?usecase=NAME)."""
    from ui import usecase_select

    return usecase_select.select()


def new_usecase_form() -> None:
    from core.usecase import workspace

    with st.expander("➕ New use case", expanded=len(workspace.list_usecases()) == 1):
        with st.form("uc_new_form", clear_on_submit=False):
            c1, c2 = st.columns(2)
            name = c1.text_input("Name (lowercase, digits, _)", key="uc_new_name", placeholder="acme_support")
            title = c2.text_input("Title", key="uc_new_title", placeholder="Acme support desk")
            product = c1.text_input("Product or team", key="uc_new_product", placeholder="Acme")
            collection = c2.text_input("Collection (default: the name)", key="uc_new_collection")
            system = st.text_area("System prompt of the assistant (optional)", key="uc_new_system", height=68)
            uploads = st.file_uploader("Documents (txt, md, html, pdf, docx)", accept_multiple_files=True,
                                       type=["txt", "md", "markdown", "html", "htm", "pdf", "docx"], key="uc_new_docs")
            copy_demo = st.checkbox("Start from a copy of the Tidewave demo instead", key="uc_new_copy")
            submitted = st.form_submit_button("Create use case", type="primary")
        if submitted:
            try:
                if copy_demo:
                    uc = workspace.copy_usecase(workspace.BUILTIN, name.strip(), title=title)
                else:
                    uc = workspace.create_usecase(name.strip(), title=title, product=product, collection=collection,
                                                  system_prompt=system)
                    if uploads:
                        save_uploads(uc, [(u.name, u.getvalue()) for u in uploads])
                        start_ingest(uc)
                ss["uc_select_next"] = uc.name
                st.rerun()
            except WorkbenchError as exc:
                show_error(exc)


def save_uploads(uc, files: list[tuple[str, bytes]]) -> list[str]:
    """Uploaded documents into the use case's knowledge/ folder under sanitised names."""
    from core.config import get_settings
    from core.rag.loaders import SUPPORTED, sanitize_name
    from core.usecase.workspace import write_bytes_atomic

    limit = get_settings().max_upload_mb * 1024 * 1024
    folder = uc.writable("knowledge")
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, data in files:
        safe = sanitize_name(name)
        if not any(safe.lower().endswith(s) for s in SUPPORTED):
            st.warning("Skipped a file of an unsupported type:")
            st.text(name)
            continue
        if len(data) > limit:
            st.warning("Skipped a file larger than the upload limit:")
            st.text(name)
            continue
        write_bytes_atomic(folder / safe, data)
        saved.append(safe)
    return saved


def start_ingest(uc) -> None:
    from core.rag import jobs

    ss[f"uc_ingest_{uc.name}"] = jobs.start_ingest_job(paths=[uc.file("knowledge")], collection=uc.collection,
                                                      label=f"use case {uc.name}")


def documents_view(uc) -> None:
    from core.usecase import workspace

    files = workspace.knowledge_files(uc)
    st.write(f"**{len(files)} document(s)** in the use case, collection {md(uc.collection)}.")
    if files:
        # a plain-text listing, not st.dataframe: no pandas/pyarrow import on the page's first render
        names = [f.relative_to(uc.file("knowledge")).as_posix() for f in files]
        w = max(len("document"), *(len(n) for n in names))
        listing = [f"{'document':<{w}}  {'bytes':>12}"] + [f"{n:<{w}}  {f.stat().st_size:>12,}"
                                                           for n, f in zip(names, files)]
        st.code("\n".join(listing), language=None, height=min(22 * len(listing) + 30, 250))
    job_id = ss.get(f"uc_ingest_{uc.name}")
    if job_id:
        ingest_status(job_id)
    if uc.read_only:
        return
    up = st.file_uploader("Add documents", accept_multiple_files=True, key=f"uc_add_docs_{uc.name}",
                          type=["txt", "md", "markdown", "html", "htm", "pdf", "docx"])
    c1, c2 = st.columns(2)
    if c1.button("Add and index", key=f"uc_add_btn_{uc.name}", disabled=not up):
        save_uploads(uc, [(u.name, u.getvalue()) for u in up])
        start_ingest(uc)
        st.rerun()
    if c2.button("Re-index all documents", key=f"uc_reindex_{uc.name}", disabled=not files):
        start_ingest(uc)
        st.rerun()


@st.fragment(run_every=2)
def ingest_status(job_id: str) -> None:
    from core.rag import jobs

    try:
        job = jobs.read_job(job_id)
    except WorkbenchError as exc:
        show_error(exc)
        return
    if job.active:
        st.progress(min(1.0, job.overall), text=f"Indexing: {job.done}/{len(job.files)} file(s)")
    elif job.state == "succeeded":
        st.success(f"Indexed {job.ok} file(s)" + (f", {job.failed} failed" if job.failed else "") +
                   f" in {job.seconds:.0f} s.")
        for r in job.results:
            if not r.get("ok"):
                st.text(f"{r.get('file')}: {r.get('error')}")
    else:
        st.error(f"Indexing {md(job.state)}.")
        st.text(job.error or job.message)


# --- past answers -------------------------------------------------------------------------------------------------
def answers_view(uc) -> None:
    from core.usecase import importers, workspace

    if uc.has("answers"):
        st.write(f"**{len(workspace.read_jsonl(uc.file('answers')))} past answers** imported; "
                 f"training dataset: {md(uc.file('train').name)}.")
    if uc.read_only:
        st.info("The demo's training data is the 192 Tidewave transcripts (sample_docs/finetune/).")
        return
    up = st.file_uploader("Past answers (CSV or JSONL)", type=["csv", "jsonl", "json", "tsv"], key=f"uc_ans_{uc.name}")
    if not up:
        return
    data = up.getvalue()
    try:
        columns, rows = importers.read_table(data, up.name)
    except WorkbenchError as exc:
        show_error(exc)
        return
    guess = importers.guess_mapping(columns)
    none = "—"
    st.write(f"{len(rows)} row(s), columns:")
    st.text(", ".join(columns))
    c = st.columns(4)

    def pick(col, label, default, optional):
        opts = ([none] if optional else []) + columns
        idx = opts.index(default) if default in opts else 0
        return col.selectbox(label, opts, index=idx, key=f"uc_map_{label}_{uc.name}")

    q = pick(c[0], "question", guess.question if guess else "", False)
    a = pick(c[1], "answer", guess.answer if guess else (columns[1] if len(columns) > 1 else ""), False)
    ctx = pick(c[2], "context", guess.context if guess else none, True)
    cat = pick(c[3], "category", guess.category if guess else none, True)
    mapping = importers.ColumnMapping(q, a, "" if ctx == none else ctx, "" if cat == none else cat)
    mask = st.checkbox("Mask personal data (emails → [email], phone numbers → [phone]) before training",
                       value=True, key=f"uc_mask_{uc.name}")
    keep = st.text_input("Keep these (your own support address or phone), comma-separated", key=f"uc_keep_{uc.name}")
    keep_list = [k.strip() for k in keep.split(",") if k.strip()]
    b1, b2 = st.columns(2)
    check, do = b1.button("Check", key=f"uc_ans_check_{uc.name}"), b2.button("Import", type="primary",
                                                                           key=f"uc_ans_do_{uc.name}")
    if not (check or do):
        return
    try:
        rep = importers.import_answers(uc, data, up.name, mapping, mask=mask, keep=keep_list, dry_run=not do)
    except WorkbenchError as exc:
        show_error(exc)
        return
    d = rep.to_dict()
    m = st.columns(5)
    m[0].metric("Rows", d["rows_read"])
    m[1].metric("Kept", d["kept"])
    m[2].metric("Duplicates", len(d["duplicates"]))
    m[3].metric("Personal data", len(d["pii"]))
    m[4].metric("Training rows", rep.written)
    if d["duplicates"]:
        st.dataframe(d["duplicates"], hide_index=True, width="stretch")
    if d["pii"]:
        st.write("Personal data found" + (" (masked in the training rows):" if mask else ":"))
        st.dataframe(d["pii"], hide_index=True, width="stretch")
    if d["problems"]:
        st.dataframe(d["problems"], hide_index=True, width="stretch")
    if d["leaks_dropped"]:
        st.warning(f"{len(d['leaks_dropped'])} row(s) contain question-set text and are left out of training.")
    ds = d["dataset"]
    (st.success if do else st.info)(f"{'Imported' if do else 'Would import'} {rep.written} training row(s); "
                                    f"dataset check: {ds.get('errors', 0)} error(s), {ds.get('warnings', 0)} warning(s).")


def checks_view(uc) -> None:
    from core.usecase import checks, workspace

    current = workspace.load_checks(uc)
    if current["voice_checks"]:
        # a plain-text grid (a few checks), not st.dataframe: no pandas/pyarrow import on the first render
        grid([{k: c[k] for k in ("name", "pattern", "description")} for c in current["voice_checks"]],
             widths=[1, 2, 3])
    else:
        st.write("No voice/format checks yet.")
    proposals = [p for p in workspace.read_proposals(uc)
                 if p["pattern"] not in {c["pattern"] for c in current["voice_checks"]}]
    if not proposals or uc.read_only:
        return
    st.write("Proposed from the past answers (seen in ≥ 90% of them):")
    chosen = []
    for p in proposals:
        label = f"{md(p['name'])}: {p['matched']}/{p['total']} answers ({p['support'] * 100:.0f}%)"
        if st.checkbox(label, value=True, key=f"uc_chk_{uc.name}_{p['name']}"):
            chosen.append(p["name"])
        st.code(p["pattern"], language=None)
    if st.button("Accept selected checks", key=f"uc_chk_accept_{uc.name}", disabled=not chosen):
        try:
            workspace.save_checks(uc, checks.accept(current, proposals, chosen))
            st.rerun()
        except WorkbenchError as exc:
            show_error(exc)


# --- candidates ---------------------------------------------------------------------------------------------------
def _generation_outcome(job) -> None:
    res = job.result or {}
    if job.state == "succeeded":
        st.success(f"{int(res.get('candidates') or 0)} new candidate(s) ({md(res.get('generator', '?'))}) from "
                   f"{int(res.get('chunks_done') or 0)} chunk(s) in {job.seconds:.1f} s.")
        if res.get("errors"):
            st.warning(f"{len(res['errors'])} chunk(s) failed:")
            st.dataframe(res["errors"], hide_index=True, width="stretch")
    elif job.state == "cancelled":
        st.warning(md_escape(job.message))
    elif job.state in ("failed", "interrupted"):
        st.error(md_escape(job.error or job.message))


def generation_panel(uc) -> None:
    """The newest generation job of the use case: live progress, log, cancel (ui/jobs.py's panel)."""
    from core.usecase import questions

    job_id = ss.get(f"uc_gen_job_{uc.name}")
    if not job_id:
        last = questions.latest_job(uc.name)
        job_id = last.id if last is not None else None
    job_panel(job_id, key=f"uc_gen_{uc.name}", title=f"Question generation for {md_escape(uc.name)}",
              outcome=_generation_outcome, show_items=False, cancel_help="Stops after the current chunk; the "
              "candidates made so far are kept.")


def generate_view(uc) -> None:
    from core.llm.registry import backend_names
    from core.usecase import questions

    if uc.read_only:
        st.info("The demo's 57 questions were written by hand. Make a copy to generate your own.")
        return
    c1, c2, c3 = st.columns([2, 2, 1])
    gen = c1.radio("Generator", ["auto", "extractive", "llm"], horizontal=True, key=f"uc_gen_{uc.name}",
                   help="extractive: model-free lookup questions from fact sentences (the built-in model cannot "
                        "write good questions); llm: a capable Ollama/OpenAI-compatible model writes them.")
    backend = c2.selectbox("Backend (llm)", backend_names(), key=f"uc_gen_backend_{uc.name}")
    per_chunk = c3.number_input("Per chunk", 1, 10, 3, key=f"uc_gen_per_{uc.name}")
    model = c2.text_input("Model (llm, optional)", key=f"uc_gen_model_{uc.name}")
    try:
        spec = questions.job_spec(uc.name, gen, backend=backend if gen != "extractive" else "", model=model.strip(),
                                  per_chunk=int(per_chunk))
    except WorkbenchError as exc:
        show_error(exc)
        return
    last = questions.latest_job(uc.name)
    busy = last is not None and last.active
    if st.button("Generate candidate questions", type="primary", key=f"uc_gen_btn_{uc.name}", disabled=busy,
                 help="Runs as a background job in its own process: you can leave the page meanwhile."):
        try:
            ss[f"uc_gen_job_{uc.name}"] = questions.start_job(spec).id
        except WorkbenchError as exc:
            show_error(exc)
    st.caption("The same from a terminal (in the foreground, progress on stderr):")
    st.code(questions.cli_line(spec), language="bash")
    generation_panel(uc)


def _cell_list(v) -> list[str]:
    return [x.strip() for x in str(v or "").split(";") if x.strip()]


def review_has_unsaved_edits(uc) -> bool:
    """Whether a review table of this use case holds edits not saved yet. The page keeps rendering the Review
    tab while it does: a widget that is not rendered loses its state, and edits must not be lost by a tab switch."""
    prefix = f"uc_rev_{uc.name}_"
    for k in list(ss.keys()):
        v = ss[k] if isinstance(k, str) and k.startswith(prefix) else None
        if isinstance(v, dict) and (v.get("edited_rows") or v.get("added_rows") or v.get("deleted_rows")):
            return True
    return False


def review_view(uc) -> None:
    import pandas as pd

    from core.usecase import review

    cands = review.load_candidates(uc)
    if not cands:
        st.write("No candidates yet." if not uc.read_only else "The demo has no candidates.")
        return
    counts = {s: sum(1 for c in cands if c.status == s) for s in ("pending", "accepted", "rejected")}
    st.write(f"{len(cands)} candidate(s): {counts['pending']} pending, {counts['accepted']} accepted, "
             f"{counts['rejected']} rejected.")
    show = st.radio("Show", ["pending", "accepted", "rejected", "all"], horizontal=True, key=f"uc_rev_show_{uc.name}")
    shown = [c for c in cands if show == "all" or c.status == show]
    df = pd.DataFrame([{"id": c.id, "status": c.status, "question": c.question, "reference": c.reference,
                        "evidence": c.evidence, "keywords": "; ".join(c.keywords), "tags": "; ".join(c.tags),
                        "source": c.source, "match": c.evidence_match, "generator": c.generator} for c in shown])
    if df.empty:
        st.write("Nothing to show.")
    else:
        editor = f"uc_rev_{uc.name}_{show}"
        edited = st.data_editor(
            df, key=editor, hide_index=True, width="stretch", disabled=uc.read_only
            or ["id", "source", "match", "generator"],
            column_config={"status": st.column_config.SelectboxColumn("status", options=list(STATUS_ICON)),
                           "tags": st.column_config.TextColumn("tags", help="';'-separated: " + ", ".join(review.TAGS)),
                           "keywords": st.column_config.TextColumn("keywords", help="';'-separated")})
        if not uc.read_only:
            c1, c2, c3 = st.columns(3)
            if c1.button("Save review", key=f"uc_rev_save_{uc.name}"):
                if apply_table(uc, shown, edited):
                    ss.pop(editor, None)      # saved: the edits belong to the old table (rows move between views)
            if c2.button("Accept all shown", key=f"uc_rev_all_{uc.name}"):
                res = review.set_status(uc, [c.id for c in shown], "accepted", only_pending=False)
                st.success(f"{res.changed} accepted.")
                st.rerun()
            if c3.button("Save question set", type="primary", key=f"uc_qs_save_{uc.name}"):
                save_question_set(uc)
    with st.expander("Source chunk of a candidate"):
        pick = st.selectbox("Candidate", [c.id for c in shown], key=f"uc_rev_chunk_{uc.name}",
                            format_func=lambda i: next(c.question for c in shown if c.id == i)[:90])
        c = next((c for c in shown if c.id == pick), None)
        if c is not None:
            st.text(f"{c.source}  ·  chunk {c.chunk_id[:12]}  ·  evidence {c.evidence_match}")
            st.code(c.chunk_text or "(no chunk stored)", language=None, wrap_lines=True)


def apply_table(uc, shown, edited) -> bool:
    """Apply the table's edits; True when every change was applied."""
    from core.usecase import review

    by_id = {c.id: c for c in shown}
    decisions = []
    for row in edited.to_dict("records"):
        c = by_id.get(row["id"])
        if c is None:
            continue
        d = {"id": c.id}
        for k in ("status", "question", "reference", "evidence"):
            if str(row[k] or "") != getattr(c, k):
                d[k] = str(row[k] or "")
        for k in ("keywords", "tags"):
            if _cell_list(row[k]) != getattr(c, k):
                d[k] = _cell_list(row[k])
        if len(d) > 1:
            decisions.append(d)
    res = review.apply(uc, decisions)
    if res.errors:
        st.error(f"{len(res.errors)} change(s) could not be applied:")
        st.dataframe(res.errors, hide_index=True, width="stretch")
    st.success(f"{res.changed} candidate(s) updated.")
    return not res.errors


def save_question_set(uc) -> None:
    from core.usecase import review

    try:
        rep = review.save_question_set(uc)
    except WorkbenchError as exc:
        show_error(exc)
        return
    st.success(f"Question set saved: {rep.saved} question(s).")
    if rep.skipped:
        st.warning(f"{len(rep.skipped)} accepted question(s) not saved (evidence re-checked against the documents):")
        st.dataframe(rep.skipped, hide_index=True, width="stretch")
    if rep.warnings:
        st.dataframe(rep.warnings, hide_index=True, width="stretch")
    if rep.leaks_removed:
        st.info(f"{len({lk['row'] for lk in rep.leaks_removed})} training row(s) contained question-set text and were "
                "removed from the training dataset.")


def comparison_view(uc) -> None:
    from core.usecase import workspace

    s = workspace.summary(uc)
    m = st.columns(4)
    m[0].metric("Questions", s["questions"])
    m[1].metric("Training rows", s["training_rows"])
    m[2].metric("Voice checks", len(s["voice_checks"]))
    m[3].metric("Documents", s["documents"])
    if not s["questions"]:
        st.info("Save a question set first (review the candidates above).")
    st.write("Run the first comparison (classic approaches on this use case) from a terminal:")
    st.code(workspace.compare_command(uc), language="bash")
    if not uc.read_only and s["training_rows"]:
        st.write("Train the fine-tuned columns first (optional):")
        st.code(f"python -m core finetune --data {uc.file('train')} --preset quick --name {uc.name}", language="bash")
    c1, c2 = st.columns([1, 3])
    limit = c1.number_input("Questions (0 = all)", 0, 5000, 0, key=f"uc_cmp_limit_{uc.name}",
                            help="Only the first N questions of the set (the CLI's --limit).")
    if c2.button("Run first comparison", type="primary", key=f"uc_cmp_{uc.name}", disabled=not s["questions"],
                 help="The classic approaches on this use case as a Compare batch job (its own process)."):
        try:
            run_id = workspace.start_comparison(workspace.get_usecase(uc.name), limit=int(limit) or None)
            from core.compare import runner
            runner.start_worker(run_id)
            ss[f"uc_cmp_run_{uc.name}"] = run_id
        except WorkbenchError as exc:
            show_error(exc)
    run_id = ss.get(f"uc_cmp_run_{uc.name}")
    if run_id:
        comparison_panel(uc, run_id)


COMPARE_PAGE = PROJECT_ROOT / "app_pages" / "4_Compare.py"      # absolute: works from any entrypoint


def compare_link(uc, run_id: str) -> dict:
    """The query parameters that open Compare on this run and use case."""
    return {"usecase": uc.name, "run": run_id}


def comparison_panel(uc, run_id: str) -> None:
    """The first comparison's job (ui/jobs.py's panel) and the way to its results on the Compare page."""
    job = job_panel(run_id, key=f"uc_cmp_{uc.name}", title=f"First comparison on {md_escape(uc.name)}",
                    show_items=False)
    if job is None:
        return
    if st.button("Open it in Compare", key=f"uc_cmp_open_{uc.name}",
                 help="The Compare page with this run selected (results, charts, decision report)."):
        st.switch_page(COMPARE_PAGE, query_params=compare_link(uc, run_id))


def readonly_banner(uc) -> None:
    from core.usecase import workspace

    if not uc.read_only:
        return
    c1, c2 = st.columns([3, 1])
    c1.info("This is the bundled demo: read-only. Make an editable copy to change it.")
    new = c2.text_input("Copy name", value="my_tidewave", key="uc_copy_name", label_visibility="collapsed")
    if c2.button("Make a copy", key="uc_copy_btn"):
        try:
            ss["uc_select_next"] = workspace.copy_usecase(uc.name, new.strip()).name
            st.rerun()
        except WorkbenchError as exc:
            show_error(exc)
