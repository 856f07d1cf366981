"""Views of the Knowledge Base page: the sidebar (collection, chunking), the four tabs and the ingest job panel.

Opening the page never loads the embedder (no torch import): ingests run as jobs in their own process (the panel
reads their run folder), and the model is loaded in this process only for a query, an answer or an evaluation.
Session keys start with "kb_". Document and model text is only ever shown as plain text or escaped Markdown.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core import jobs as joblayer
from core.errors import WorkbenchError
from core.rag import api, jobs, views
from core.rag import listing as rag_listing
from ui import safe
from ui.common import backend_picker, get_backend, md_escape, show_error, show_usage
from ui.jobs import ago, job_panel, render

UPLOAD_TYPES = ["txt", "md", "markdown", "html", "htm", "pdf", "docx"]
ss = st.session_state


@st.cache_resource(show_spinner="Loading the embedding model…")
def embedder(name: str | None = None):
    """Loaded on the first query, answer or evaluation -- never on page load."""
    return api.get_embedder(name)


@dataclass
class KbState:
    """What the sidebar chose: the collection and the chunking settings for the next ingest."""
    current: str | None
    info: object | None            # api.CollectionInfo of the current collection, None before its first ingest
    names: list[str]
    chunker: str
    size: int
    overlap: int
    sample_name: str
    sample_folder: Path
    sample_questions: Path


# ---- ingest jobs ------------------------------------------------------------------------------------------------
_STAGES = {"waiting": "waiting", "load": "reading", "chunk": "chunked, waiting for the embedder", "embed": "embedding",
           "store": "writing", "done": "done", "skipped": "unchanged, nothing to embed",
           "unchanged": "unchanged, nothing to embed", "error": "failed", "not ingested": "not ingested"}


def file_line(f: dict) -> str:
    """One file of a job as Markdown-safe text: its result once finished, else its stage."""
    name, r = md_escape(f.get("name", "")), f.get("result")
    if r:
        if not r.get("ok"):
            return f"✗ {name} — {md_escape(r.get('error', 'failed'))}"
        if r.get("skipped_unchanged"):
            return f"＝ {name} — unchanged, {r.get('chunks', 0)} chunks kept, nothing embedded"
        return (f"✓ {name} — {r.get('chunks', 0)} chunks, {r.get('tokens', 0):,} tokens, "
                f"{float(r.get('seconds') or 0):.2f} s")
    stage = _STAGES.get(f.get("stage", ""), f.get("stage", ""))
    msg = f.get("message") or ""
    return f"{name} — {stage}" + (f" ({md_escape(msg)})" if msg and f.get("stage") == "embed" else "")


def _panel_opts(highlight: bool) -> dict:
    def outcome(job: joblayer.Job) -> None:
        ij = jobs.from_job(job)
        n, results, when = len(ij.files), ij.results, ago(ij.finished)
        title = _title(ij)
        if ij.state in ("failed", "interrupted"):
            st.error(f"{title} stopped {when}: {md_escape(ij.error)}")
        elif ij.state == "cancelled":
            st.warning(f"{title} was cancelled {when}; {ij.ok} of {n} files were ingested before that.")
        elif ij.active:
            return
        elif highlight:
            (st.success if ij.ok == len(results) else st.warning)(f"{ij.ok} of {len(results)} files ingested.")
        else:
            st.caption(f"Last ingest: {title}, {when} — {ij.ok} of {len(results)} files ingested.")
        if results:
            with st.expander(f"Per-file results ({len(results)} files, {ij.seconds:.1f} s)", expanded=highlight):
                st.dataframe(views.file_result_rows(results), hide_index=True, width="stretch")
                st.caption("chunks: rows in the index for the file · tokens: embedder tokens in them · embedded: "
                           "chunks that had to be embedded (0 when the file is unchanged) · seconds: "
                           "load+chunk+embed+store.")

    def progress_text(job: joblayer.Job) -> str:
        done = sum(1 for f in job.items if f.get("result"))
        return f"Overall: {done}/{len(job.items) or '?'} files · {md_escape(job.message or job.state)}"

    return {"item_line": file_line, "progress_text": progress_text, "outcome": outcome, "show_log": False,
            "cancel_label": "Cancel ingest",
            "cancel_help": "Stops the worker. Files already finished stay indexed; the rest are not ingested."}


def _title(job) -> str:
    return f"Ingest of {md_escape(job.label or 'documents')} into “{md_escape(job.collection)}”"


def ingest_panel(job: jobs.IngestJob, highlight: bool) -> None:
    def on_end(_job) -> None:
        ss.kb_job = job.id
    if job.active:
        job_panel(job.id, key="kb", title=_title(job), on_end=on_end, **_panel_opts(True))
    else:
        render(joblayer.read(job.id, "ingest", reconcile=False), key="kb", title=_title(job),
               **_panel_opts(highlight))


def start_job(**kwargs) -> None:
    try:
        ss.kb_job = jobs.start_ingest_job(**kwargs)
        ss.pop("kb_pending_collection", None)
    except WorkbenchError as exc:
        show_error(exc)


def ensure_sample() -> None:
    """First visit of a session: index the sample collection in a background job unless it is (being) built."""
    if ss.get("kb_sample_checked"):
        return
    name = api.sample_paths()[0]
    if any(c.name == name and c.rows > 0 for c in rag_listing.collections()):
        ss.kb_sample_checked = True      # already built (the listing: no lancedb import on a cold start)
        return
    try:
        started = jobs.ensure_sample_job()
        if started:
            ss.kb_job = started
        ss.kb_sample_checked = True
    except WorkbenchError as exc:
        show_error(exc)


def sample_retry(state: KbState, choices: list[str]) -> None:
    """The sample collection could not be built (e.g. the embedder is missing): say why, offer to try again."""
    if state.sample_name in choices or not state.sample_folder.is_dir():
        return
    last = jobs.list_jobs(state.sample_name, limit=1)
    if last and last[0].state in ("failed", "cancelled", "interrupted"):
        st.error(f"Indexing the sample documents failed: {md_escape(last[0].error)}" if last[0].state != "cancelled"
                 else "Indexing the sample documents was cancelled.")
        if st.button("Index the sample docs", type="primary", key="kb_sample_retry"):
            try:
                ss.kb_job = jobs.ensure_sample_job(retry_failed=True)
                st.rerun()
            except WorkbenchError as exc:
                show_error(exc)


# ---- sidebar -----------------------------------------------------------------------------------------------------
def _follow_usecase(uc) -> tuple[str, Path] | None:
    """The selected use case's collection and question set (None for the demo: the sample's). When another use
    case is picked, the collection chosen before is forgotten so the new one's shows."""
    if ss.get("kb_usecase", uc.name) != uc.name:
        for k in ("kb_collection", "kb_collection_select", "kb_pending_collection", "kb_eval_path"):
            ss.pop(k, None)
        if "collection" in st.query_params:
            del st.query_params["collection"]
    ss.kb_usecase = uc.name
    if uc.builtin:
        return None
    return uc.collection, uc.questions


