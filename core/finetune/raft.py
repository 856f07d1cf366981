"""Training-data variants: the plain transcripts, or retrieval-augmented ones (RAFT, Zhang et al. 2024).

    plain  the transcripts as they are (minus any row that would leak the evaluation set, see below).
    raft   each transcript's question goes through retrieval exactly as the RAG prompt will at answer time (the
           embedded RAG profile: same k, same context selection and budget, same prompt), so the training prompt
           holds the right passage and the distractors retrieval brings along. The answer stays the transcript's,
           in Pip's voice; every step that states a fact found in a passage gets that passage's citation [n]. A row
           whose facts are in no passage keeps its answer uncited (RAFT's "no oracle document" case).

Leakage guard (both variants): no evaluation question, reference answer or evidence sentence may reach training.
A transcript whose user turn is an evaluation question (or nearly: difflib ratio >= QUESTION_RATIO), or whose text
holds an evaluation reference, a reference sentence or an evidence sentence (or a near-copy of one: word-set
Jaccard >= NEAR_COPY), is dropped (listed as a warning);
in RAFT prompts, context sentences that are evidence or reference sentences are left out of the selection.
`find_leaks(rows, questions)` is the check the tests run over every generated row.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from core.errors import InvalidParams
from core.finetune.spec import DATA_VARIANTS
QUESTION_RATIO = 0.8          # user turn vs evaluation question: at or above this, the row is the question
MIN_SENTENCE_WORDS = 5        # reference sentences shorter than this are too generic to count as a leak
NEAR_COPY = 0.8              # a sentence whose word set overlaps an evidence/reference sentence's this much (Jaccard)
SUPPORT_SHARE = 0.6           # a step is supported by a passage holding >= this share of its content words (and >= 2)
_STEP = re.compile(r"^(\s*\d+[.)]\s+)(.*?)(\s*)$")


# ---- leakage ------------------------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", text or "").lower().replace("*", "").replace("`", "")
    t = re.sub(r"[^\w€$%.]+", " ", t)
    t = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text or "")
    return [re.sub(r"^\s*\d+[.)]\s+", "", p).strip() for p in parts if p.strip()]


class LeakGuard:
    """What of the evaluation set must never be trained on: questions, reference answers, reference sentences of
    >= MIN_SENTENCE_WORDS words and evidence sentences (all normalised: case, punctuation, whitespace). Lines
    that pass a voice check's greeting/sign-off (the house style every answer shares) are not facts and are
    not counted."""

    def __init__(self, questions: Sequence, boilerplate: Sequence[str] = ()):
        self.questions = [(_norm(q.question), q.id) for q in questions if (q.question or "").strip()]
        self.boiler = [re.compile(p, re.I | re.M) for p in boilerplate]
        self.texts: list[tuple[str, str, str]] = []          # (normalised text, kind, qid)
        for q in questions:
            if (q.reference or "").strip():
                self.texts.append((_norm(q.reference), "reference", q.id))
                for line in q.reference.splitlines():
                    if self._is_boilerplate(line):
                        continue
                    for s in _sentences(line):
                        if len(re.findall(r"\w+", s)) >= MIN_SENTENCE_WORDS:
                            self.texts.append((_norm(s), "reference sentence", q.id))
            if (q.evidence or "").strip():
                self.texts.append((_norm(q.evidence), "evidence", q.id))
        self.texts = [t for t in self.texts if t[0]]
        self.word_sets = [(set(nt.split()), kind, qid) for nt, kind, qid in self.texts
                          if kind != "reference" and len(nt.split()) >= MIN_SENTENCE_WORDS]

    def _is_boilerplate(self, s: str) -> bool:
        return any(rx.search(s) for rx in self.boiler)

    def leaks(self, text: str, user_turn: str | None = None) -> list[str]:
        """Why `text` (a training row's text) leaks the evaluation set; [] when it does not."""
        out = []
        t = _norm(text)
        if user_turn is not None:
            u = _norm(user_turn)
            for nq, qid in self.questions:
                if u == nq or difflib.SequenceMatcher(None, u, nq).ratio() >= QUESTION_RATIO:
                    out.append(f"the user turn is evaluation question {qid}")
        for nq, qid in self.questions:
            if len(nq.split()) >= 4 and nq in t:
                out.append(f"holds evaluation question {qid}")
        for nt, kind, qid in self.texts:
            if nt in t:
                out.append(f"holds the {kind} of {qid}")
        for sent in _sentences(text):
            hit = self._near_copy(sent)
            if hit:
                out.append(f"holds a near-copy of the {hit[0]} of {hit[1]}")
        return sorted(set(out))

    def _near_copy(self, sentence: str) -> tuple[str, str] | None:
        ws = set(_norm(sentence).split())
        if len(ws) < MIN_SENTENCE_WORDS:
            return None
        for es, kind, qid in self.word_sets:
            if len(ws & es) / len(ws | es) >= NEAR_COPY:
                return kind, qid
        return None

    def excludes(self, sentence: str) -> bool:
        """True for a context sentence that is (or contains, or is part of) an evidence or reference sentence."""
        s = _norm(sentence)
        if len(s.split()) < 3:
            return False
        if any(nt in s or (len(s.split()) >= MIN_SENTENCE_WORDS and s in nt) for nt, _, _ in self.texts):
            return True
        return self._near_copy(sentence) is not None


def row_text(row: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in row.get("messages", []))


def user_turn(row: dict) -> str:
    users = [m.get("content") or "" for m in row.get("messages", []) if m.get("role") == "user"]
    return users[-1] if users else ""


def find_leaks(rows: Sequence[dict], questions: Sequence, boilerplate: Sequence[str] = ()) -> list[tuple[int, str]]:
    """(row index, reason) for every training row that holds an evaluation question, reference or evidence."""
    guard = LeakGuard(questions, boilerplate)
    out = []
    for i, r in enumerate(rows):
        for reason in guard.leaks(row_text(r), user_turn(r)):
            out.append((i, reason))
    return out


# ---- RAFT rows ---------------------------------------------------------------------------------------------------
@dataclass
class RaftReport:
    variant: str
    rows_in: int = 0
    rows_out: int = 0
    dropped: list[dict] = field(default_factory=list)      # {line, reasons}
    cited: int = 0                                         # RAFT rows whose answer cites a passage
    uncited: int = 0                                       # RAFT rows with no supporting passage
    context_sentences_excluded: int = 0
    profile: dict = field(default_factory=dict)
    prompt: str = ""
    collection: str = ""
    table_version: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _content(text: str) -> set[str]:
    from core.rag.select import terms

    return set(terms(text))


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in re.findall(r"\d+(?:[.,]\d+)*", text or "")}


