"""Review of candidate questions: accept, edit, reject, tag, keywords; only accepted ones enter the question set.

Candidates live in <usecase>/candidates.jsonl (questions.Candidate rows). `apply` takes a batch of decisions
(what the review table or the CLI sends); `save_question_set` re-checks every accepted candidate's evidence
against its source chunk in the collection as it is *now* (a re-ingested document may have changed), writes
questions.jsonl in the Compare question format (validated by its parser before it replaces the old file), and
removes training rows that would leak it (leakage.enforce).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from core.errors import CollectionNotFound, UseCaseError
from core.usecase.questions import STATUSES, Candidate, evidence_match

TAGS = ("fact_lookup", "updated_fact", "reasoning", "behaviour", "brand_voice", "out_of_scope")
TAG_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
EDITABLE = ("question", "reference", "evidence", "tags", "keywords", "status", "note")


def load_candidates(uc) -> list[Candidate]:
    from core.usecase.workspace import read_jsonl
    p = uc.paths.get("candidates") if uc.builtin else uc.file("candidates")
    return [Candidate.from_dict(r) for r in read_jsonl(p)] if p is not None else []


def save_candidates(uc, candidates: list[Candidate]) -> None:
    from core.usecase.workspace import write_jsonl_atomic
    ids = [c.id for c in candidates]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise UseCaseError(f"Two candidates share the id(s) {', '.join(sorted(dup))}.")
    write_jsonl_atomic(uc.writable("candidates"), [c.to_dict() for c in candidates])


def _as_list(v, what: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in re.split(r"[;,|]", v) if x.strip()]
    if isinstance(v, (list, tuple)):
        return [str(x).strip() for x in v if str(x).strip()]
    raise UseCaseError(f"`{what}` must be a list of strings or a ';'-separated string.")


def _clean_tags(v) -> list[str]:
    tags = []
    for t in _as_list(v, "tags"):
        t = t.lower().replace(" ", "_").replace("-", "_")
        if not TAG_RE.match(t):
            raise UseCaseError(f"Tag {t!r} must be lowercase letters, digits and '_' (e.g. {', '.join(TAGS[:3])}).")
        if t not in tags:
            tags.append(t)
    return tags


def edit(c: Candidate, **changes) -> Candidate:
    """A changed copy of the candidate; editing text marks it `edited` and re-checks its evidence against the
    chunk it came from (stored with it)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise UseCaseError(f"Cannot edit {', '.join(sorted(unknown))}; editable: {', '.join(EDITABLE)}.")
    d = c.to_dict()
    for k, v in changes.items():
        if v is None:
            continue
        if k == "status":
            v = str(v).strip().lower()
            v = {"accept": "accepted", "reject": "rejected", "ok": "accepted"}.get(v, v)
            if v not in STATUSES:
                raise UseCaseError(f"Status {v!r} must be one of {', '.join(STATUSES)}.")
        elif k == "tags":
            v = _clean_tags(v)
        elif k == "keywords":
            v = _as_list(v, "keywords")
        else:
            v = str(v).strip()
            if k in ("question", "reference", "evidence") and v != d[k]:
                d["edited"] = True
        d[k] = v
    new = Candidate.from_dict(d)
    if not new.question:
        raise UseCaseError(f"{c.id}: the question cannot be empty.")
    new.evidence_match = evidence_match(new.evidence, new.chunk_text) if new.chunk_text else new.evidence_match
    return new


@dataclass
class ApplyResult:
    changed: int = 0
    errors: list[dict] = field(default_factory=list)       # {id, error}: the rest of the batch still applies

    def to_dict(self) -> dict:
        return asdict(self)


def apply(uc, decisions: list[dict]) -> ApplyResult:
    """Apply [{id, status?, question?, reference?, evidence?, tags?, keywords?, note?}] and save the candidates.
    A bad decision is reported with its id; the others are applied."""
    cands = load_candidates(uc)
    by_id = {c.id: i for i, c in enumerate(cands)}
    res = ApplyResult()
    for dec in decisions:
        cid = str(dec.get("id") or "")
        if cid not in by_id:
            res.errors.append({"id": cid, "error": "no candidate with this id"})
            continue
        i = by_id[cid]
        try:
            new = edit(cands[i], **{k: v for k, v in dec.items() if k != "id"})
        except UseCaseError as exc:
            res.errors.append({"id": cid, "error": str(exc)})
            continue
        if new.to_dict() != cands[i].to_dict():
            cands[i] = new
            res.changed += 1
    if res.changed:
        save_candidates(uc, cands)
    return res