def sidebar(uc=None) -> tuple[KbState, list[str]]:
    """`uc`: the selected use case (ui.usecase_select); its collection is the default one, listed even before
    its first ingest, and its question set fills the evaluation's question file."""
    sample_name, sample_folder, sample_questions = api.sample_paths()
    own = _follow_usecase(uc) if uc is not None else None
    home = own[0] if own else sample_name           # the collection shown when none was chosen
    if own:
        sample_questions = own[1]
    collections = rag_listing.collections()     # no lancedb import while the store is unchanged
    names = [c.name for c in collections]
    indexing = sorted({j.collection for j in jobs.active_jobs()} - set(names))   # first ingest running
    choices = names + indexing
    unbuilt = own[0] if own and own[0] not in choices else None
    if unbuilt:
        choices.append(unbuilt)
    with st.sidebar:
        st.header("Collection")
        wanted = (st.query_params.get("collection") or ss.get("kb_collection")
                  or (home if home in choices else None))
        if choices:
            idx = choices.index(wanted) if wanted in choices else 0
            current = st.selectbox("Collection", choices, index=idx, key="kb_collection_select",
                                   format_func=lambda c: c + (" (being indexed…)" if c in indexing else
                                                              " (not indexed yet)" if c == unbuilt else ""),
                                   help="Each collection is its own LanceDB table set; questions are answered from it.")
        else:
            current = None
            st.info("No collection yet: upload documents to create one.")
        with st.popover("New collection", width="stretch"):
            with st.form("kb_new_collection", border=False):
                new_name = st.text_input("Name", placeholder="e.g. handbook",
                                         help="Letters, digits, '_' and '-'. It is created by the first upload.")
                if st.form_submit_button("Create") and new_name.strip():
                    ss.kb_pending_collection = new_name.strip()
        if ss.get("kb_pending_collection"):
            current = ss.kb_pending_collection
            st.caption(f"New collection **{md_escape(current)}** is created when you ingest its first document.")
        if current:
            st.query_params["collection"] = current
            ss.kb_collection = current
        info = next((c for c in collections if c.name == current), None)
        chunker, size, overlap = _chunking(info, current, sample_name, sample_folder)
    return KbState(current, info, names, chunker, size, overlap, sample_name, sample_folder, sample_questions), choices


