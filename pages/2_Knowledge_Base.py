"""Knowledge Base: ingest documents into a LanceDB collection, compare retrieval modes, answer with citations,
evaluate retrieval. Thin page: all logic is in core.rag (api.py, jobs.py). Session keys start with "kb_"; the
selected collection is in the URL (?collection=support). Document text is only ever shown as plain text.

Opening the page never loads the embedder (no torch import): ingests run as jobs in their own process (their
progress is read from the job's status.json), and the model is loaded in this process only for a query, an
answer or an evaluation.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import WorkbenchError
from core.rag import api, jobs
from ui.common import backend_picker, get_backend, page_setup, show_error, show_usage

page_setup("kb")
ss = st.session_state
UPLOAD_TYPES = ["txt", "md", "markdown", "html", "htm", "pdf", "docx"]
MAX_FILE_BARS = 30
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: str) -> str:
    """Text as literal Markdown (no links, emphasis or HTML from document or model text)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


@st.cache_resource(show_spinner="Loading the embedding model…")
def embedder(name: str | None = None):
    """Loaded on the first query, answer or evaluation -- never on page load."""
    return api.get_embedder(name)


def results_frame(results: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "file": r["file"], "status": "unchanged" if r.get("skipped_unchanged") else ("ok" if r.get("ok") else "error"),
        "chunks": r.get("chunks", 0), "tokens": r.get("tokens", 0), "embedded": r.get("embedded", 0),
        "seconds": round(float(r.get("seconds") or 0), 2), "error": r.get("error", "")} for r in results])


def _ago(ts: float | None) -> str:
    if not ts:
        return ""
    s = max(0, time.time() - ts)
    return f"{s:.0f} s ago" if s < 90 else (f"{s / 60:.0f} min ago" if s < 5400 else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)))


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


def render_job(job: jobs.IngestJob, highlight: bool) -> None:
    """Progress (running) or results (finished) of one ingest job, from its status.json only."""
    n = len(job.files)
    title = f"Ingest of {md_escape(job.label or 'documents')} into “{md_escape(job.collection)}”"
    if job.active:
        st.markdown(f"**{title}** · {job.state}" + (f" · {job.seconds:.0f} s" if job.started else ""))
        if job.state == "queued":
            st.caption(md_escape(job.message or "waiting for the worker"))
        st.progress(min(1.0, job.overall), text=f"Overall: {job.done}/{n or '?'} files · "
                                                 f"{md_escape(job.message or job.state)}")
        for f in job.files[:MAX_FILE_BARS]:
            st.progress(min(1.0, float(f.get("fraction") or 0)), text=file_line(f))
        if n > MAX_FILE_BARS:
            st.caption(f"…and {n - MAX_FILE_BARS} more files.")
        st.caption(f"Job {job.id} runs in its own process: refreshing or closing this tab does not stop it.")
        if st.button("Cancel ingest", key=f"kb_cancel_{job.id}",
                     help="Stops the worker. Files already finished stay indexed; the rest are not ingested."):
            jobs.cancel(job.id)
            st.rerun(scope="app")
        return
    results = job.results
    when = _ago(job.finished)
    if job.state == "failed":
        st.error(f"{title} stopped {when}: {job.error}")
    elif job.state == "cancelled":
        st.warning(f"{title} was cancelled {when}; {job.ok} of {n} files were ingested before that.")
    elif highlight:
        (st.success if job.ok == len(results) else st.warning)(f"{job.ok} of {len(results)} files ingested.")
    else:
        st.caption(f"Last ingest: {title}, {when} — {job.ok} of {len(results)} files ingested.")
    if results:
        with st.expander(f"Per-file results ({len(results)} files, {job.seconds:.1f} s)", expanded=highlight):
            st.dataframe(results_frame(results), hide_index=True, width="stretch")
            st.caption("chunks: rows in the index for the file · tokens: embedder tokens in them · embedded: chunks "
                       "that had to be embedded (0 when the file is unchanged) · seconds: load+chunk+embed+store.")


