"""No leakage between the question set and the training data.

A model fine-tuned on a question, its reference answer or its evidence sentence would score well in Compare for
the wrong reason. `find_leaks` reports every training row whose text contains (after normalisation: case,
punctuation, whitespace) a question, a reference answer or an evidence sentence of the question set, and every
row built from a chunk a question was generated from (`chunk_id` / `source_chunk` on the row). Texts shorter
than MIN_WORDS words ("7 days.") are too generic to be a leak and are not checked.

The use case keeps the rule both ways: importing answers drops leaking rows (importers.py), and saving the
question set removes rows of the training file that now leak (review.py calls `enforce`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from core.compare.scores import normalise

MIN_WORDS = 5
FIELDS = ("question", "reference", "evidence")


@dataclass
class Leak:
    row: int              # index of the training row (0-based, in the order given)
    qid: str
    field: str            # question | reference | evidence | chunk
    role: str             # the message role the text was found in ("" for a chunk match)
    text: str             # the leaked text (shortened)

    def to_dict(self) -> dict:
        return asdict(self)


def _q(q) -> dict:
    return q if isinstance(q, dict) else q.to_dict()


def _texts(questions) -> list[tuple[str, str, str]]:
    out = []
    for q in questions:
        d = _q(q)
        for f in FIELDS:
            t = normalise(str(d.get(f) or ""))
            if len(t.split()) >= MIN_WORDS:
                out.append((str(d.get("id") or ""), f, t))
    return out


def held_out_chunks(questions) -> set[str]:
    """Chunk ids the questions were generated from: training data must not be built from them."""
    return {str(_q(q).get("chunk_id")) for q in questions if _q(q).get("chunk_id")}


def find_leaks(training_rows: list[dict], questions, chunk_ids: set[str] | None = None) -> list[Leak]:
    """Every (row, question, field) where a question-set text appears inside a training row."""
    texts = _texts(questions)
    held = set(chunk_ids or ()) | held_out_chunks(questions)
    qid_of_chunk = {str(_q(q).get("chunk_id")): str(_q(q).get("id") or "") for q in questions if _q(q).get("chunk_id")}
    leaks: list[Leak] = []
    for i, row in enumerate(training_rows):
        src = row.get("chunk_id") or row.get("source_chunk")
        if src and str(src) in held:
            leaks.append(Leak(i, qid_of_chunk.get(str(src), ""), "chunk", "", str(src)))
        for m in row.get("messages") or []:
            content = normalise(str(m.get("content") or ""))
            if not content:
                continue
            padded = f" {content} "
            for qid, f, t in texts:
                if f" {t} " in padded:
                    leaks.append(Leak(i, qid, f, str(m.get("role") or ""), t[:120]))
    return leaks


def drop_leaking(training_rows: list[dict], questions) -> tuple[list[dict], list[dict]]:
    """(rows without a leak, [leak dicts]) — the rows kept are in their original order."""
    leaks = find_leaks(training_rows, questions)
    bad = {lk.row for lk in leaks}
    return [r for i, r in enumerate(training_rows) if i not in bad], [lk.to_dict() for lk in leaks]


def question_set_of(uc) -> list[dict]:
    """The use case's saved question set plus its accepted candidates (with their chunk ids), as dicts."""
    from core.usecase import review

    out: dict[str, dict] = {}
    qp = uc.file("questions")
    if qp.is_file():
        from core.scenario import load_questions
        for q in load_questions(qp):
            out[q.id] = q.to_dict()
    if uc.has("candidates"):
        for c in review.load_candidates(uc):
            if c.status == "accepted":
                out[c.id] = {**out.get(c.id, {}), **c.to_question().to_dict(), "chunk_id": c.chunk_id}
    return list(out.values())


def enforce(uc) -> list[dict]:
    """Remove from the use case's training file every row that leaks its question set. Returns the leaks."""
    from core.finetune.datasets import read_jsonl
    from core.usecase import workspace

    if uc.read_only or not uc.has("train"):
        return []
    rows = read_jsonl(uc.file("train"))
    kept, leaks = drop_leaking(rows, question_set_of(uc))
    if leaks:
        workspace.write_jsonl_atomic(uc.writable("train"), kept)
    return leaks
