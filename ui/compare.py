"""Views of the Compare page: the approach builder (sidebar), one question side by side, batch runs (a job
panel per run), results, charts and the decision report.

Batch runs are "compare" jobs (core.jobs) in their own process; this page only reads their run folders, so it can
be left or refreshed. Answers are scored by the one function batch runs use (core.compare.runner.score_one). The
reports are built only when a download button is clicked, cached by the run's files (core.compare.report.cached).
Session keys start with "cmp_"; the selected run is in the URL (?run=<id>). Model and user text is shown as
plain text or escaped, never as Markdown.
"""
from __future__ import annotations

from ui.common import lazy_pandas as pd  # imported on first use
import streamlit as st

from core.compare import approach as A
from core.compare import runner
from core.compare.cost import CostModel
from core.scenario import Question, parse_questions
from core.compare.scores import EXPLAIN, QUALITY_SCORES, RAG_SCORES
from core.config import get_settings
from core.errors import DatasetError, WorkbenchError
from core.llm.base import Usage
from core.llm.models import DEFAULT_MODEL, list_adapters
from ui import safe
from ui.common import get_backend, md_escape, show_error, show_usage
from ui.jobs import job_panel
from ui.usecase_select import current as usecase

ss = st.session_state
MODES = list(A.RAG_MODES)


# ---- cached look-ups (cheap, refreshed every few seconds) ---------------------------------------------------
@st.cache_data(ttl=10, show_spinner=False)
def _collections(data_dir: str) -> list[str]:
    try:
        from core.rag import listing as rag_listing   # no lancedb import while the store is unchanged since the last listing
        return rag_listing.collection_names()
    except Exception:  # noqa: BLE001 - an unreadable store just offers no collection
        return []


def collections() -> list[str]:
    return _collections(str(get_settings().data_dir))


@st.cache_data(ttl=10, show_spinner=False)
def _prompt_refs(data_dir: str) -> list[str]:
    from core.prompts.library import PromptLibrary

    lib = PromptLibrary()
    if not lib.names():
        lib.ensure_starter()
    refs = []
    for name in lib.names():
        refs.append(name)
        refs += [f"{name}@{v.version}" for v in reversed(lib.versions(name))]
    return refs


def prompt_refs() -> list[str]:
    return _prompt_refs(str(get_settings().data_dir))


def model_options() -> list[str]:
    opts = [DEFAULT_MODEL, A.LATEST_ADAPTER] + [a.model_id for a in list_adapters()] + [A.EXTRACTIVE_MODEL]
    return list(dict.fromkeys(opts))


# ---- approach builder state -------------------------------------------------------------------------------
def _spec_to_state(spec: A.ApproachSpec, uid: int) -> dict:
    return {"uid": uid, "name": spec.name, "model": spec.model, "prompt": spec.prompt,
            "rag": spec.rag.collection if spec.rag else "off", "mode": spec.rag.mode if spec.rag else "hybrid",
            "k": spec.rag.k if spec.rag else 4}


def _next_uid() -> int:
    ss.cmp_uid = ss.get("cmp_uid", 0) + 1
    return ss.cmp_uid


def set_preset() -> None:
    """The classic approaches on the selected use case (for the demo: `compare --preset classic`)."""
    from core.usecase import workspace

    uc = usecase()
    try:
        specs = workspace.classic_approaches(workspace.get_usecase(uc.name))
    except WorkbenchError as exc:
        ss.cmp_preset_problem = str(exc)
        specs = A.classic_presets(uc.collection)
    _prompt_refs.clear()                   # a use case's prompts were just installed into the library
    ss.cmp_approaches = [_spec_to_state(s, _next_uid()) for s in specs]
    ss.cmp_usecase = uc.name


REPEAT_TEMPERATURE = 0.7     # pre-set when the advisor asks for repeats (they need a temperature above 0)


def apply_prefill() -> None:
    """Once: the approaches (and repeats, run name) the Advisor pre-filled, from the session or ?advice=...
    (core.advisor.take_prefill never returns the same pre-fill twice, so later edits are kept)."""
    from core import advisor as ADV

    try:
        pre = ADV.take_prefill(ss, st.query_params, usecase().collection)
        specs = ADV.prefill_specs(pre) if pre else []
    except WorkbenchError as exc:
        st.warning(f"The advisor's pre-filled comparison was ignored: {md_escape(exc)}")
        return
    if not pre:
        return
    ss.cmp_approaches = [_spec_to_state(s, _next_uid()) for s in specs]
    ss.cmp_advice = pre
    ss.cmp_name = str(pre.get("name") or "")[:80]
    ss.cmp_repeats = int(pre.get("repeats") or 1)
    if ss.cmp_repeats > 1 and not ss.get("cmp_temperature"):
        ss.cmp_temperature = REPEAT_TEMPERATURE