def set_status(uc, ids: list[str] | None, status: str, only_pending: bool = True) -> ApplyResult:
    """Accept/reject the given ids (None = every pending candidate when only_pending, else every candidate)."""
    cands = load_candidates(uc)
    if ids is None:
        ids = [c.id for c in cands if c.status == "pending" or not only_pending]
    return apply(uc, [{"id": i, "status": status} for i in ids])


def add_manual(uc, questions: list, status: str = "accepted") -> int:
    """Add questions written by hand (Question objects or dicts in the question-set format) as candidates."""
    from core.scenario import Question

    cands = load_candidates(uc)
    known = {c.id for c in cands}
    n = 0
    for q in questions:
        q = q if isinstance(q, Question) else Question.from_dict(q)
        if q.id in known:
            continue
        cands.append(Candidate(id=q.id, question=q.question, reference=q.reference, evidence=q.evidence or "",
                               chunk_id="", source=q.source or "", keywords=list(q.keywords), tags=list(q.tags),
                               generator="manual", status=status, evidence_match="exact" if q.evidence else "missing"))
        known.add(q.id)
        n += 1
    save_candidates(uc, cands)
    return n


# --- saving the question set ---------------------------------------------------------------------------------------
@dataclass
class SaveReport:
    saved: int = 0
    skipped: list[dict] = field(default_factory=list)     # {id, reason}: accepted but not saved
    warnings: list[dict] = field(default_factory=list)    # {id, warning}
    leaks_removed: list[dict] = field(default_factory=list)
    path: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _current_chunks(uc, doc_ids: set[str]) -> dict[str, list[dict]] | None:
    """doc_id -> its chunks in the collection now; None when the collection is not there."""
    from core.rag import api as rag

    try:
        return {d: rag.document_chunks(uc.collection, d) for d in doc_ids}
    except CollectionNotFound:
        return None


def recheck(c: Candidate, chunks_now: dict[str, list[dict]] | None) -> tuple[str, str]:
    """(match, where): is the evidence still in the source? Checked against the chunk with the same id, else
    any chunk of the same document (re-chunked), else the chunk text stored with the candidate when the
    collection is gone."""
    if not c.evidence:
        return "missing", "no evidence"
    if chunks_now is not None and c.doc_id:
        chunks = chunks_now.get(c.doc_id) or []
        same = [ch for ch in chunks if ch["id"] == c.chunk_id]
        for ch in same + [ch for ch in chunks if ch["id"] != c.chunk_id]:
            m = evidence_match(c.evidence, ch.get("text") or "")
            if m != "missing":
                return m, "chunk" if ch["id"] == c.chunk_id else "document"
        return "missing", "collection"
    m = evidence_match(c.evidence, c.chunk_text)
    return m, "stored chunk"


def save_question_set(uc) -> SaveReport:
    """Write the accepted candidates as the use case's question set (questions.jsonl)."""
    from core.scenario import parse_questions
    from core.usecase import leakage
    from core.usecase.workspace import write_text_atomic

    import json

    path = uc.writable("questions")
    cands = load_candidates(uc)
    accepted = [c for c in cands if c.status == "accepted"]
    rep = SaveReport(path=str(path))
    needs_source = {c.doc_id for c in accepted if c.generator != "manual" and c.doc_id}
    chunks_now = _current_chunks(uc, needs_source) if needs_source else {}
    if chunks_now is None and needs_source:
        rep.warnings.append({"id": "", "warning": f"collection {uc.collection!r} not found: evidence checked "
                                                  "against the chunk text stored with each candidate"})
    changed = False
    lines = []
    for c in accepted:
        if c.generator == "manual" and not c.chunk_id:
            lines.append(c.to_question().to_dict())
            continue
        match, where = recheck(c, chunks_now)
        if match != c.evidence_match:
            c.evidence_match = match
            changed = True
        if match == "missing":
            rep.skipped.append({"id": c.id, "reason": f"evidence no longer found in {c.source or c.doc_id} "
                                                      f"({where}); edit the evidence or reject the question"})
            continue
        if where == "document":
            rep.warnings.append({"id": c.id, "warning": "the document was re-chunked; evidence found in another chunk"})
        lines.append(c.to_question().to_dict())
    text = "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in lines)
    if lines:
        parse_questions(text, "questions.jsonl")          # the one strict parser must accept what we write
    write_text_atomic(path, text)
    rep.saved = len(lines)
    if changed:
        save_candidates(uc, cands)
    rep.leaks_removed = leakage.enforce(uc)
    return rep