def support(step: str, passage: str) -> float:
    """How well a passage backs an answer step: the share of the step's content words it contains (0 below two
    shared words); 0 when the step has a number the passage lacks (a different fact)."""
    sw = _content(step)
    if not sw or _numbers(step) - _numbers(passage):
        return 0.0
    shared = len(sw & _content(passage))
    return shared / len(sw) if shared >= 2 else 0.0


def cite_answer(answer: str, snippets) -> tuple[str, list[int]]:
    """The answer with ' [n]' before the end of every numbered step that passage n (the selected sentences of one
    chunk) supports: >= SUPPORT_SHARE of the step's content words, every number of the step. Returns (text, cited
    numbers)."""
    lines = answer.split("\n")
    cited: list[int] = []
    for i, line in enumerate(lines):
        m = _STEP.match(line)
        if not m:
            continue
        body = m.group(2)
        best, best_n = 0.0, None
        for s in snippets:
            v = support(body, s.text)
            if v > best:
                best, best_n = v, s.n
        if best_n is None or best < SUPPORT_SHARE:
            continue
        stripped = body.rstrip()
        end = stripped[-1] if stripped and stripped[-1] in ".!?" else ""
        core_text = stripped[:-1] if end else stripped
        lines[i] = f"{m.group(1)}{core_text} [{best_n}]{end}{m.group(3)}"
        if best_n not in cited:
            cited.append(best_n)
    return "\n".join(lines), cited