def advice_note() -> None:
    """What the Advisor pre-filled (plain text), while its advice waits for a run."""
    pre = ss.get("cmp_advice")
    if not pre:
        return
    nxt = pre.get("next_step")
    st.info("Pre-filled by the Advisor. The advice is stored with the next run you start, and its report checks "
            "it against what was measured.")
    st.text(f"Recommended: {pre.get('recommended')}" + (f" · next step: {nxt}" if nxt else "")
            + f" · {int(pre.get('repeats') or 1)} repeat(s)")


def add_approach() -> None:
    uid = _next_uid()
    ss.cmp_approaches.append({"uid": uid, "name": f"approach_{uid}", "model": DEFAULT_MODEL, "prompt": "zero_shot",
                              "rag": "off", "mode": "hybrid", "k": 4})


def add_retrieval_only() -> None:
    """The model-free reference column (extractive, cited) on the selected use case's collection."""
    spec = A.retrieval_only_preset(usecase().collection)
    names = {a["name"] for a in ss.cmp_approaches}
    if spec.name in names:
        return
    ss.cmp_approaches.append(_spec_to_state(spec, _next_uid()))


def remove_approach(uid: int) -> None:
    ss.cmp_approaches = [a for a in ss.cmp_approaches if a["uid"] != uid]


def current_specs() -> tuple[list[A.ApproachSpec], list[str]]:
    """Specs from the sidebar widgets, and the problems (bad names, duplicates)."""
    specs, problems = [], []
    for a in ss.cmp_approaches:
        u = a["uid"]
        name = (ss.get(f"cmp_{u}_name") or a["name"]).strip()
        rag = ss.get(f"cmp_{u}_rag", a["rag"])
        spec = A.ApproachSpec(name, ss.get(f"cmp_{u}_model", a["model"]), ss.get(f"cmp_{u}_prompt", a["prompt"]),
                              A.RetrievalSpec(rag, ss.get(f"cmp_{u}_mode", a["mode"]), int(ss.get(f"cmp_{u}_k", a["k"])))
                              if rag and rag != "off" else None)
        try:
            specs.append(A.validate(spec))
        except WorkbenchError as exc:
            problems.append(str(exc))
    try:
        A.check_set(specs)
    except WorkbenchError as exc:
        problems.append(str(exc))
    return specs, problems


def _build_collection(sb, uc, cols: list[str]) -> list[str]:
    """The use case's collection, built by an ingest job (its panel in the sidebar) when it is missing."""
    from core.rag import jobs as ingest_jobs

    job_id = ss.get("cmp_build_job")
    if uc.collection not in cols:
        sb.info(f"The {'scenario' if uc.builtin else 'use case'}'s collection **{md_escape(uc.collection)}** is not "
                "built yet, so the RAG columns cannot run.")
        if not job_id and sb.button(f"Build collection '{md_escape(uc.collection)}'", key="cmp_build",
                                    help="Ingest the use case's documents in a background job (about a minute on 2 "
                                         "CPU cores for the demo's)."):
            try:
                if uc.builtin:
                    job_id = ss.cmp_build_job = ingest_jobs.ensure_sample_job(retry_failed=True)
                else:
                    job_id = ss.cmp_build_job = ingest_jobs.start_ingest_job(
                        paths=[uc.scenario.knowledge_dir], collection=uc.collection, label=f"use case {uc.name}")
                _collections.clear()
            except WorkbenchError as exc:
                show_error(exc, sb)
    if job_id:
        with sb:
            job = job_panel(job_id, key="cmp_build", title="Ingesting the sample documents", show_log=False,
                            show_items=False, on_end=lambda _job: _collections.clear())
        if job is not None and not job.active:
            if job.state == "succeeded":
                sb.success("Collection ready")
            else:
                sb.error(f"Ingest failed: {md_escape(job.error or job.message)}")
            _collections.clear()
            cols = collections()
    return cols


