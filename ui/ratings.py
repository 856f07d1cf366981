"""Human ratings panel for a comparison run: pick an answer, read it (plain text), rate it good/bad and/or 1-5
with an optional note. Ratings are appended to <run>/ratings.jsonl by core.compare.ratings; the panel then shows
how far the LLM judge agrees with people and offers the labelled JSONL export.

    ratings_panel(run_dir, answers)      # answers: dicts with qid, approach, answer (+ repeat, question, status)
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.compare import ratings as R
from core.compare.evidence import answer_id, load_run_dir
from core.errors import WorkbenchError
from ui.safe import md

NO = "—"


def _items(answers) -> list[dict]:
    out, seen = [], set()
    for a in answers or []:
        if a.get("status", "ok") != "ok" or "qid" not in a or "approach" not in a:
            continue
        aid = answer_id(a["qid"], a["approach"], int(a.get("repeat") or 0))
        if aid in seen:
            continue
        seen.add(aid)
        out.append({**a, "answer_id": aid, "answer": str(a.get("answer") or ""),
                    "question": str(a.get("question") or "")})
    return out


def ratings_panel(run_dir, answers, key: str = "rate") -> None:
    """The whole rating view for one run. `key` prefixes every widget key (two panels can share a page)."""
    ss = st.session_state
    run_dir = Path(run_dir)
    items = _items(answers)
    st.subheader("Rate answers")
    st.caption("Your ratings check the automatic scores and the LLM judge. They are stored in the run folder "
               "(append-only, with your name and the time); the latest rating per answer and person counts.")
    if not items:
        st.info("No answered question to rate yet.")
        return
    rater = st.text_input("Your name", key=f"{key}_rater", max_chars=60,
                          help="Stored with each rating, so ratings from several people can be told apart.")
    mine = {r.answer_id: r for r in R.latest(run_dir) if r.rater == (rater or "").strip()}
    ids = [it["answer_id"] for it in items]
    pending = ss.pop(f"{key}_goto", None)
    if pending in ids:
        ss[f"{key}_pick"] = pending
    by_id = {it["answer_id"]: it for it in items}

    def label(aid: str) -> str:
        it = by_id[aid]
        rep = f" · repeat {it['answer_id'].rsplit('/', 1)[1]}" if aid.rsplit("/", 1)[1] != "0" else ""
        return f"{it['qid']} · {it['approach']}{rep}" + ("  (rated)" if aid in mine else "")

    c1, c2 = st.columns([4, 1])
    aid = c1.selectbox("Answer", ids, format_func=label, key=f"{key}_pick")
    c2.metric("Rated by you", f"{len(mine)}/{len(ids)}")
    it = by_id[aid]
    if it["question"]:
        st.text("Question: " + it["question"])
    st.code(it["answer"] or "(empty answer)", language=None, wrap_lines=True)
    i = ids.index(aid)
    with st.form(f"{key}_form_{i}", clear_on_submit=False, border=True):
        c1, c2 = st.columns(2)
        verdict = c1.radio("Good or bad?", [NO, "good", "bad"], horizontal=True, key=f"{key}_{i}_label")
        grade = c2.radio("Grade (1 = wrong, 5 = correct and complete)", [NO, 1, 2, 3, 4, 5], horizontal=True,
                         key=f"{key}_{i}_grade")
        note = st.text_input("Note (optional)", key=f"{key}_{i}_note", max_chars=R.MAX_NOTE)
        saved = st.form_submit_button("Save rating", type="primary")
    if saved:
        try:
            R.add_rating(run_dir, aid, rater, None if verdict == NO else verdict, None if grade == NO else int(grade),
                         note)
        except WorkbenchError as exc:
            st.error(md(exc))
        else:
            st.toast(f"Rating of {md(it['qid'])} · {md(it['approach'])} saved")
            rated = set(mine) | {aid}
            nxt = next((x for x in ids[i + 1:] + ids[:i] if x not in rated), None)
            if nxt:
                ss[f"{key}_goto"] = nxt
            st.rerun()
    standing = [r for r in R.latest(run_dir) if r.answer_id == aid]
    for r in standing:
        st.text(f"{r.rater}: {r.label or '-'} · grade {r.grade or '-'}" + (f" · {r.note}" if r.note else ""))

    try:
        run = load_run_dir(run_dir)
        rep = R.judge_report(run)
    except WorkbenchError as exc:
        st.error(md(exc))
        return
    if rep["ratings"]:
        st.text(rep["text"])
        st.dataframe(rep["by_approach"], hide_index=True)
        st.download_button("⬇ Ratings as labelled JSONL", R.labelled_jsonl(run), f"ratings-{run.run_id}.jsonl",
                           "application/jsonl", key=f"{key}_export")