def raft_rows(rows: Sequence[dict], questions: Sequence, *, collection: str, prompt=None, profile=None,
              backend=None, model: str | None = None, retrieve: Callable | None = None,
              boilerplate: Sequence[str] = (), progress: Callable[[int, int], None] | None = None
              ) -> tuple[list[dict], RaftReport]:
    """Retrieval-augmented training rows from chat rows (system, user, assistant). The prompt of each row is built
    the way the embedded RAG profile builds it at answer time: retrieve k chunks of `collection`, select sentences
    under the profile's budget (in the model's own tokens), number them, render `prompt` (default: the profile's
    prompt from the library). Returns (rows, report)."""
    from core.rag.select import profile_for, render_context, select_context, text_token_counter

    profile = profile or profile_for("embedded")
    if prompt is None:
        prompt = _library_prompt(profile.prompt)
    if retrieve is None:
        from core.rag.retriever import retrieve as _retrieve

        def retrieve(q):
            return _retrieve(q, collection, mode="hybrid", k=profile.k)
    if backend is None:
        from core.llm.registry import get_backend
        backend = get_backend("embedded")
    counter = text_token_counter(backend, model)
    guard = LeakGuard(questions, boilerplate)
    rep = RaftReport("raft", rows_in=len(rows), profile=profile.to_dict(), prompt=prompt.name, collection=collection)
    out = []
    excluded = [0]

    def exclude(sentence: str) -> bool:
        hit = guard.excludes(sentence)
        excluded[0] += hit
        return hit

    for i, row in enumerate(rows):
        if progress:
            progress(i, len(rows))
        reasons = guard.leaks(row_text(row), user_turn(row))
        if reasons:
            rep.dropped.append({"line": row.get("line", i + 1), "reasons": reasons})
            continue
        msgs = row["messages"]
        question = user_turn(row)
        answer = msgs[-1]["content"] if msgs and msgs[-1]["role"] == "assistant" else ""
        retrieval = retrieve(question)
        if rep.table_version is None:
            rep.table_version = getattr(retrieval, "table_version", None)
        chunks = getattr(retrieval, "chunks", retrieval)
        snippets = select_context(question, chunks, profile.budget_tokens, counter, method=profile.method,
                                  max_sentences=profile.max_sentences, first_words=profile.first_words,
                                  exclude=exclude)
        new_answer, cited = cite_answer(answer, snippets)
        rep.cited += bool(cited)
        rep.uncited += not cited
        messages = prompt.render({"question": question},
                                 context=render_context(snippets) if snippets else "(no passages were retrieved)")
        messages.append({"role": "assistant", "content": new_answer})
        new_row = {"messages": messages, "line": row.get("line", i + 1),
                   "raft": {"cited": cited, "sources": [s.source for s in snippets]}}
        if guard.leaks(row_text(new_row)):          # belt and braces: a generated row never leaks
            rep.dropped.append({"line": new_row["line"], "reasons": guard.leaks(row_text(new_row))})
            continue
        out.append(new_row)
    rep.rows_out = len(out)
    rep.context_sentences_excluded = excluded[0]
    return out, rep


def plain_rows(rows: Sequence[dict], questions: Sequence, boilerplate: Sequence[str] = ()) -> tuple[list[dict], RaftReport]:
    """The transcripts minus the rows that would leak the evaluation set."""
    guard = LeakGuard(questions, boilerplate)
    rep = RaftReport("plain", rows_in=len(rows))
    out = []
    for i, row in enumerate(rows):
        reasons = guard.leaks(row_text(row), user_turn(row))
        if reasons:
            rep.dropped.append({"line": row.get("line", i + 1), "reasons": reasons})
        else:
            out.append(row)
    rep.rows_out = len(out)
    return out, rep