def sidebar_builder() -> None:
    sb = st.sidebar
    sb.header("Approaches")
    sb.caption("An approach = model (base or fine-tuned adapter) × prompt version × retrieval. Up to "
               f"{A.MAX_APPROACHES}.")
    c1, c2 = sb.columns(2)
    c1.button("Classic 4", key="cmp_preset", on_click=set_preset, width="stretch",
              help="Prompt only (few-shot), prompt + RAG (guardrail), fine-tuned (zero-shot, newest adapter), "
                   "fine-tuned + RAG - on the selected use case's collection, prompts and checks.")
    c2.button("➕ Add", key="cmp_add", on_click=add_approach, width="stretch",
              disabled=len(ss.cmp_approaches) >= A.MAX_APPROACHES)
    sb.button("➕ Retrieval only (reference)", key="cmp_add_retrieval", on_click=add_retrieval_only,
              width="stretch", disabled=len(ss.cmp_approaches) >= A.MAX_APPROACHES,
              help="No model: the best-matching sentences of the retrieved chunks, cited. Shows what retrieval "
                   "alone finds next to what the models make of it; never recommended.")
    models, prompts, cols = model_options(), prompt_refs(), collections()
    if ss.get("cmp_preset_problem"):
        sb.warning(md_escape(ss.pop("cmp_preset_problem")))
    cols = _build_collection(sb, usecase(), cols)
    if not list_adapters():
        sb.caption("No fine-tuned adapter yet: the fine-tuned columns show as unavailable — train one on the "
                   "Fine-Tune page.")
    for a in ss.cmp_approaches:
        u = a["uid"]
        for field, default in (("name", a["name"]), ("model", a["model"]), ("prompt", a["prompt"]),
                               ("rag", a["rag"]), ("mode", a["mode"]), ("k", a["k"])):
            ss.setdefault(f"cmp_{u}_{field}", default)
        title = f"{ss[f'cmp_{u}_name']} · {ss[f'cmp_{u}_model']} · {ss[f'cmp_{u}_prompt']}"
        with sb.expander(md_escape(title) + (" · RAG" if ss[f"cmp_{u}_rag"] != "off" else ""), expanded=False):
            st.text_input("Name", key=f"cmp_{u}_name", max_chars=40)
            mopts = models if ss[f"cmp_{u}_model"] in models else models + [ss[f"cmp_{u}_model"]]
            st.selectbox("Model", mopts, key=f"cmp_{u}_model",
                         help="`ft:latest` = the newest fine-tuned adapter; `ft:<name>` = a specific one.")
            popts = prompts if ss[f"cmp_{u}_prompt"] in prompts else prompts + [ss[f"cmp_{u}_prompt"]]
            st.selectbox("Prompt version", popts, key=f"cmp_{u}_prompt",
                         help="`name` = its latest version (pinned when the run starts); `name@3` = version 3.")
            ropts = ["off"] + cols
            if ss[f"cmp_{u}_rag"] not in ropts:
                ropts.append(ss[f"cmp_{u}_rag"])
            st.selectbox("Retrieval", ropts, key=f"cmp_{u}_rag", help="off, or a collection to retrieve from.")
            if ss[f"cmp_{u}_rag"] != "off":
                c1, c2 = st.columns(2)
                c1.selectbox("Mode", MODES, key=f"cmp_{u}_mode")
                c2.number_input("k", 1, 20, key=f"cmp_{u}_k", help="Chunks put into the prompt.")
            st.button("Remove", key=f"cmp_{u}_remove", on_click=remove_approach, args=(u,))
    specs, problems = current_specs()
    for p in problems:
        sb.error(md_escape(p))
    if specs:
        sb.caption("CLI equivalent:")
        sb.code("python -m core compare " + " ".join(f"--approach '{s.to_string()}'" for s in specs), language="bash")


# ---- single question ---------------------------------------------------------------------------------------
def _score_notes(question: Question, text: str, res: A.Resolved, retrieval: dict | None,
                 scenario=None) -> list[str]:
    """The scores a batch run would give this answer (same checks: the use case's), as short notes."""
    scored = runner.score_one(question, text, res, retrieval, scenario=scenario)
    notes = [f"{k}: {v.get('reason') or ''}" for k, v in scored["scores"].items() if v.get("value") is not None]
    if scored["quality"] is not None:
        notes.insert(0, f"quality {scored['quality']:.2f} (mean of the scores that apply, as in a batch run)")
    return notes


def single_tab(specs: list[A.ApproachSpec]) -> None:
    st.caption("Ask one question; every approach answers side by side (one after another on the shared model), "
               "with the retrieved passages and the usage numbers under each answer.")
    uc = usecase()
    try:
        sq = uc.question_set()
    except WorkbenchError:
        sq = []
    with st.form("cmp_single_form"):
        pick = st.selectbox("Scenario question (optional)", ["(write your own)"] + [f"{q.id}: {q.question}" for q in sq],
                            key="cmp_single_pick")
        text = st.text_area("Question", key="cmp_single_q", height=80,
                            placeholder="e.g. How long is an invitation to join a team valid?")
        mt = st.number_input("Max tokens", 16, 1024, 128, step=16, key="cmp_single_max",
                             help="Overrides each prompt's max_tokens so the columns are comparable.")
        go = st.form_submit_button("Ask every approach", type="primary", disabled=not specs)
    if go:
        question = (text or "").strip()
        picked = next((q for q in sq if pick == f"{q.id}: {q.question}"), None)
        if not question and picked is not None:
            question = picked.question
        if not question:
            st.error("Write a question (or pick one of the scenario's).")
            return
        q = picked if picked is not None and picked.question == question else Question("single", question)
        run_single(specs, q, int(mt), uc)
    elif ss.get("cmp_single"):
        show_single(ss.cmp_single)


