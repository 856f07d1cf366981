"""Review: accept / edit / reject / tag / keywords; only accepted candidates enter the question set, in the
Compare format, with the evidence re-checked against the collection on save."""
from __future__ import annotations

import pytest

from core.compare.questions import load_questions
from core.errors import UseCaseError
from core.usecase import questions as Q
from core.usecase import review as R


@pytest.fixture
def generated(copy_of):
    Q.run({"usecase": copy_of.name, "generator": "extractive"}, Q.ConsoleReport())
    cands = R.load_candidates(copy_of)
    assert len(cands) >= 5
    return copy_of, cands


def test_only_accepted_candidates_enter_the_question_set(generated):
    uc, cands = generated
    a, b, c, d = cands[:4]
    res = R.apply(uc, [
        {"id": a.id, "status": "accept"},
        {"id": b.id, "status": "accepted", "question": "Roughly how much is it?", "tags": "fact_lookup; Pricing",
         "keywords": "39; euro"},
        {"id": c.id, "status": "reject"},
        {"id": "c-nope", "status": "accept"},
        {"id": d.id, "status": "maybe"},
    ])
    assert res.changed == 3
    assert {e["id"] for e in res.errors} == {"c-nope", d.id}
    rep = R.save_question_set(uc)
    assert rep.saved == 2 and rep.skipped == []
    qs = load_questions(uc.file("questions"))            # the Compare parser reads what review wrote
    assert [q.id for q in qs] == [a.id, b.id]
    by_id = {q.id: q for q in qs}
    assert by_id[b.id].question == "Roughly how much is it?" and by_id[b.id].tags == ["fact_lookup", "pricing"]
    assert by_id[b.id].keywords == ["39", "euro"]
    assert by_id[a.id].evidence == a.evidence and by_id[a.id].source == a.source and by_id[a.id].reference
    edited = {x.id: x for x in R.load_candidates(uc)}
    assert edited[b.id].edited and not edited[a.id].edited and edited[c.id].status == "rejected"
    assert edited[d.id].status == "pending"


def test_edited_evidence_is_rechecked(generated):
    uc, cands = generated
    a = cands[0]
    with pytest.raises(UseCaseError, match="cannot be empty"):
        R.edit(a, question="  ")
    made_up = R.edit(a, evidence="The Lumen lamp sings opera on Sundays.")
    assert made_up.evidence_match == "missing" and made_up.edited
    relaxed = R.edit(a, evidence=a.evidence.upper())
    assert relaxed.evidence_match == "normalised"
    R.apply(uc, [{"id": a.id, "status": "accepted", "evidence": "The Lumen lamp sings opera on Sundays."},
                 {"id": cands[1].id, "status": "accepted"}])
    rep = R.save_question_set(uc)
    assert rep.saved == 1 and [s["id"] for s in rep.skipped] == [a.id]
    assert "evidence no longer found" in rep.skipped[0]["reason"]
    assert [q.id for q in load_questions(uc.file("questions"))] == [cands[1].id]


def test_save_rechecks_evidence_against_the_re_ingested_document(copy_of, tmp_path):
    """The source document changes after generation: a question whose sentence is gone is not saved."""
    from core.rag.api import ingest_paths

    uc = copy_of
    doc = uc.file("knowledge") / "app.txt"
    original = doc.read_text(encoding="utf-8")
    Q.run({"usecase": uc.name, "generator": "extractive", "per_chunk": 10}, Q.ConsoleReport())
    cands = [c for c in R.load_candidates(uc) if c.doc_id == "app.txt"]
    gone = next(c for c in cands if "pairing code" in c.evidence)
    kept = next(c for c in cands if "scene" in c.evidence)
    R.set_status(uc, [gone.id, kept.id], "accepted")
    try:
        doc.write_text(original.replace("The pairing code is valid for 10 minutes.\n", ""), encoding="utf-8")
        assert all(r.ok for r in ingest_paths([doc], uc.collection))
        rep = R.save_question_set(uc)
        assert [s["id"] for s in rep.skipped] == [gone.id]
        assert [q.id for q in load_questions(uc.file("questions"))] == [kept.id]
        assert {c.id: c.evidence_match for c in R.load_candidates(uc)}[gone.id] == "missing"
    finally:
        doc.write_text(original, encoding="utf-8")
        ingest_paths([doc], uc.collection)


def test_manual_questions_and_empty_set(generated):
    uc, _ = generated
    assert R.save_question_set(uc).saved == 0
    assert uc.file("questions").read_text(encoding="utf-8") == ""
    n = R.add_manual(uc, [{"id": "m1", "question": "Write me a poem about lamps.", "reference": "Decline politely.",
                           "tags": ["out_of_scope"]}])
    assert n == 1 and R.add_manual(uc, [{"id": "m1", "question": "again?"}]) == 0
    rep = R.save_question_set(uc)
    qs = load_questions(uc.file("questions"))
    assert rep.saved == 1 and qs[0].id == "m1" and qs[0].tags == ["out_of_scope"] and qs[0].evidence is None
