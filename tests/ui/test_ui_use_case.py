"""AppTest of app_pages/6_Use_Case.py: pick the demo, create a use case, import past answers with a column mapping,
accept derived checks, generate candidates from a really ingested collection, review them in the table and save
the question set."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_ROOT
from core.safe_text import unescape_markdown
from core.usecase import review, workspace
from tests.usecase.uc_helpers import PAST_ANSWERS, write_docs

PAGE = str(PROJECT_ROOT / "app_pages" / "6_Use_Case.py")


def load(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    raw = "\n".join([x.value for x in at.success] + [x.value for x in at.info] + [x.value for x in at.warning]
                    + [x.value for x in at.error] + [x.value for x in at.markdown])
    return raw + "\n" + unescape_markdown(raw)     # as written and as read (untrusted parts are escaped)


def test_demo_is_shown_read_only(data_dir):
    at = load()
    assert at.selectbox(key="uc_name").value == "tidewave"
    assert "read-only" in texts(at)
    assert any(c.value == "python -m core compare --preset classic" for c in at.code)
    assert [m.value for m in at.metric][:2] == ["57", "192"]


def test_create_import_answers_and_accept_checks(data_dir):
    at = load()
    at.text_input(key="uc_new_name").input("acme")
    at.text_input(key="uc_new_product").input("Tidewave")
    at = click(at, "Create use case")
    assert at.selectbox(key="uc_name").value == "acme" and at.query_params["usecase"] == "acme"
    at.file_uploader(key="uc_ans_acme").upload(PAST_ANSWERS.name, PAST_ANSWERS.read_bytes(), "text/csv")
    at.run()
    assert at.selectbox(key="uc_map_question_acme").value == "customer_message"
    assert at.selectbox(key="uc_map_answer_acme").value == "agent_reply"
    at = click(at, "Check")
    assert "Would import 92 training row(s)" in texts(at)
    assert not workspace.get_usecase("acme").has("train")
    at = click(at, "Import")
    assert "Imported 92 training row(s)" in texts(at)
    uc = workspace.get_usecase("acme")
    assert "anna.kovacs@example.com" not in uc.file("train").read_text(encoding="utf-8")     # masked by default
    assert at.checkbox(key="uc_chk_acme_greeting").value
    at.checkbox(key="uc_chk_acme_numbered_steps").uncheck()
    at = click(at, "Accept selected checks")
    assert [c["name"] for c in workspace.load_checks(uc)["voice_checks"]] == ["greeting", "signoff"]


@pytest.mark.slow
def test_generate_review_and_save_the_question_set(data_dir, tmp_path):
    from core import jobs
    from core.rag.api import ingest_paths

    uc = workspace.create_usecase("lamps", product="Lumen", docs=[write_docs(tmp_path / "docs")])
    assert all(r.ok for r in ingest_paths([uc.file("knowledge")], uc.collection))
    at = load({"usecase": "lamps"})
    assert at.selectbox(key="uc_name").value == "lamps"
    at.radio(key="uc_gen_lamps").set_value("extractive").run()
    assert any(c.value == "python -m core usecase gen-questions lamps --generator extractive" for c in at.code)
    at = click(at, "Generate candidate questions")
    job_id = at.session_state["uc_gen_job_lamps"]          # a usecase_questions job in its own process
    assert jobs.read(job_id).kind == "usecase_questions"
    assert jobs.wait(job_id, timeout=300).state == "succeeded"
    at.run()
    cands = review.load_candidates(uc)
    assert cands and f"{len(cands)} new candidate(s) (extractive)" in texts(at)
    assert not any(b.label == "Save review" for b in at.button)     # a closed Review tab builds no table
    at.session_state["uc_step"] = "5 · Review"                       # what clicking the tab does
    at.run()
    assert any(b.label == "Save review" for b in at.button)
    editor = "uc_rev_lamps_pending"
    at.session_state[editor] = {"edited_rows": {0: {"status": "accepted", "tags": "fact_lookup; pricing"},
                                                1: {"status": "rejected"}},
                                "added_rows": [], "deleted_rows": []}
    at.session_state["uc_step"] = "6 · First comparison"    # unsaved edits keep the Review tab rendered
    at.run()
    assert any(b.label == "Save review" for b in at.button)
    at = click(at, "Save review")
    assert "2 candidate(s) updated." in texts(at)
    by_id = {c.id: c for c in review.load_candidates(uc)}
    assert by_id[cands[0].id].status == "accepted" and by_id[cands[0].id].tags == ["fact_lookup", "pricing"]
    assert by_id[cands[1].id].status == "rejected"
    assert editor not in at.session_state                    # saved edits are dropped with the old table
    at.session_state["uc_step"] = "5 · Review"
    at = click(at, "Save question set")
    assert "Question set saved: 1 question(s)." in texts(at)
    from core.compare.questions import load_questions
    assert [q.id for q in load_questions(uc.file("questions"))] == [cands[0].id]
    assert any(c.value == "python -m core usecase compare lamps --run" for c in at.code)


@pytest.mark.parametrize("name", ["Bad Name", "tidewave"])
def test_bad_names_are_a_clear_message(data_dir, name):
    at = load()
    at.text_input(key="uc_new_name").input(name)
    at = click(at, "Create use case")
    assert at.error and at.selectbox(key="uc_name").value == "tidewave"


def test_switching_use_case_follows_the_selectbox_and_the_url(data_dir):
    workspace.create_usecase("acme")
    at = load({"usecase": "acme"})
    assert at.selectbox(key="uc_name").value == "acme"
    at.selectbox(key="uc_name").set_value("tidewave").run()
    assert at.selectbox(key="uc_name").value == "tidewave" and at.query_params["usecase"] == "tidewave"
    assert load({"usecase": "nope"}).selectbox(key="uc_name").value == "tidewave"