def run_single(specs: list[A.ApproachSpec], q: Question, max_tokens: int, uc=None) -> None:
    sc = (uc or usecase()).scenario
    question = q.question
    out = {"question": question, "answers": {}}
    cols = st.columns(len(specs))
    st.caption(f"Question: {md_escape(question)}")
    for col, spec in zip(cols, specs):
        with col:
            st.markdown(f"**{md_escape(spec.name)}**")
            st.caption(md_escape(spec.kind))
            rec = {"text": "", "usage": None, "retrieval": None, "error": None, "describe": ""}
            out["answers"][spec.name] = rec
            try:
                res = A.resolve(spec, max_tokens=max_tokens)
                rec["describe"] = res.describe()
                if not res.available:
                    rec["error"] = f"Unavailable: {res.reason}"
                    st.warning(md_escape(rec["error"]))
                    continue
                run = A.AnswerRun(res, question, get_backend(res.backend), sc.raw)
                with st.spinner("retrieving…" if res.rag else "thinking…"):
                    run.prepare()
                box = st.container(border=True)
                safe.stream(run, box)          # model output stays text (issue 14)
                r = run.record
                rec.update(text=r["answer"], usage=r["usage"], retrieval=r["retrieval"],
                           notes=_score_notes(q, r["answer"], res, r["retrieval"], sc),
                           e2e={"ttft_s": r["ttft_s"], "latency_s": r["latency_s"], "retrieval_s": r["retrieval_s"]})
                _answer_footer(rec)
            except WorkbenchError as exc:
                rec["error"] = str(exc)
                show_error(exc)
            except Exception as exc:  # noqa: BLE001 - show, keep the other columns running
                rec["error"] = f"{type(exc).__name__}: {exc}"
                show_error(exc)
    ss.cmp_single = out


def _answer_footer(rec: dict) -> None:
    if rec.get("usage"):
        show_usage(Usage(**{k: v for k, v in rec["usage"].items() if k in Usage.__dataclass_fields__}))
    e2e = rec.get("e2e") or {}
    if rec.get("retrieval"):
        st.caption(f"Retrieval {e2e.get('retrieval_s', 0) * 1000:.0f} ms · end to end: first token "
                   f"{e2e.get('ttft_s', 0):.2f} s, total {e2e.get('latency_s', 0):.2f} s")
    for n in rec.get("notes", []):
        st.caption(md_escape(n))
    if rec.get("retrieval"):
        r = rec["retrieval"]
        prof = r.get("profile") or {}
        if prof:
            st.caption(md_escape("Context: " + A.describe_context(prof) + f", k={prof.get('k')}"))
        label = "In the prompt" if r.get("context_selected") else "Retrieved passages"
        with st.expander(f"{label} ({len(r['chunks'])}, table v{md_escape(r.get('table_version'))})"):
            for i, c in enumerate(r["chunks"], start=1):
                st.markdown(f"**[{i}]** {md_escape(c['source'])}")
                st.text((c.get("prompt_text") or c["text"])[:800])
    if rec.get("describe"):
        st.caption(md_escape(rec["describe"]))


def show_single(data: dict) -> None:
    st.caption(f"Last question: {md_escape(data['question'])}")
    cols = st.columns(max(1, len(data["answers"])))
    for col, (name, rec) in zip(cols, data["answers"].items()):
        with col:
            st.markdown(f"**{md_escape(name)}**")
            if rec.get("error"):
                st.warning(md_escape(rec["error"]))
                continue
            st.container(border=True).text(rec["text"] or "(empty answer)")
            _answer_footer(rec)


# ---- batch run ----------------------------------------------------------------------------------------------
def select_run(run_id: str | None) -> None:
    ss.cmp_run = run_id
    if run_id:
        st.query_params["run"] = run_id
    elif "run" in st.query_params:
        del st.query_params["run"]