def _chunking(info, current, sample_name, sample_folder) -> tuple[str, int, int]:
    emb = api.describe_embedder(info.embedder if info else None)   # from config files: no model load
    st.header("Chunking")
    st.caption(f"Sizes are in tokens of the embedder **{md_escape(emb.name.split('/')[-1])}** "
               f"({emb.dimension or '?'}-d, window {emb.max_tokens} tokens).")
    chunkers = api.chunker_names()
    descriptions = api.chunker_descriptions()
    default_chunker = info.chunker if info else api.DEFAULT_CHUNKER
    chunker = st.selectbox("Chunker", chunkers, index=chunkers.index(default_chunker) if default_chunker in chunkers
                           else 0, key="kb_chunker", help="\n\n".join(f"**{k}**: {v}" for k, v in descriptions.items()))
    size = st.number_input("Chunk size (tokens)", 16, emb.max_tokens,
                           value=min(int(info.chunk_size if info else api.DEFAULT_SIZE), emb.max_tokens),
                           step=8, key="kb_chunk_size",
                           help=f"At most the embedder's window ({emb.max_tokens}); ~200 keeps 4 chunks inside a "
                                "2k-token model.")
    overlap = st.number_input("Overlap (tokens)", 0, int(size) - 1,
                              value=min(int(info.overlap if info else api.DEFAULT_OVERLAP), int(size) - 1),
                              step=8, key="kb_overlap", help="Tokens shared by neighbouring chunks when text is split.")
    if info:
        st.caption(f"Active index: {md_escape(info.chunk_settings)} · {info.documents} documents · {info.rows} chunks "
                   f"· table version {info.table_version}")
        if (chunker, int(size), int(overlap)) != (info.chunker, info.chunk_size, info.overlap):
            st.warning("These settings differ from the active index: the next ingest builds a new index "
                       "(queries keep working on the old one until then).")
            if current == sample_name and st.button("Re-index the sample documents with these settings",
                                                    key="kb_reindex_sample"):
                start_job(paths=[sample_folder], collection=current, chunker=chunker, chunk_size=int(size),
                          overlap=int(overlap), label="sample documents (re-index)")
        try:
            indexes = rag_listing.indexes(current)
        except WorkbenchError:
            indexes = []
        if len(indexes) > 1:
            labels = {ix.table_name: f"{ix.chunk_settings} · {ix.rows} chunks" for ix in indexes}
            pick = st.selectbox("Index to search", list(labels), format_func=labels.get, key="kb_index_pick",
                                help="Every chunking setting you ingested with keeps its own index.")
            if pick != info.table_name:
                chosen = next(ix for ix in indexes if ix.table_name == pick)
                api.use_index(current, chosen.chunker, chosen.chunk_size, chosen.overlap, chosen.embedder)
                st.rerun()
    return chunker, int(size), int(overlap)