def _library_prompt(name: str):
    from core.prompts.library import PromptLibrary

    lib = PromptLibrary()
    if not lib.names():
        lib.ensure_starter()
    return lib.resolve(name)[0]


def scenario_context() -> tuple[list, list[str], str]:
    """(evaluation questions, voice-check patterns of the greeting/sign-off, collection) of the scenario."""
    from core.compare.questions import load_scenario, scenario_questions

    sc = load_scenario()
    boiler = [c.pattern for c in sc.voice_checks if c.name in ("greeting", "signoff")]
    return scenario_questions(), boiler, sc.collection


def apply_data_variant(ds, variant: str, *, questions: Sequence | None = None, collection: str | None = None,
                       progress: Callable[[int, int], None] | None = None, **kw):
    """The Dataset the job trains on for `variant` (JobSpec.data_variant): rows that would leak the scenario's
    evaluation set are dropped (a warning each); "raft" rewrites every row as above. Returns (dataset, report)."""
    from core.finetune.datasets import Dataset, Problem

    if variant not in DATA_VARIANTS:
        raise InvalidParams(f"data_variant must be one of {', '.join(DATA_VARIANTS)} (got {variant!r}).")
    qs, boiler, coll = scenario_context()
    questions = qs if questions is None else questions
    if variant == "raft":
        from core.rag import api as rag_api

        coll = collection or coll
        if coll == rag_api.sample_paths()[0]:
            rag_api.ensure_sample_collection()
        rows, rep = raft_rows(ds.rows, questions, collection=coll, boilerplate=boiler, progress=progress, **kw)
    else:
        rows, rep = plain_rows(ds.rows, questions, boiler)
    problems = list(ds.problems) + [Problem(d["line"], "left out of training: " + "; ".join(d["reasons"]), "warning")
                                    for d in rep.dropped]
    info = {k: v for k, v in rep.to_dict().items() if k != "dropped"}
    info["dropped"] = len(rep.dropped)
    return Dataset(rows=rows, format=ds.format, source=ds.source, problems=problems, n_read=ds.n_read,
                   variant=info), rep


def describe_variant(spec: dict | None) -> str:
    """One line for the Fine-Tune page / runs list: which data a run (its spec.json) or an adapter (its recorded
    spec) trained on."""
    spec = spec or {}
    variant = spec.get("data_variant") or "plain"
    info = (spec.get("data_summary") or {}).get("variant") or {}
    if variant == "raft":
        prof = info.get("profile") or {}
        line = "RAFT: retrieval-augmented transcripts"
        if prof:
            line += (f" (k={prof.get('k')}, {prof.get('method')} <= {prof.get('budget_tokens')} tokens, prompt "
                     f"{info.get('prompt') or prof.get('prompt')}")
            line += f"; {info.get('cited')}/{info.get('rows_out')} answers cite a passage)" if info.get("rows_out") else ")"
        return line
    line = "plain transcripts"
    if info.get("dropped"):
        line += f" ({info['dropped']} rows that hold evaluation text left out)"
    return line


def adapter_variant(info) -> str:
    """The data variant an adapter (core.llm.models.AdapterInfo) was trained on; "plain" for older adapters."""
    return str(((getattr(info, "extra", None) or {}).get("spec") or {}).get("data_variant") or "plain")


def newest_adapter(adapters: Sequence, variant: str):
    """The newest adapter trained on `variant` data; else the newest of any variant (None if there is none).
    `adapters` is core.llm.models.list_adapters() (newest first)."""
    for a in adapters:
        if adapter_variant(a) == variant:
            return a
    return adapters[0] if adapters else None