def batch_tab(specs: list[A.ApproachSpec], problems: list[str]) -> None:
    st.caption("Runs every approach on every question in a background process: you can leave this page; "
               "stop and resume keep every finished answer.")
    with st.form("cmp_batch_form"):
        uc = usecase()
        src = st.radio("Question set", ["Scenario questions", "Upload JSONL/CSV"], horizontal=True, key="cmp_src",
                       format_func=lambda o: o if uc.builtin or o != "Scenario questions" else
                       f"Questions of use case {uc.name}")
        up = st.file_uploader("Question file", type=["jsonl", "csv", "json"], key="cmp_upload",
                              help="JSONL lines {id, question, reference, tags, keywords, evidence, source} or a "
                                   "CSV with those columns; only `question` is required.")
        c1, c2, c3 = st.columns(3)
        limit = c1.number_input("Questions (limit)", 1, 5000, 10, key="cmp_limit",
                                help="Only the first N questions of the set.")
        max_tokens = c2.number_input("Max tokens", 16, 1024, 96, step=16, key="cmp_max_tokens",
                                     help="The same for every approach, so their costs compare fairly.")
        judge = c3.checkbox("LLM judge", key="cmp_judge", help=EXPLAIN["judge"] + " Roughly doubles the run time.")
        c1, c2, c3 = st.columns(3)
        ss.setdefault("cmp_repeats", 1)          # the Advisor's pre-fill may have set these
        ss.setdefault("cmp_temperature", None)
        repeats = c1.number_input("Repeats", 1, runner.MAX_REPEATS, key="cmp_repeats",
                                  help="Answer every question N times with seeds seed+0..N-1 (needs a temperature "
                                       "above 0): shows the spread and widens the intervals honestly.")
        temperature = c2.number_input("Temperature", 0.0, 2.0, step=0.1, key="cmp_temperature",
                                      placeholder="each prompt's own",
                                      help="The same for every approach; empty = each prompt version's own.")
        seed = c3.number_input("Seed", 0, 2**31 - 1, 42, key="cmp_seed", help="Repeat r uses seed + r.")
        from core.llm.registry import backend_names

        c1, c2 = st.columns(2)
        judge_backend = c1.selectbox("Judge backend", ["(default)"] + backend_names(), key="cmp_judge_backend",
                                     help="The backend that grades answers when the LLM judge is on.")
        judge_model = c2.text_input("Judge model", key="cmp_judge_model", max_chars=200,
                                    placeholder="the backend's default",
                                    help="A model the judge backend serves (CLI: --judge-model).")
        runs = runner.list_runs()
        base_opts = ["(none)"] + [r["run_id"] for r in runs]
        c1, c2 = st.columns(2)
        name = c1.text_input("Run name", key="cmp_name", placeholder="e.g. guardrail v2 vs fine-tune")
        baseline = c2.selectbox("Baseline run", base_opts, key="cmp_base_new",
                                help="Per question: better or worse than this run (same approach names).")
        default_backend = get_settings().backend
        servers = sorted({s.backend or default_backend for s in specs
                          if runner.serves_concurrently(s.backend or default_backend)})
        c1, c2 = st.columns([1, 2])
        concurrency = c1.number_input(
            "Requests in flight", 1, runner.MAX_CONCURRENCY,
            min(max(1, get_settings().compare_concurrency), runner.MAX_CONCURRENCY), key="cmp_concurrency",
            disabled=not servers,
            help="How many answers a server backend (Ollama, OpenAI-compatible: vLLM batches them) works on at "
                 "once. The embedded model answers one at a time. CLI: --concurrency; default: "
                 "WORKBENCH_COMPARE_CONCURRENCY.")
        start = c2.form_submit_button("Start batch", type="primary", disabled=bool(problems) or not specs)
    if start:
        try:
            if src == "Upload JSONL/CSV":
                if up is None:
                    st.error("Choose a question file to upload, or use the scenario questions.")
                    return
                if up.size > get_settings().max_upload_mb * 1024 * 1024:
                    st.error(f"The file is larger than {get_settings().max_upload_mb} MB.")
                    return
                questions, source = parse_questions(up.getvalue(), up.name), f"upload:{up.name}"
            else:
                questions = uc.question_set()
                source = "scenario" if uc.builtin else f"usecase:{uc.name}"
            jb = "" if judge_backend == "(default)" else judge_backend
            run_id = runner.create_run(specs, questions, name=name, questions_source=source, limit=int(limit),
                                       max_tokens=int(max_tokens),
                                       judge={"enabled": bool(judge), "model": (judge_model or "").strip(),
                                              "backend": jb},
                                       temperature=None if temperature is None else float(temperature),
                                       seed=int(seed), repeats=int(repeats),
                                       concurrency=int(concurrency) if servers else None,
                                       baseline=None if baseline == "(none)" else baseline,
                                       scenario=uc.scenario)
            if ss.get("cmp_advice"):
                from core import advisor as ADV

                ADV.attach_advice(runner.run_dir(run_id), ss.pop("cmp_advice")["advice"])
            runner.start_worker(run_id)
            select_run(run_id)
            st.toast(f"Run {md_escape(run_id)} started")
        except DatasetError as exc:
            st.error(md_escape(exc))
            if exc.problems:
                st.dataframe(pd.DataFrame(exc.problems, columns=["line", "problem"]), hide_index=True)
            return
        except WorkbenchError as exc:
            show_error(exc)
            return
    runs = runner.list_runs()
    if not runs:
        st.info("No runs yet: pick approaches in the sidebar and start a batch.")
        return
    st.subheader("Runs")
    df = pd.DataFrame([{"run": r["run_id"], "name": r["name"], "state": r["state"],
                        "answers": f"{r['done']}/{r['total']}", "errors": r["errors"],
                        "approaches": ", ".join(r["approaches"]), "baseline": r["baseline"] or ""} for r in runs])
    st.dataframe(df, hide_index=True)
    ids = [r["run_id"] for r in runs]
    cur = ss.get("cmp_run") if ss.get("cmp_run") in ids else ids[0]
    ss["cmp_pick_run"] = cur
    st.selectbox("Selected run", ids, key="cmp_pick_run", format_func=lambda i: next(
        f"{i} · {r['name']} · {r['state']}" for r in runs if r["run_id"] == i),
        on_change=lambda: select_run(ss.cmp_pick_run))
    run_controls(cur)