# ---- Documents ---------------------------------------------------------------------------------------------------
def documents_tab(s: KbState) -> None:
    if not s.current:
        st.info("Create a collection in the sidebar first.")
        return
    current = s.current
    st.subheader(f"Add documents to “{md_escape(current)}”")
    with st.form("kb_upload_form", clear_on_submit=True):
        files = st.file_uploader("Files", type=UPLOAD_TYPES, accept_multiple_files=True, key="kb_files",
                                 help="txt, md, html, pdf or docx; up to 50 MB each. An unchanged file is not "
                                      "embedded again; a changed one replaces its chunks atomically.")
        submitted = st.form_submit_button("Ingest files", type="primary")
    if submitted and files:
        start_job(uploads=[(f.name, f.getvalue()) for f in files], collection=current, chunker=s.chunker,
                  chunk_size=s.size, overlap=s.overlap)
    elif submitted:
        st.warning("Choose one or more files first.")
    with st.form("kb_folder_form"):
        folder = st.text_input("…or a folder on this machine", placeholder=str(s.sample_folder), key="kb_folder",
                               help="Every txt/md/html/pdf/docx file under it (recursively) is ingested.")
        go = st.form_submit_button("Ingest folder")
    if go:
        from core.paths import ui_path
        try:     # a folder typed in the UI must lie under the configured roots (WORKBENCH_PATH_ROOTS)
            path = ui_path(folder.strip() or str(s.sample_folder), kind="dir")
        except WorkbenchError as exc:
            path = None
            show_error(exc)
        if path is not None:
            from core.rag.loaders import expand_paths
            if not expand_paths([path]):
                st.warning(f"No supported files under {md_escape(path)}.")
            else:
                start_job(paths=[path], collection=current, chunker=s.chunker, chunk_size=s.size, overlap=s.overlap)

    # Ingest jobs of this collection: running ones live (they survive a refresh), else the latest result.
    col_jobs = jobs.list_jobs(current, limit=10)
    live = [j for j in col_jobs if j.active]
    for j in reversed(live):
        with st.container(border=True):
            ingest_panel(j, True)
    done = [j for j in col_jobs if not j.active]
    if done and not live:
        with st.container(border=True):
            ingest_panel(done[0], highlight=done[0].id == ss.get("kb_job"))

    st.subheader("Documents")
    try:
        docs = rag_listing.documents(current) if current in s.names else []
    except WorkbenchError:
        docs = []
    if not docs:
        st.info("No documents in this collection yet." + (" They appear here as the ingest job stores them."
                                                          if live else ""))
        return
    rows = views.document_rows(docs)
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"{len(docs)} documents, {sum(int(r['chunks']) for r in rows)} chunks in total · ingest s: the measured time to "
               "read, chunk and embed the document when it was last ingested.")
    doc_ids = [d["doc_id"] for d in docs]
    c1, c2 = st.columns([3, 1])
    sel = c1.selectbox("Browse a document's chunks", doc_ids, key="kb_browse_doc")
    c2.write("")
    if c2.button("🗑 Delete document", key="kb_delete", help="Removes its chunks from this collection's index."):
        try:
            n = api.delete_document(current, sel)
            st.toast(f"Deleted {md_escape(sel)} ({n} chunks).")
            st.rerun()
        except WorkbenchError as exc:
            show_error(exc)
    if sel:
        for ch in rag_listing.chunks(current, sel):
            with st.expander(f"Chunk {ch['position']} · {ch['tokens']} tokens · chars {ch['start']}–{ch['end']}"
                             + (f" · {md_escape(ch['heading'][:60])}" if ch["heading"] else "")):
                st.code(ch["text"], language=None, wrap_lines=True)
                st.caption(f"id {ch['id'][:16]}…")


# ---- Retrieval playground ----------------------------------------------------------------------------------------
def search_tab(s: KbState) -> None:
    if not s.info:
        st.info("Ingest documents first.")
        return
    with st.form("kb_search_form"):
        q = st.text_input("Query", key="kb_query", placeholder="e.g. How many SMS credits does Surge include?")
        k = st.slider("Top k", 1, 20, 5, key="kb_k")
        run = st.form_submit_button("Search", type="primary")
    if run:
        try:
            embedder(s.info.embedder)            # first query: load the model once (spinner)
            ss.kb_search = api.retrieve_modes(q, s.current, k=int(k))
        except WorkbenchError as exc:
            show_error(exc)
    res = ss.get("kb_search")
    if not res or next(iter(res.values())).collection != s.current:
        return
    only = api.only_found_by(res)
    first = next(iter(res.values()))
    from core.rag.retriever import fusion_config
    st.caption(f"Table version {first.table_version} · ★ = found only by this mode · scores: vector = cosine "
               f"similarity, fts = BM25, hybrid = {md_escape(fusion_config().describe())}.")
    titles = {"vector": "Vector (meaning)", "fts": "Full-text (keywords)",
              "hybrid": f"Hybrid ({fusion_config().method})"}
    for col, (mode, r) in zip(st.columns(3), res.items()):
        with col:
            st.markdown(f"**{titles[mode]}** · {r.seconds * 1000:.0f} ms")
            if not r.chunks:
                st.info("No match.")
            for c in r.chunks:
                star = " ★" if c.id in only[mode] else ""
                with st.container(border=True):
                    st.markdown(f"**#{c.rank}**{star} · score {c.score:.3f} · {md_escape(c.source)} · chunk {c.position}")
                    st.text(" ".join(c.text.split())[:400])