@st.fragment(run_every=1.5)
def live_job(job_id: str) -> None:
    """Re-reads the job's status.json every 1.5 s; when the job ends, reruns the page (documents, sidebar)."""
    try:
        job = jobs.read_job(job_id)
    except WorkbenchError as exc:
        show_error(exc)
        return
    render_job(job, highlight=True)
    if not job.active:
        ss.kb_job = job_id
        st.rerun(scope="app")


def start_job(**kwargs) -> None:
    try:
        ss.kb_job = jobs.start_ingest_job(**kwargs)
        ss.pop("kb_pending_collection", None)
    except WorkbenchError as exc:
        show_error(exc)


# ---- first visit: the sample collection is indexed by a background job ------------------------------------------
sample_name, sample_folder, sample_questions = api.sample_paths()
if not ss.get("kb_sample_checked"):
    try:
        started = jobs.ensure_sample_job()
        if started:
            ss.kb_job = started
        ss.kb_sample_checked = True
    except WorkbenchError as exc:
        show_error(exc)

collections = api.list_collections()
names = [c.name for c in collections]
running = jobs.active_jobs()
indexing = sorted({j.collection for j in running} - set(names))   # collections whose first ingest is running

# ---- sidebar: collection and chunking ---------------------------------------------------------------------
with st.sidebar:
    st.header("Collection")
    choices = names + indexing
    wanted = (st.query_params.get("collection") or ss.get("kb_collection")
              or (sample_name if sample_name in choices else None))
    if choices:
        idx = choices.index(wanted) if wanted in choices else 0
        current = st.selectbox("Collection", choices, index=idx, key="kb_collection_select",
                               format_func=lambda c: c + (" (being indexed…)" if c in indexing else ""),
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
    emb = api.describe_embedder(info.embedder if info else None)   # from config files: no model load

    st.header("Chunking")
    st.caption(f"Sizes are in tokens of the embedder **{md_escape(emb.name.split('/')[-1])}** "
               f"({emb.dimension or '?'}-d, window {emb.max_tokens} tokens).")
    chunkers = api.chunker_names()
    descriptions = api.chunker_descriptions()
    default_chunker = info.chunker if info else api.DEFAULT_CHUNKER
    chunker = st.selectbox("Chunker", chunkers, index=chunkers.index(default_chunker) if default_chunker in chunkers else 0,
                           key="kb_chunker", help="\n\n".join(f"**{k}**: {v}" for k, v in descriptions.items()))
    size = st.number_input("Chunk size (tokens)", 16, emb.max_tokens,
                           value=min(int(info.chunk_size if info else api.DEFAULT_SIZE), emb.max_tokens),
                           step=8, key="kb_chunk_size",
                           help=f"At most the embedder's window ({emb.max_tokens}); ~200 keeps 4 chunks inside a 2k-token model.")
    overlap = st.number_input("Overlap (tokens)", 0, int(size) - 1, value=min(int(info.overlap if info else api.DEFAULT_OVERLAP), int(size) - 1),
                              step=8, key="kb_overlap", help="Tokens shared by neighbouring chunks when text is split.")
    if info:
        st.caption(f"Active index: {md_escape(info.chunk_settings)} · {info.documents} documents · {info.rows} chunks · "
                   f"table version {info.table_version}")
        if (chunker, int(size), int(overlap)) != (info.chunker, info.chunk_size, info.overlap):
            st.warning("These settings differ from the active index: the next ingest builds a new index "
                       "(queries keep working on the old one until then).")
            if current == sample_name and st.button("Re-index the sample documents with these settings",
                                                    key="kb_reindex_sample"):
                start_job(paths=[sample_folder], collection=current, chunker=chunker, chunk_size=int(size),
                          overlap=int(overlap), label="sample documents (re-index)")
        try:
            indexes = api.list_indexes(current)
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

st.title("📚 Knowledge Base")
st.caption("RAG gives the model facts it never saw: documents are split into chunks, embedded, stored in LanceDB, "
           "and the best chunks for a question are put into the prompt, numbered, so the answer can cite them.")

# The sample collection could not be built (e.g. the embedder is missing): say why, offer to try again.
if sample_name not in choices and sample_folder.is_dir():
    last = jobs.list_jobs(sample_name, limit=1)
    if last and last[0].state in ("failed", "cancelled"):
        st.error(f"Indexing the sample documents failed: {last[0].error}" if last[0].state == "failed"
                 else "Indexing the sample documents was cancelled.")
        if st.button("Index the sample docs", type="primary", key="kb_sample_retry"):
            try:
                ss.kb_job = jobs.ensure_sample_job(retry_failed=True)
                st.rerun()
            except WorkbenchError as exc:
                show_error(exc)

tab_docs, tab_search, tab_ask, tab_eval = st.tabs(["Documents", "Retrieval playground", "Ask with citations",
                                                   "Retrieval evaluation"])

# ---- Documents ----------------------------------------------------------------------------------------------
with tab_docs:
    if not current:
        st.info("Create a collection in the sidebar first.")
    else:
        st.subheader(f"Add documents to “{current}”")
        with st.form("kb_upload_form", clear_on_submit=True):
            files = st.file_uploader("Files", type=UPLOAD_TYPES, accept_multiple_files=True, key="kb_files",
                                     help="txt, md, html, pdf or docx; up to 50 MB each. An unchanged file is not "
                                          "embedded again; a changed one replaces its chunks atomically.")
            submitted = st.form_submit_button("Ingest files", type="primary")
        if submitted and files:
            start_job(uploads=[(f.name, f.getvalue()) for f in files], collection=current, chunker=chunker,
                      chunk_size=int(size), overlap=int(overlap))
        elif submitted:
            st.warning("Choose one or more files first.")
        with st.form("kb_folder_form"):
            folder = st.text_input("…or a folder on this machine", placeholder=str(sample_folder), key="kb_folder",
                                   help="Every txt/md/html/pdf/docx file under it (recursively) is ingested.")
            go = st.form_submit_button("Ingest folder")
        if go:
            path = Path(folder.strip() or str(sample_folder)).expanduser()
            if not path.is_dir():
                st.error(f"{path} is not a folder on this machine.")
            else:
                from core.rag.loaders import expand_paths
                if not expand_paths([path]):
                    st.warning(f"No supported files under {path}.")
                else:
                    start_job(paths=[path], collection=current, chunker=chunker, chunk_size=int(size),
                              overlap=int(overlap))

        # Ingest jobs of this collection: running ones live (they survive a refresh), else the latest result.
        col_jobs = jobs.list_jobs(current, limit=10)
        live = [j for j in col_jobs if j.active]
        for j in reversed(live):
            with st.container(border=True):
                live_job(j.id)
        done = [j for j in col_jobs if not j.active]
        if done and not live:
            with st.container(border=True):
                render_job(done[0], highlight=done[0].id == ss.get("kb_job"))

        st.subheader("Documents")
        try:
            docs = api.list_documents(current) if current in names else []
        except WorkbenchError:
            docs = []
        if not docs:
            st.info("No documents in this collection yet." + (" They appear here as the ingest job stores them."
                                                              if live else ""))
        else:
            frame = pd.DataFrame([{"document": d["doc_id"], "source": d["source"], "chunks": d["chunks"],
                                   "tokens": d["tokens"],
                                   "ingested": pd.to_datetime(d["ingested_at"], unit="s").strftime("%Y-%m-%d %H:%M")}
                                  for d in docs])
            st.dataframe(frame, hide_index=True, width="stretch")
            st.caption(f"{len(docs)} documents, {int(frame['chunks'].sum())} chunks in total.")
            doc_ids = [d["doc_id"] for d in docs]
            c1, c2 = st.columns([3, 1])
            sel = c1.selectbox("Browse a document's chunks", doc_ids, key="kb_browse_doc")
            c2.write("")
            if c2.button("🗑 Delete document", key="kb_delete", help="Removes its chunks from this collection's index."):
                try:
                    n = api.delete_document(current, sel)
                    st.toast(f"Deleted {sel} ({n} chunks).")
                    st.rerun()
                except WorkbenchError as exc:
                    show_error(exc)
            if sel:
                for ch in api.document_chunks(current, sel):
                    with st.expander(f"Chunk {ch['position']} · {ch['tokens']} tokens · chars {ch['start']}–{ch['end']}"
                                     + (f" · {md_escape(ch['heading'][:60])}" if ch["heading"] else "")):
                        st.code(ch["text"], language=None, wrap_lines=True)
                        st.caption(f"id {ch['id'][:16]}…")

# ---- Retrieval playground ------------------------------------------------------------------------------------
with tab_search:
    if not info:
        st.info("Ingest documents first.")
    else:
        with st.form("kb_search_form"):
            q = st.text_input("Query", key="kb_query", placeholder="e.g. How many SMS credits does Surge include?")
            k = st.slider("Top k", 1, 20, 5, key="kb_k")
            run = st.form_submit_button("Search", type="primary")
        if run:
            try:
                embedder(info.embedder)            # first query: load the model once (spinner)
                ss.kb_search = api.retrieve_modes(q, current, k=int(k))
            except WorkbenchError as exc:
                show_error(exc)
        res = ss.get("kb_search")
        if res and next(iter(res.values())).collection == current:
            only = api.only_found_by(res)
            first = next(iter(res.values()))
            st.caption(f"Table version {first.table_version} · ★ = found only by this mode · scores: vector = cosine "
                       "similarity, fts = BM25, hybrid = reciprocal-rank-fusion of the two.")
            cols = st.columns(3)
            titles = {"vector": "Vector (meaning)", "fts": "Full-text (keywords)", "hybrid": "Hybrid (RRF)"}
            for col, (mode, r) in zip(cols, res.items()):
                with col:
                    st.markdown(f"**{titles[mode]}** · {r.seconds * 1000:.0f} ms")
                    if not r.chunks:
                        st.info("No match.")
                    for c in r.chunks:
                        star = " ★" if c.id in only[mode] else ""
                        with st.container(border=True):
                            st.markdown(f"**#{c.rank}**{star} · score {c.score:.3f} · {md_escape(c.source)} · chunk {c.position}")
                            st.text(" ".join(c.text.split())[:400])

# ---- Ask with citations ------------------------------------------------------------------------------------
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


def show_answer(res) -> None:
    st.markdown(linked_answer(res.text, res.chunks_used))
    for p in res.citations.problems:
        st.warning(p)
    if res.citations.ok:
        st.success(f"Cites {', '.join(f'[{n}]' for n in res.citations.cited)} — all among the retrieved chunks.")
    show_usage(res.usage)
    st.caption(f"Read table version {res.table_version} of “{res.retrieval.collection}” ({res.retrieval.mode}, "
               f"{res.chunks_used} chunks in the prompt) · {res.backend}/{res.model} · prompt “{res.prompt}”. "
               f"Reproduce: python -m core ask \"…\" --collection {res.retrieval.collection} --version {res.table_version}")
    st.markdown("##### Sources")
    for i, c in enumerate(res.retrieval.chunks[: res.chunks_used], start=1):
        cited = " (cited)" if i in res.citations.cited else ""
        st.subheader(f"[{i}] {md_escape(c.source)} · chunk {c.position}{cited}", anchor=f"kb-cite-{i}", divider=False)
        st.code(c.text, language=None, wrap_lines=True)


with tab_ask:
    if not info:
        st.info("Ingest documents first.")
    else:
        backend, model = backend_picker("kb")
        with st.form("kb_ask_form"):
            question = st.text_area("Question", key="kb_question", height=80,
                                    placeholder="e.g. How much does an SMS top-up pack cost?")
            c1, c2 = st.columns(2)
            mode = c1.selectbox("Retrieval mode", list(api.MODES), index=2, key="kb_ask_mode")
            k_ans = c2.slider("Chunks in the prompt", 1, 8, 4, key="kb_ask_k",
                              help="The embedded model has a 2048-token window: ~4 chunks of 200 tokens fit.")
            ask = st.form_submit_button("Answer", type="primary")
        if ask:
            try:
                embedder(info.embedder)
                s = api.answer(question, current, backend=get_backend(backend), model=model or None, mode=mode,
                               k=int(k_ans), stream=True)
                holder = st.empty()
                with holder.container():
                    st.write_stream(s)
                res = s.result()
                holder.empty()
                ss.kb_answer = res
            except WorkbenchError as exc:
                show_error(exc)
        if ss.get("kb_answer") is not None and ss.kb_answer.retrieval.collection == current:
            show_answer(ss.kb_answer)

# ---- Retrieval evaluation ------------------------------------------------------------------------------------
with tab_eval:
    if not info:
        st.info("Ingest documents first.")
    else:
        st.caption("For each question with an evidence passage: the rank of the first retrieved chunk that contains "
                   "it. hit@1 = share of questions whose evidence is the top chunk; hit@5 = within the top 5; "
                   "MRR = mean of 1/rank (0 when not in the top 10). Run it again after changing the chunk size "
                   "to compare.")
        with st.form("kb_eval_form"):
            default_q = str(sample_questions) if sample_questions.is_file() else ""
            qpath = st.text_input("Question file (JSONL with question, evidence, source)", value=default_q,
                                  key="kb_eval_path")
            upload = st.file_uploader("…or upload one", type=["jsonl"], key="kb_eval_upload")
            go_eval = st.form_submit_button("Run evaluation", type="primary")
        if go_eval:
            try:
                if upload is not None:
                    questions = api.parse_eval_questions(upload.getvalue(), upload.name)
                else:
                    questions = api.load_questions(Path(qpath))
                embedder(info.embedder)
                bar = st.progress(0.0, text="Evaluating…")
                rep = api.evaluate(current, questions, progress=lambda i, n: bar.progress(i / n, text=f"{i}/{n} questions"))
                bar.empty()
                runs = ss.setdefault("kb_eval_runs", [])
                runs.append(rep)
                ss.kb_eval_runs = runs[-6:]
            except (WorkbenchError, ValueError) as exc:
                show_error(exc)
        runs = [r for r in ss.get("kb_eval_runs", []) if r.collection == current]
        if runs:
            import plotly.express as px
            rep = runs[-1]
            st.markdown(f"**{rep.n_questions} questions** · table version {rep.table_version} · "
                        f"{md_escape(rep.index.get('chunker'))} {rep.index.get('chunk_size')}/{rep.index.get('overlap')} "
                        f"tokens · {rep.seconds:.1f} s")
            cols = st.columns(len(rep.modes))
            for col, (m, s) in zip(cols, rep.modes.items()):
                col.metric(f"{m}: MRR", f"{s.mrr:.3f}", help="Mean reciprocal rank of the evidence chunk.")
                col.caption(f"hit@1 {s.hit_at_1:.2f} · hit@5 {s.hit_at_5:.2f} · {s.mean_ms:.0f} ms/query")
            data = []
            for i, r in enumerate(runs):
                label = f"run {i + 1}: {r.index.get('chunker')} {r.index.get('chunk_size')}/{r.index.get('overlap')}"
                for m, s in r.modes.items():
                    for metric, val in (("hit@1", s.hit_at_1), ("hit@5", s.hit_at_5), ("MRR", s.mrr)):
                        data.append({"run": label, "mode": m, "metric": metric, "value": val})
            fig = px.bar(pd.DataFrame(data), x="mode", y="value", color="metric", barmode="group",
                         facet_col="run" if len(runs) > 1 else None, range_y=[0, 1], height=360)
            st.plotly_chart(fig, width="stretch")
            with st.expander("Per question (rank of the evidence chunk; 0 = not in the top 10)"):
                st.dataframe(pd.DataFrame(rep.details), hide_index=True, width="stretch")