def _progress_text(job) -> str:
    st_ = job.status
    total, done, errs = st_.get("total") or 0, st_.get("done") or 0, st_.get("errors") or 0
    return (f"{job.state}: {done}/{total} answers" + (f", {errs} errors" if errs else "")
            + (f" · now {md_escape(st_['current'])}" if st_.get("current") and job.state == "running" else ""))


def _outcome(job) -> None:
    msg = md_escape(job.message)
    if job.state == "failed":
        st.error(msg)
    elif job.state == "interrupted":
        st.warning(msg)
    elif msg and job.state != "running":
        st.caption(msg)
    if job.status.get("last_error"):
        st.caption(f"Last error: {md_escape(job.status['last_error'])}")


def run_controls(run_id: str) -> None:
    status = runner.read_status(runner.runs_root() / run_id)
    if not status:
        st.warning(f"Run {md_escape(run_id)} cannot be read.")
        return
    active = status.get("state") in ("queued", "running") and not status.get("hold")
    c1, c2 = st.columns(2)
    label = "▶ Start" if status.get("hold") else "▶ Resume"
    if c1.button(label, key="cmp_resume", disabled=not runner.can_resume(status),
                 help="Continue: finished answers are skipped, errored ones retried."):
        try:
            runner.start_worker(run_id)
        except WorkbenchError as exc:
            show_error(exc)
        st.rerun()
    if c2.button("🗑 Delete run", key="cmp_delete", disabled=active):
        try:
            runner.delete_run(run_id)
            select_run(None)
        except WorkbenchError as exc:
            show_error(exc)
        st.rerun()
    job_panel(run_id, key="cmp", poll_s=2, title=f"Run {md_escape(run_id)}", progress_text=_progress_text,
              progress_done=True, outcome=_outcome, cancel_label="⏹ Stop",
              cancel_help="Stops after the current answer (killed if it does not stop within 30 s); resume later.")


# ---- results / charts / report -----------------------------------------------------------------------------
def load_selected():
    run_id = ss.get("cmp_run")
    if not run_id:
        return None, None
    try:
        from core.compare.report import build
        override = ss.get(f"cmp_baseline_override_{run_id}")
        run, summary = build(run_id, cost_model(), None if override is None else
                             ("" if override == "(none)" else override))
        return run, summary
    except WorkbenchError as exc:
        show_error(exc)
        return None, None


def cost_model() -> CostModel:
    d = ss.get("cmp_cost") or {}
    try:
        return CostModel.from_dict(d)
    except ValueError:
        return CostModel()


def _explain_scores() -> None:
    with st.expander("What the scores mean"):
        for k, v in EXPLAIN.items():
            st.markdown(f"**{k}** — {v}")


