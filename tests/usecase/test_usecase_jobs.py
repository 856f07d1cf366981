"""Question generation as a job of the one job layer (kind `usecase_questions`), and the Use Case page's first
comparison as a Compare job, on the really ingested `lumen` collection (tests/usecase/conftest.py)."""
from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs
from core.config import PROJECT_ROOT
from core.errors import UseCaseError
from core.usecase import questions, review, workspace


def test_kind_is_registered_and_the_spec_is_checked_first():
    kind = jobs.get_kind("usecase_questions")
    assert kind.run == "core.usecase.questions:run" and kind.resource == "usecase"
    spec = questions.job_spec("acme", "extractive", per_chunk=2, limit=5)
    assert questions.cli_line(spec) == ("python -m core usecase gen-questions acme --generator extractive "
                                        "--per-chunk 2 --limit 5")
    with pytest.raises(UseCaseError):
        questions.job_spec("acme", "magic")
    with pytest.raises(UseCaseError):
        questions.job_spec("acme", per_chunk=0)


def test_the_demo_is_refused_before_a_job_exists(lumen):
    with pytest.raises(UseCaseError, match="read-only"):
        questions.start_job(questions.job_spec("tidewave", "extractive"))
    assert not jobs.list_jobs("usecase_questions", where=lambda j: j.spec.get("usecase") == "tidewave")


@pytest.mark.slow
def test_generation_runs_as_a_job_in_its_own_process(copy_of):
    uc = copy_of
    job = questions.start_job(questions.job_spec(uc.name, "extractive"))
    assert job.kind == "usecase_questions" and job.state in ("queued", "running")
    done = jobs.wait(job.id, timeout=300)
    assert done.state == "succeeded", (done.error, done.log_tail(20))
    assert done.progress == 1.0 and done.status.get("pid") != os.getpid()
    cands = review.load_candidates(uc)
    res = done.result
    assert res["candidates"] == len(cands) > 0 and res["total_candidates"] == len(cands)
    assert res["chunks_done"] == res["chunks"] > 0 and not res["errors"]
    assert all(c.chunk_id and c.source and c.evidence in c.chunk_text for c in cands)
    assert questions.latest_job(uc.name).id == job.id
    # a second run adds nothing new (the same chunks give the same candidate ids)
    again = jobs.wait(questions.start_job(questions.job_spec(uc.name, "extractive")).id, timeout=300)
    assert again.state == "succeeded" and again.result["candidates"] == 0
    assert len(review.load_candidates(uc)) == len(cands)


@pytest.mark.slow
def test_first_comparison_button_runs_a_compare_job_and_opens_compare_on_it(copy_of):
    from core.compare import runner

    uc = copy_of
    res = questions.run(questions.job_spec(uc.name, "extractive", limit=2), questions.ConsoleReport())
    assert res["candidates"] == 2
    review.set_status(uc, None, "accepted")
    assert review.save_question_set(uc).saved == 2
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)     # the app: switch_page works
    at.query_params["usecase"] = uc.name
    at.switch_page("app_pages/6_Use_Case.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="uc_name").value == uc.name
    at.number_input(key=f"uc_cmp_limit_{uc.name}").set_value(1)
    next(b for b in at.button if b.label == "Run first comparison").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    run_id = at.session_state[f"uc_cmp_run_{uc.name}"]
    job = jobs.read(run_id)
    assert job.kind == "compare"
    spec = job.spec
    assert [q["id"] for q in spec["questions"]] == [c.id for c in review.load_candidates(uc)][:1]
    assert [a["spec"]["name"] for a in spec["approaches"]] == ["prompt_only", "prompt_rag"]
    assert all(a["spec"]["prompt"] == f"{uc.name}__{p}" for a, p in zip(spec["approaches"], ("few_shot", "guardrail")))
    assert all(a["spec"]["rag"] is None or a["spec"]["rag"]["collection"] == uc.collection for a in spec["approaches"])
    done = jobs.wait(run_id, timeout=900)
    assert done.state == "succeeded", (done.error, done.log_tail(20))
    assert runner.read_status(runner.run_dir(run_id))["done"] == 2
    at.run()
    assert not at.exception
    next(b for b in at.button if b.label == "Open it in Compare").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["cmp_run"] == run_id and at.session_state["cmp_usecase"] == uc.name
    assert at.selectbox(key="cmp_pick_run").value == run_id
    assert at.query_params["run"] == run_id and at.query_params["usecase"] == uc.name
    assert any("Compare approaches" in t.value for t in at.title)
