"""Views of the knowledge-update drill page (core/drill.py does the work, in a job process)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from core import drill as D
from core import jobs
from core.errors import WorkbenchError
from ui import jobs as job_ui
from ui.common import show_error
from ui.safe import md, text

STATE_TEXT = {"new": "new value", "old": "old value", "both": "both values", "neither": "neither value",
              None: "no answer"}
COMPARE_PAGE = Path(__file__).resolve().parents[1] / "app_pages" / "4_Compare.py"


def cli_line(drill: D.Drill) -> str:
    if drill.changed_file:
        qs = " ".join(f"--question {q!r}" for q in drill.custom_questions)
        return f"python -m core drill --file {Path(drill.changed_file).name} {qs} --old '…' --new '…'"
    return f"python -m core drill {drill.name}"


def chooser() -> D.Drill | None:
    """The drill to run: a shipped one, or the user's own changed document. Returns None until it is valid."""
    ss = st.session_state
    try:
        shipped = D.list_drills()
    except WorkbenchError as exc:
        show_error(exc)
        shipped = []
    mode = st.radio("What changes", ["A shipped change", "My own changed document"], horizontal=True,
                    key="dr_mode")
    if mode == "A shipped change":
        if not shipped:
            st.info("The scenario ships no drill (its drills/ folder is empty).")
            return None
        names = [d.name for d in shipped]
        pick = st.selectbox("Drill", names, format_func=lambda n: next(d.title or d.name for d in shipped
                                                                       if d.name == n), key="dr_name")
        d = next(x for x in shipped if x.name == pick)
        text(d.description)
        with st.expander(f"The change to {md(d.document)}"):
            for e in d.edits:
                st.code(f"- {e['old']}\n+ {e['new']}", language="diff", wrap_lines=True)
        st.caption(f"Questions asked before and after: {md(', '.join(d.questions))}")
        return d
    with st.form("dr_custom", border=True):
        up = st.file_uploader("Changed document (its file name is the document it replaces)",
                              type=["md", "txt", "html", "pdf", "docx"], key="dr_upload")
        qs = st.text_area("Questions the change affects (one per line)", key="dr_questions")
        c1, c2 = st.columns(2)
        old = c1.text_input("Old value (literal text)", key="dr_old")
        new = c2.text_input("New value (literal text)", key="dr_new")
        submitted = st.form_submit_button("Use this change")
    if submitted:
        if up is None:
            st.warning("Upload the changed document first.")
            return None
        from core.config import get_settings
        from core.rag.loaders import sanitize_name

        if up.size > get_settings().max_upload_mb * 1024 * 1024:
            st.warning(f"{md(up.name)} is larger than the upload limit ({get_settings().max_upload_mb} MB).")
            return None
        folder = Path(tempfile.mkdtemp(prefix="drill-upload-"))
        path = folder / sanitize_name(up.name)
        path.write_bytes(up.getvalue())
        try:
            ss.dr_custom_drill = D.custom_drill(path, qs.splitlines(), old, new).to_dict()
        except WorkbenchError as exc:
            show_error(exc)
            return None
    if isinstance(ss.get("dr_custom_drill"), dict):
        return D.Drill.from_dict(ss.dr_custom_drill)
    return None


def start(drill: D.Drill, max_tokens: int) -> None:
    ss = st.session_state
    try:
        ss.dr_job = D.start_job(drill, max_tokens=max_tokens)
    except WorkbenchError as exc:
        show_error(exc)
        return
    st.query_params["job"] = ss.dr_job


def past_jobs() -> None:
    ss = st.session_state
    done = jobs.list_jobs(D.KIND, limit=20)
    if not done:
        return
    ids = [j.id for j in done]
    cur = ss.get("dr_job")
    pick = st.selectbox("Drills run so far", ids, index=ids.index(cur) if cur in ids else 0,
                        format_func=lambda i: next(f"{j.name} · {j.state} · {job_ui.ago(j.created)}"
                                                   for j in done if j.id == i), key="dr_pick")
    if pick != cur:
        ss.dr_job = pick
        st.query_params["job"] = pick


def results(result: dict) -> None:
    """What the drill measured: per approach, the value its answers state before and after the change."""
    st.subheader("What each approach did with the change")
    rows = []
    for r in result.get("approaches", []):
        if not r["available"]:
            rows.append({"approach": r["approach"], "before": "not available", "after": "", "new value retrieved": "",
                         "note": r["reason"]})
            continue
        for q in r["questions"]:
            ctx = q.get("context_after")
            rows.append({"approach": r["approach"], "question": q["qid"],
                         "before": STATE_TEXT.get(q["before"], q["before"]),
                         "after": STATE_TEXT.get(q["after"], q["after"]),
                         "new value retrieved": ("—" if not r["rag"] else f"yes, rank {ctx}" if ctx else "no"),
                         "note": ""})
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"Re-ingesting {md(result.get('document', ''))} took {result.get('reingest_seconds', 0):.1f} s "
               f"({result.get('reingest_chunks', 0)} chunks) in collection {md(result.get('collection', ''))}; the "
               f"whole drill {result.get('seconds', 0):.0f} s. \"New value retrieved\" measures RAG's side on its "
               "own: whether the re-ingested passage reached the prompt, whatever the model then made of it.")
    st.subheader("Iteration speed, measured on this machine")
    st.dataframe([{"change": it["change"], "approach": it["approach"],
                   "seconds": round(it["seconds"], 1) if it.get("seconds") is not None else None, "how": it["how"]}
                  for it in result.get("iteration", [])], hide_index=True, width="stretch")
    with st.expander("The answers, before and after"):
        for r in result.get("approaches", []):
            for q in r.get("questions", []):
                st.markdown(f"**{md(r['approach'])}** · {md(q['qid'])}: {md(q['question'])}")
                c1, c2 = st.columns(2)
                c1.caption("before")
                text(q["answer_before"] or "(no answer)", c1)
                c2.caption("after")
                text(q["answer_after"] or "(no answer)", c2)
    c1, c2 = st.columns(2)
    for col, label, run_id in ((c1, "Open the 'before' run in Compare", result.get("before_run")),
                               (c2, "Open the 'after' run in Compare", result.get("after_run"))):
        if run_id and col.button(label, key=f"dr_open_{run_id}"):
            st.switch_page(COMPARE_PAGE, query_params={"run": run_id})