def results_tab(run, summary) -> None:
    if run is None:
        st.info("Start or select a batch run on the Batch run tab.")
        return
    from core.compare.summary import TABLE_SCORES, approach_rows, diff_count_rows, matrix_rows, matrix_wide

    st.caption(f"Run {md_escape(run.run_id)} · {md_escape(run.state)} · {summary['n_questions']} questions · "
               f"{run.status.get('done', 0)}/{run.status.get('total', 0)} answers")
    others = [r["run_id"] for r in runner.list_runs() if r["run_id"] != run.run_id]
    okey = f"cmp_baseline_override_{run.run_id}"
    cur_base = ss.get(okey) or run.spec.get("baseline") or "(none)"
    opts = ["(none)"] + others
    c1, c2 = st.columns([3, 1])
    pick = c1.selectbox("Baseline run to diff against", opts, index=opts.index(cur_base) if cur_base in opts else 0,
                        key=f"cmp_base_pick_{run.run_id}",
                        help="Which questions got better or worse than in that run.")
    if pick != cur_base:
        ss[okey] = pick            # "(none)" is kept explicitly, so it can override the run's stored baseline
        st.rerun()
    if summary.get("baseline_error"):
        st.warning(md_escape(summary["baseline_error"]))
    if c2.button("Mark as this run's baseline", key="cmp_mark_base", disabled=pick == "(none)",
                 help="Stored in the run, so the CLI and the report use it too."):
        runner.set_baseline(run.run_id, pick)
        st.toast("Baseline saved")
    st.subheader("Per approach")
    st.dataframe(pd.DataFrame(approach_rows(summary)), hide_index=True, column_config={
        "quality": st.column_config.ProgressColumn("quality", min_value=0, max_value=1, format="%.2f",
                                                   help=EXPLAIN["quality"]),
        **{k: st.column_config.NumberColumn(k, format="%.2f", help=EXPLAIN[k])
           for k in TABLE_SCORES},
        "p50 s": st.column_config.NumberColumn(format="%.2f"), "p95 s": st.column_config.NumberColumn(format="%.2f"),
        "$ / 1k": st.column_config.NumberColumn(format="%.4f")})
    st.caption("Means ignore answers where a score does not apply (shown as empty); n per score is in the report.")
    for s in summary["approaches"]:
        if s.errors:
            with st.expander(f"{md_escape(s.name)}: {len(s.errors)} error(s)"):
                st.dataframe(pd.DataFrame(s.errors, columns=["question", "error"]), hide_index=True)
    # matrix
    mrows = matrix_rows(run, summary.get("diff"))
    st.subheader("Matrix: quality per question × approach")
    names = [a.name for a in run.approaches]
    st.dataframe(pd.DataFrame(matrix_wide(mrows)), hide_index=True, column_config={
        **{n: st.column_config.ProgressColumn(n, min_value=0, max_value=1, format="%.2f") for n in names},
        **{f"{n} Δ": st.column_config.NumberColumn(f"{n} Δ", format="%+.2f",
                                                  help="quality minus the baseline run's") for n in names}})
    diff = summary.get("diff")
    if diff:
        st.markdown(f"**Against baseline run `{diff['baseline_run']}`** (a change larger than ±{diff['eps']:.2f} "
                    f"counts as better/worse)")
        st.dataframe(pd.DataFrame(diff_count_rows(diff)), hide_index=True)
        changed = [r for r in diff["rows"] if r["verdict"] in ("better", "worse")]
        if changed:
            st.dataframe(pd.DataFrame(changed), hide_index=True,
                         column_config={"delta": st.column_config.NumberColumn(format="%+.2f")})
    st.subheader("Answers and scores")
    cols = ["qid", "approach", *(["repeat"] if run.repeats > 1 else []), "status", "quality", *QUALITY_SCORES[:-1], *RAG_SCORES, "judge", "latency_s",
            "ttft_s", "tokens", "vs_baseline", "answer"]
    df = pd.DataFrame(mrows)
    st.dataframe(df[[c for c in cols if c in df.columns]], hide_index=True,
                 column_config={"answer": st.column_config.TextColumn(width="large"),
                                **{k: st.column_config.NumberColumn(format="%.2f", help=EXPLAIN.get(k))
                                   for k in ("quality", *QUALITY_SCORES, *RAG_SCORES) if k in EXPLAIN}})
    _explain_scores()
    inspect_question(run)
    from ui.ratings import ratings_panel

    ratings_panel(run.dir, mrows)


def inspect_question(run) -> None:
    qs = run.questions
    if not qs:
        return
    st.subheader("One question, every approach")
    pick = st.selectbox("Question", [q.id for q in qs], key="cmp_inspect",
                        format_func=lambda i: f"{i}: {next(q.question for q in qs if q.id == i)[:90]}")
    q = next(q for q in qs if q.id == pick)
    rep = 0
    if run.repeats > 1:
        rep = int(st.number_input("Repeat", 0, run.repeats - 1, 0, key="cmp_inspect_repeat"))
    st.markdown("**Reference:**")
    st.text(q.reference or "(none)")
    cols = st.columns(max(1, len(run.approaches)))
    for col, a in zip(cols, run.approaches):
        with col:
            st.markdown(f"**{md_escape(a.name)}**")
            r = run.result(q.id, a.name, rep)
            if not a.available:
                st.warning(f"Unavailable: {md_escape(a.reason)}")
            elif r is None:
                st.caption("not answered yet")
            elif not r.get("ok"):
                st.error(md_escape(r.get("error")))
            else:
                st.container(border=True).text(r.get("answer") or "(empty answer)")
                st.dataframe(pd.DataFrame([{"score": k, "value": v.get("value"), "why": v.get("reason")}
                                           for k, v in (r.get("scores") or {}).items()]), hide_index=True)
                st.caption(f"{r.get('latency_s', 0):.2f} s · {r.get('prompt_tokens')}+{r.get('completion_tokens')} "
                           f"tokens · {md_escape(r.get('prompt'))} · {md_escape(r.get('model_id'))}")