# ---- Ask with citations ------------------------------------------------------------------------------------------
def linked_answer(text: str, n: int) -> str:
    """Escape the model's Markdown, then turn valid [n] markers into links to the chunk anchors below."""
    from core.rag.context import citation_spans
    out, last = [], 0
    for start, end, nums in citation_spans(text):
        out.append(md_escape(text[last:start]))
        out.append("".join(f"[\\[{x}\\]](#kb-cite-{x})" if 1 <= x <= n else f"\\[{x}\\]" for x in nums))
        last = end
    out.append(md_escape(text[last:]))
    return "".join(out)


def context_caption(res) -> str:
    """One line: which RAG profile built the context (plain text; shown escaped)."""
    prof = res.profile or {}
    if not prof:
        return ""
    if res.context_selected:
        how = (f"selected sentences of the retrieved chunks, at most {prof.get('max_sentences')} within "
               f"{prof.get('budget_tokens')} tokens")
    else:
        how = "whole chunks"
    return f"Context: {prof.get('name')} profile · k={prof.get('k')} retrieved · {how}."


def show_answer(res) -> None:
    st.markdown(linked_answer(res.text, res.chunks_used))
    for p in res.citations.problems:
        st.warning(md_escape(p))
    if res.citations.ok:
        st.success(f"Cites {', '.join(f'[{n}]' for n in res.citations.cited)} — all among the retrieved chunks.")
    show_usage(res.usage)
    st.caption(f"Read table version {res.table_version} of “{md_escape(res.retrieval.collection)}” ({md_escape(res.retrieval.mode)}, "
               f"{res.chunks_used} chunks in the prompt) · {md_escape(res.backend)}/{md_escape(res.model)} · prompt “{md_escape(res.prompt)}”. "
               f"Reproduce: python -m core ask \"…\" --collection {md_escape(res.retrieval.collection)} --version {res.table_version}")
    cap = context_caption(res)
    if cap:
        safe.text(cap)
    st.markdown("##### Sources")
    snippets = list(res.snippets) if res.context_selected else []
    for i, c in enumerate(res.prompt_chunks, start=1):
        cited = " (cited)" if i in res.citations.cited else ""
        st.subheader(f"[{i}] {md_escape(c.source)} · chunk {c.position}{cited}", anchor=f"kb-cite-{i}", divider=False)
        if i <= len(snippets):
            st.caption("In the prompt (the sentences the context selection kept):")
            for sent in snippets[i - 1].sentences:
                safe.text(f"• {sent}")
            with st.expander("Whole retrieved chunk"):
                st.code(c.text, language=None, wrap_lines=True)
        else:
            st.code(c.text, language=None, wrap_lines=True)


def ask_tab(s: KbState) -> None:
    if not s.info:
        st.info("Ingest documents first.")
        return
    backend, model = backend_picker("kb")
    with st.form("kb_ask_form"):
        question = st.text_area("Question", key="kb_question", height=80,
                                placeholder="e.g. How much does an SMS top-up pack cost?")
        c1, c2, c3 = st.columns(3)
        mode = c1.selectbox("Retrieval mode", list(api.MODES), index=2, key="kb_ask_mode")
        k_ans = c2.slider("Chunks retrieved", 1, 8, 4, key="kb_ask_k",
                          help="The embedded model has a 2048-token window: ~4 chunks of 200 tokens fit.")
        prof = c3.selectbox("Context", ["backend's default", "embedded", "server"], key="kb_ask_profile",
                            help="embedded: the sentences that best match the question, under a small token budget "
                                 "(what a 135M model can read); server: whole chunks. The default follows the "
                                 "backend that answers.")
        ask = st.form_submit_button("Answer", type="primary")
    if ask:
        try:
            embedder(s.info.embedder)
            stream = api.answer(question, s.current, backend=get_backend(backend), model=model or None, mode=mode,
                                k=int(k_ans), stream=True,
                                profile=None if prof == "backend's default" else prof)
            holder = st.empty()
            with holder.container():
                safe.stream(stream)
            res = stream.result()
            holder.empty()
            ss.kb_answer = res
        except WorkbenchError as exc:
            show_error(exc)
    if ss.get("kb_answer") is not None and ss.kb_answer.retrieval.collection == s.current:
        show_answer(ss.kb_answer)


