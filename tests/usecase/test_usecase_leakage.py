"""No leakage: no question, reference answer or evidence sentence of the question set may appear in the training
rows, and no training row may come from a chunk a question was generated from."""
from __future__ import annotations

import csv
import io

from core.compare.questions import load_questions
from core.compare.scores import normalise
from core.finetune.datasets import load_file, read_jsonl
from core.usecase import importers as I
from core.usecase import leakage as L
from core.usecase import questions as Q
from core.usecase import review as R
from tests.usecase.uc_helpers import PAST_ANSWERS


def _assert_no_leak(questions, rows):
    texts = [normalise(t) for q in questions for t in (q.question, q.reference, q.evidence or "")
             if len(normalise(t).split()) >= L.MIN_WORDS]
    contents = [normalise(m["content"]) for r in rows for m in r["messages"]]
    for t in texts:
        assert not any(f" {t} " in f" {c} " for c in contents), t


def _answers_csv_leaking(evidence: list[str], question: str) -> bytes:
    """The fixture answers plus rows that quote the question set: an answer that pastes evidence sentences, a
    customer message that is a question of the set."""
    buf = io.StringIO()
    rows = list(csv.DictReader(io.StringIO(PAST_ANSWERS.read_text(encoding="utf-8"))))
    rows.append({"ticket_id": "L-1", "customer_message": "Quick question about my lamps",
                 "agent_reply": "Hello! " + " ".join(evidence[:2]) + " Cheers!", "topic": "lamps", "notes": ""})
    rows.append({"ticket_id": "L-2", "customer_message": question, "agent_reply": "Hello! Let me check. Cheers!",
                 "topic": "lamps", "notes": ""})
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def test_question_set_and_training_data_stay_apart(copy_of):
    uc = copy_of
    Q.run({"usecase": uc.name, "generator": "extractive"}, Q.ConsoleReport())
    R.set_status(uc, None, "accepted")
    accepted = R.load_candidates(uc)
    qset = L.question_set_of(uc)
    assert len(qset) == len(accepted) and all(q["chunk_id"] for q in qset)
    long_q = next(c.question for c in accepted if len(c.question.split()) >= L.MIN_WORDS)

    # 1. importing answers that quote the questions drops exactly those rows
    data = _answers_csv_leaking([c.evidence for c in accepted], long_q)
    rep = I.import_answers(uc, data, "answers.csv")
    dropped = rep.to_dict()["leaks_dropped"]
    lines = {d["line"] for d in dropped}
    assert {"evidence", "question"} <= {d["field"] for d in dropped}
    assert {102, 103} <= lines                 # the two rows added above (CSV rows 102 and 103)
    # (a real Tidewave transcript also says "Refunds are issued within 5 business days." - dropped as well)
    assert rep.written == 92 + 2 - len(lines)
    R.save_question_set(uc)
    questions = load_questions(uc.file("questions"))
    _assert_no_leak(questions, read_jsonl(uc.file("train")))

    # 2. a training file written by hand with leaking rows: saving the question set removes them
    rows = read_jsonl(uc.file("train"))
    rows.append({"messages": [{"role": "user", "content": "tell me"},
                              {"role": "assistant", "content": questions[0].evidence}]})
    rows.append({"messages": [{"role": "user", "content": "chunk row"}, {"role": "assistant", "content": "ok"}],
                 "chunk_id": accepted[0].chunk_id})
    from core.usecase.workspace import write_jsonl_atomic
    write_jsonl_atomic(uc.file("train"), rows)
    leaks = L.find_leaks(rows, L.question_set_of(uc))
    assert {lk.field for lk in leaks} >= {"evidence", "chunk"}
    rep2 = R.save_question_set(uc)
    assert len({lk["row"] for lk in rep2.leaks_removed}) == 2
    after = read_jsonl(uc.file("train"))
    assert len(after) == rep.written and L.find_leaks(after, L.question_set_of(uc)) == []
    _assert_no_leak(load_questions(uc.file("questions")), after)
    assert load_file(uc.file("train")).ok


def test_short_texts_are_not_leaks():
    q = [{"id": "q1", "question": "How long?", "reference": "7 days.", "evidence": "Valid for 7 days."}]
    rows = [{"messages": [{"role": "user", "content": "How long?"}, {"role": "assistant", "content": "7 days."}]}]
    assert L.find_leaks(rows, q) == []
    q[0]["evidence"] = "The pairing code is valid for 10 minutes."
    rows[0]["messages"][1]["content"] = "Sure: the pairing code is valid for 10 minutes!"
    assert [(lk.qid, lk.field, lk.role) for lk in L.find_leaks(rows, q)] == [("q1", "evidence", "assistant")]