def charts_tab(run, summary) -> None:
    if run is None or not any(s.n_answers for s in summary["approaches"]):
        st.info("Charts appear once the selected run has answers.")
        return
    from core.compare import charts

    figs = charts.all_figures(run, summary["approaches"])
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs["scores"], key="cmp_fig_scores")
    c2.plotly_chart(figs["tags"], key="cmp_fig_tags")
    c1.plotly_chart(figs["latency"], key="cmp_fig_latency")
    c2.plotly_chart(figs["tokens"], key="cmp_fig_tokens")
    st.plotly_chart(figs["cost"], key="cmp_fig_cost")
    st.caption("Error bars: 95% bootstrap confidence intervals (1,000 resamples, seeded). Latency is end to end: "
               "retrieval + generation. Cost follows the cost model on the Decision report tab.")


def report_tab(run, summary) -> None:
    if run is None:
        st.info("Select a run first.")
        return
    cm = cost_model()
    with st.form("cmp_cost_form"):
        st.markdown("**Cost model** — edit to your provider or hardware")
        mode = st.radio("Price by", ["api", "gpu"], index=0 if cm.mode == "api" else 1, horizontal=True,
                        format_func=lambda m: "hosted API ($ per token)" if m == "api" else "own GPU ($ per GPU-hour)")
        c1, c2, c3 = st.columns(3)
        pin = c1.number_input("$ per 1M input tokens", 0.0, 1000.0, float(cm.price_in_per_m), format="%.3f")
        pout = c2.number_input("$ per 1M output tokens", 0.0, 1000.0, float(cm.price_out_per_m), format="%.3f")
        gpu = c3.number_input("$ per GPU-hour (serving)", 0.0, 1000.0, float(cm.gpu_per_hour), format="%.2f")
        c1, c2, c3 = st.columns(3)
        train = c1.number_input("$ per hour (training device)", 0.0, 1000.0, float(cm.train_per_hour), format="%.2f",
                                help="One-off fine-tuning cost = the adapter's measured train_seconds × this.")
        comp = c2.number_input("$ per hour (CPU: embedding/ingest)", 0.0, 1000.0, float(cm.compute_per_hour),
                               format="%.2f", help="Retrieval time per query and the indexing one-off use this rate.")
        vol = c3.number_input("Queries per month", 1, 10**9, int(cm.volume_per_month), step=10_000)
        if st.form_submit_button("Apply"):
            ss.cmp_cost = CostModel(mode, pin, pout, gpu, comp, train, int(vol)).to_dict()
            st.rerun()
    d = summary["decision"]
    ov = d.get("overall", {})
    if ov.get("winner"):
        st.success(md_escape(ov["text"]))
        st.caption(md_escape(ov.get("rule", "")))
    else:
        st.info(md_escape(ov.get("text", "No answers yet.")))
    for key, title in (("accuracy", "Accuracy"), ("latency", "Latency"), ("cost", "Cost"),
                       ("maintenance", "Maintenance")):
        part = d.get(key)
        if not part:
            continue
        st.subheader(f"{title} — {md_escape(part['winner'])}")
        safe.text(part["text"])
        st.dataframe(pd.DataFrame(part["table"]), hide_index=True)
        for extra in part.get("extra", []):
            st.caption(md_escape(extra["caption"]))
            st.dataframe(pd.DataFrame(extra["rows"]), hide_index=True)
        if part.get("by_tag"):
            st.caption("Quality per question tag: mean [95% CI] (n)")
            st.dataframe(pd.DataFrame(part["by_tag"]), hide_index=True)
        if key == "cost" and part.get("break_even"):
            st.markdown("Break-even of fine-tuning: one-off training cost ÷ per-query saving.")
            st.dataframe(pd.DataFrame([{"fine-tuned": b["fine_tuned"], "versus": b["versus"],
                                        "queries": b["queries"], "why": b["reason"]} for b in part["break_even"]]),
                         hide_index=True, column_config={"queries": st.column_config.NumberColumn(format="%,.0f")})
    for u in d.get("unavailable", []):
        st.warning(f"{md_escape(u['name'])} could not run: {md_escape(u['reason'])}")
    st.subheader("Export for stakeholders")
    from core.compare import report

    override = ss.get(f"cmp_baseline_override_{run.run_id}")
    baseline = None if override is None else ("" if override == "(none)" else override)

    def build(fmt: str):
        return lambda: report.cached(run.run_id, fmt, cm, baseline).read_text(encoding="utf-8")

    c1, c2 = st.columns(2)
    c1.download_button("⬇ HTML report (charts included, works offline)", build("html"), f"compare-{run.run_id}.html",
                       "text/html", key="cmp_dl_html")
    c2.download_button("⬇ Markdown report", build("md"), f"compare-{run.run_id}.md", "text/markdown", key="cmp_dl_md")
    st.caption(f"Built when you click (kept in {md_escape(run.dir)} as report.html / report.md until the run changes) · CLI: "
               f"`python -m core report {run.run_id} --format html --out report.html`")