# ---- Retrieval evaluation ----------------------------------------------------------------------------------------
def _ui_file(path: str) -> Path:
    from core.paths import ui_path
    return ui_path(path, kind="file")       # under the configured roots (WORKBENCH_PATH_ROOTS)


def _uploaded_questions(data: bytes, name: str = "upload") -> list[dict]:
    return api.parse_eval_questions(data, name)


def eval_tab(s: KbState) -> None:
    if not s.info:
        st.info("Ingest documents first.")
        return
    st.caption("For each question with an evidence passage: the rank of the first retrieved chunk that contains "
               "it. hit@1 = share of questions whose evidence is the top chunk; hit@5 = within the top 5; "
               "MRR = mean of 1/rank (0 when not in the top 10). Run it again after changing the chunk size "
               "to compare.")
    with st.form("kb_eval_form"):
        default_q = str(s.sample_questions) if s.sample_questions.is_file() else ""
        qpath = st.text_input("Question file (JSONL with question, evidence, source)", value=default_q,
                              key="kb_eval_path")
        upload = st.file_uploader("…or upload one", type=["jsonl"], key="kb_eval_upload")
        go_eval = st.form_submit_button("Run evaluation", type="primary")
    if go_eval:
        try:
            questions = _uploaded_questions(upload.getvalue(), upload.name) if upload is not None else \
                api.load_questions(_ui_file(qpath))
            embedder(s.info.embedder)
            bar = st.progress(0.0, text="Evaluating…")
            rep = api.evaluate(s.current, questions,
                               progress=lambda i, n: bar.progress(i / n, text=f"{i}/{n} questions"))
            bar.empty()
            ss.kb_eval_runs = (ss.get("kb_eval_runs") or [])[-5:] + [rep]
        except (WorkbenchError, ValueError) as exc:
            show_error(exc)
    from core.rag.evaluate import chunk_sweep_figure
    from core.rag.retriever import fusion_config
    st.caption(f"Hybrid = {md_escape(fusion_config().describe())}, chosen by bench/retrieval_quality.py "
               "(README, Knowledge Base).")
    # a toggle, not an expander: an expander's chart is drawn (plotly imported) on every render, even closed
    if st.toggle("Show how chunk size and overlap change retrieval (measured on both evaluation sets)",
                 key="kb_sweep_show"):
        fig = chunk_sweep_figure()
        if fig is not None:
            st.plotly_chart(fig, width="stretch")
        else:
            st.caption("No measurement recorded: run `python bench/retrieval_quality.py --record`.")
    runs = [r for r in ss.get("kb_eval_runs", []) if r.collection == s.current]
    if not runs:
        return
    rep = runs[-1]
    st.markdown(f"**{rep.n_questions} questions** · table version {rep.table_version} · "
                f"{md_escape(views.eval_label(rep))} tokens · {rep.seconds:.1f} s")
    for col, (m, sc) in zip(st.columns(len(rep.modes)), rep.modes.items()):
        col.metric(f"{m}: MRR", f"{sc.mrr:.3f}", help="Mean reciprocal rank of the evidence chunk.")
        col.caption(f"hit@1 {sc.hit_at_1:.2f} · hit@5 {sc.hit_at_5:.2f} · {sc.mean_ms:.0f} ms/query")
    st.plotly_chart(views.eval_figure(runs), width="stretch")
    with st.expander("Per question (rank of the evidence chunk; 0 = not in the top 10)"):
        st.dataframe(rep.details, hide_index=True, width="stretch")
