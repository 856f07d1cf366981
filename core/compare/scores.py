"""Score functions. Each returns a `Score`: a float in [0, 1], or None with the reason it does not apply.
Never NaN. Aggregates ignore None and report how many answers were scored (n).

Embedding-based scores take `embed(texts) -> L2-normalised np.ndarray` (core.rag.api.get_embedder().encode by
default), so a cosine similarity is a dot product.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from core.citations import check_citations, strip_citations
from core.jsonout import NotJSON, extract_json, schema_problem, validate_json_output
from core.scenario import Question, VoiceCheck
from core import safe_regex
from core.errors import PatternError

# Thresholds (documented in the UI and README).
GROUNDED_THRESHOLD = 0.65     # answer sentence supported when its best cosine to a chunk or chunk sentence >= this
CONTEXT_HIT_THRESHOLD = 0.8   # evidence retrieved when a chunk has it verbatim, or a chunk sentence has cosine >= this
EXACT_MAX_WORDS = 6           # "exact match" applies to references of at most this many words (or `exact: true`)

# What every score means, shown as help/captions in the UI and in the report.
EXPLAIN = {
    "quality": "Mean of the reference/behaviour scores that apply to the answer (similarity, keywords, patterns, "
               "exact, JSON, voice, judge). The headline accuracy number of the decision report.",
    "similarity": "Cosine similarity between the answer and the reference answer (MiniLM embeddings), clipped to 0..1.",
    "keywords": "Share of the question's expected keywords found in the answer (case-insensitive).",
    "patterns": "Share of the question's regex patterns that match the answer.",
    "exact": f"1 when the normalised reference appears verbatim in the answer; only for short references "
             f"(<= {EXACT_MAX_WORDS} words) or questions marked `exact`.",
    "json_valid": "1 when the answer is JSON (a ```json fence is allowed) valid against the schema of the question "
                  "or prompt; only when a schema applies.",
    "voice": "Share of the scenario's brand-voice checks (greeting, numbered steps, sign-off ...) the answer passes.",
    "context_hit": f"RAG only: 1 when the context in the prompt (the retrieved chunks, or the sentences the context "
                   f"selection kept of them) contains the question's evidence passage (verbatim after "
                   f"normalising, or a sentence with cosine >= {CONTEXT_HIT_THRESHOLD} that holds every number "
                   f"of the evidence). Did the evidence reach the prompt?",
    "groundedness": f"RAG only: share of answer sentences whose best cosine to a retrieved chunk or chunk sentence "
                    f"is >= {GROUNDED_THRESHOLD} and whose numbers all appear in the context. Low means the answer "
                    f"says things the context does not (a similarity proxy: it does not catch every contradiction).",
    "citations": "RAG only: citations [n] that point to a retrieved chunk, averaged with whether a cited chunk comes "
                 "from the question's source document. 0 when nothing is cited.",
    "judge": "Optional LLM judge: a 1-5 rubric grade returned as JSON {score, reason}, mapped to 0..1. "
             "A judge failure is shown with its reason, never as a number.",
}
QUALITY_SCORES = ("similarity", "keywords", "patterns", "exact", "json_valid", "voice", "judge")
RAG_SCORES = ("context_hit", "groundedness", "citations")
ALL_SCORES = QUALITY_SCORES[:-1] + RAG_SCORES + ("judge",)


@dataclass
class Score:
    value: float | None
    reason: str = ""
    detail: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.value is not None:
            v = float(self.value)
            if math.isnan(v) or math.isinf(v):
                self.value, self.reason = None, (self.reason or "") + " (score was not a number)"
            else:
                self.value = min(1.0, max(0.0, v))

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["detail"]:
            d.pop("detail")
        return d


def na(reason: str) -> Score:
    return Score(None, reason)


# ---- text helpers ----------------------------------------------------------------------------------------
def normalise(text: str) -> str:
    """Lowercase, unify unicode, drop punctuation (keep $ % . inside numbers), collapse whitespace."""
    t = unicodedata.normalize("NFKC", text or "").lower()
    t = re.sub(r"[`*_>#]", " ", t)
    t = re.sub(r"(?<!\d)[.,;:!?\"'()\[\]{}]|[.,;:!?\"'()\[\]{}](?!\d)", " ", t)
    return re.sub(r"\s+", " ", t).strip()


_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")


def sentences(text: str, min_words: int = 3) -> list[str]:
    """Split into sentences; drop citation-only fragments, greetings and very short bits."""
    out = []
    for s in _SENT_SPLIT.split(text or ""):
        s = re.sub(r"^\s*(?:\d+[.)]|[-*•])\s+", "", s).strip()
        if len(re.findall(r"\w+", s)) >= min_words:
            out.append(s)
    return out


def strip_reasoning(answer: str) -> str:
    """For chain-of-thought answers, the part after the last 'Answer:' line (else the whole text)."""
    m = list(re.finditer(r"(?im)^\s*(?:final\s+)?answer\s*:\s*", answer or ""))
    return answer[m[-1].end():].strip() if m else (answer or "").strip()


class CachedEmbed:
    """Wraps embed(texts) with a bounded text -> vector cache: retrieved chunks repeat across approaches and
    questions (prompt+RAG and fine-tuned+RAG retrieve the same chunks), so each is embedded once per run."""

    def __init__(self, embed: Callable, max_items: int = 20_000):
        self.embed, self.max_items = embed, max_items
        self.cache: dict[str, object] = {}
        self.hits = self.misses = 0

    def __call__(self, texts: Sequence[str]):
        import numpy as np

        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            vecs = np.asarray(self.embed(missing), dtype="float32")
            if len(self.cache) + len(missing) > self.max_items:
                self.cache.clear()
            self.cache.update(zip(missing, vecs))
            if any(t not in self.cache for t in texts):     # cache was cleared: embed this call's texts directly
                return np.asarray(self.embed(texts), dtype="float32")
        return np.stack([self.cache[t] for t in texts])


def _cos_matrix(embed: Callable, a: Sequence[str], b: Sequence[str]):
    import numpy as np

    ea = np.asarray(embed(list(a)), dtype="float32")
    eb = np.asarray(embed(list(b)), dtype="float32")
    return ea @ eb.T


# ---- reference-based -------------------------------------------------------------------------------------
def similarity(answer: str, reference: str, embed: Callable) -> Score:
    if not (reference or "").strip():
        return na("no reference answer for this question")
    if not (answer or "").strip():
        return Score(0.0, "empty answer")
    sim = float(_cos_matrix(embed, [strip_reasoning(answer)], [reference])[0, 0])
    return Score(sim, f"cosine {sim:.2f} to the reference")


def keywords(answer: str, words: Sequence[str]) -> Score:
    if not words:
        return na("no keywords defined for this question")
    a = normalise(answer)
    found = [w for w in words if normalise(w) and re.search(r"(?<!\w)" + re.escape(normalise(w)) + r"(?!\w)", a)]
    missing = [w for w in words if w not in found]
    return Score(len(found) / len(words), f"{len(found)}/{len(words)} keywords" +
                 (f"; missing: {', '.join(missing[:5])}" if missing else ""), {"missing": missing})


def patterns(answer: str, pats: Sequence[str]) -> Score:
    if not pats:
        return na("no regex patterns defined for this question")
    ok = []
    for p in pats:
        try:   # patterns come from question files: length-capped and time-limited (core.safe_regex)
            ok.append(safe_regex.search(p, answer or "", safe_regex.QUESTION_FLAGS))
        except PatternError as exc:
            return na(str(exc))
    failed = [p for p, o in zip(pats, ok) if not o]
    return Score(sum(ok) / len(pats), f"{sum(ok)}/{len(pats)} patterns match" +
                 (f"; failed: {', '.join(failed[:3])}" if failed else ""))


def exact(answer: str, reference: str, forced: bool = False) -> Score:
    ref = normalise(reference)
    if not ref:
        return na("no reference answer for this question")
    if not forced and len(ref.split()) > EXACT_MAX_WORDS:
        return na(f"not applicable: the reference is free text (> {EXACT_MAX_WORDS} words)")
    ans = normalise(strip_reasoning(answer))
    if not ans:
        return Score(0.0, "empty answer")
    hit = ans == ref or re.search(r"(?<!\w)" + re.escape(ref) + r"(?!\w)", ans) is not None
    return Score(1.0 if hit else 0.0, "reference found verbatim" if hit else "reference not found verbatim")


def json_valid(answer: str, schema: dict | None) -> Score:
    """1 when the reply's JSON (core.jsonout's rules, the same as the Prompt Lab's badge) matches the schema."""
    if not schema:
        return na("no JSON schema applies to this question or prompt")
    problem = schema_problem(schema)
    if problem:
        return na(f"the JSON schema itself is invalid: {problem}")
    try:
        extract_json(answer)
    except NotJSON as exc:
        return Score(0.0, f"answer is not JSON ({exc})")
    ok, err, _ = validate_json_output(answer, schema)
    return Score(1.0, "valid JSON matching the schema") if ok else Score(0.0, err or "JSON does not match the schema")


# ---- behaviour -------------------------------------------------------------------------------------------
def _flags(s: str) -> int:
    return safe_regex.flags_from_letters(s)


def voice(answer: str, checks: Sequence[VoiceCheck], tags: Sequence[str] = ()) -> Score:
    applicable = [c for c in checks if not c.tags or set(c.tags) & set(tags)]
    if not applicable:
        return na("no voice checks apply to this question")
    if not (answer or "").strip():
        return Score(0.0, "empty answer", {c.name: False for c in applicable})
    res: dict[str, bool] = {}
    for c in applicable:   # scenario voice checks: length-capped and time-limited like question patterns
        try:
            res[c.name] = safe_regex.search(c.pattern, answer, _flags(c.flags))
        except PatternError as exc:
            return na(f"voice check {c.name}: {exc}")
    failed = [n for n, ok in res.items() if not ok]
    return Score(sum(res.values()) / len(res), f"{sum(res.values())}/{len(res)} voice checks" +
                 (f"; failed: {', '.join(failed)}" if failed else ""), res)


# ---- RAG -------------------------------------------------------------------------------------------------
def context_hit(evidence: str | None, chunks: Sequence[str], embed: Callable | None = None) -> Score:
    if not (evidence or "").strip():
        return na("no evidence passage for this question (e.g. out of scope)")
    if not chunks:
        return Score(0.0, "retrieval returned no chunks")
    ev = normalise(evidence)
    for i, c in enumerate(chunks):
        if ev in normalise(c):
            return Score(1.0, f"evidence found verbatim in chunk [{i + 1}]")
    if embed is None:
        return Score(0.0, "evidence not found verbatim in any retrieved chunk")
    targets, owner = [], []
    for i, c in enumerate(chunks):
        for s in [c, *sentences(c, min_words=4)]:
            targets.append(s)
            owner.append(i)
    sims = _cos_matrix(embed, [evidence], targets)[0]
    best = int(sims.argmax())
    # A paraphrase counts only when it carries the evidence's numbers: the stale "200 SMS credits" of an old guide
    # is as close to the changelog's "now 300 instead of 200" as a true paraphrase, and "valid for 14 days" to "7".
    ev_numbers = _numbers(evidence)
    for j in sims.argsort()[::-1]:
        if sims[j] < CONTEXT_HIT_THRESHOLD:
            break
        if ev_numbers <= _numbers(targets[j]):
            return Score(1.0, f"evidence matches chunk [{owner[j] + 1}] (cosine {sims[j]:.2f})")
    if sims[best] >= CONTEXT_HIT_THRESHOLD:
        missing = sorted(ev_numbers - _numbers(targets[best]))
        return Score(0.0, f"evidence not retrieved: the closest chunk [{owner[best] + 1}] (cosine {sims[best]:.2f}) "
                          f"lacks its numbers {', '.join(missing)}")
    return Score(0.0, f"evidence not retrieved (best cosine {sims[best]:.2f} < {CONTEXT_HIT_THRESHOLD})")


_NUM = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?")


def _numbers(text: str) -> set[str]:
    return {n.replace(",", ".").rstrip(".") for n in _NUM.findall(text or "")}


def groundedness(answer: str, chunks: Sequence[str], embed: Callable) -> Score:
    if not chunks:
        return na("no retrieved context to ground the answer in")
    sents = sentences(strip_reasoning(strip_citations(answer)))
    if not sents:
        return na("empty answer: no sentence to check" if not (answer or "").strip()
                  else "the answer has no full sentence to check")
    targets = list(chunks)
    for c in chunks:
        targets.extend(sentences(c, min_words=4))
    sims = _cos_matrix(embed, sents, targets).max(axis=1)
    ctx_numbers = set().union(*(_numbers(c) for c in chunks))
    supported, unsupported, bad_numbers = [], [], []
    for s, v in zip(sents, sims):
        missing = _numbers(s) - ctx_numbers
        if missing:
            bad_numbers.extend(sorted(missing))
        (supported if v >= GROUNDED_THRESHOLD and not missing else unsupported).append(s)
    reason = f"{len(supported)}/{len(sents)} sentences supported by the context"
    if bad_numbers:
        reason += f"; numbers not in the context: {', '.join(bad_numbers[:5])}"
    return Score(len(supported) / len(sents), reason, {"unsupported": unsupported[:3]})


def citations(answer: str, chunk_sources: Sequence[str], expected_source: str | None = None,
              check: Callable | None = None) -> Score:
    """`chunk_sources[i]` is the source of numbered chunk [i+1] of the prompt. Citations are read by
    core.citations (the parser the Knowledge Base uses); `check` is accepted for older callers and must be
    that same check."""
    n = len(chunk_sources)
    if n == 0:
        return na("no retrieved chunks, nothing to cite")
    cc = (check or check_citations)(answer or "", n)
    cited, invalid = sorted(set(cc.cited)), sorted(set(cc.invalid))
    total = len(set(cited) | set(invalid))
    if total == 0:
        return Score(0.0, "the answer cites no retrieved chunk")
    valid = [c for c in cited if c not in invalid]
    valid_share = len(valid) / total
    reason = f"{len(valid)} valid / {total} citations"
    if invalid:
        reason += f"; invalid: {', '.join(f'[{i}]' for i in invalid)}"
    if expected_source:
        base = expected_source.replace("\\", "/").rsplit("/", 1)[-1]
        src_ok = any(str(chunk_sources[c - 1]).replace("\\", "/").endswith(base) for c in valid)
        reason += "; cites the expected source" if src_ok else f"; does not cite {base}"
        return Score((valid_share + (1.0 if src_ok else 0.0)) / 2, reason)
    return Score(valid_share, reason)


# ---- all together ----------------------------------------------------------------------------------------
def answer_text(answer: str) -> str:
    """The prose of an answer: for a JSON reply with an "answer" string (e.g. guardrail_json), that string."""
    t = (answer or "").strip()
    if t.startswith(("{", "```")):
        try:
            obj = extract_json(t)
        except ValueError:
            return answer or ""
        if isinstance(obj, dict) and isinstance(obj.get("answer"), str):
            return obj["answer"]
    return answer or ""


def score_answer(question: Question, answer: str, *, chunks: Sequence[dict] | None = None,
                 rag: bool = False, voice_checks: Sequence[VoiceCheck] = (), prompt_schema: dict | None = None,
                 embed: Callable, check_citations: Callable | None = None) -> dict[str, Score]:
    """Every score for one answer. `chunks` are dicts with `text` and `source`, chunk [n] of the prompt first
    (retrieval rank order, or the order the context selection numbered them). A chunk's `prompt_text`, when
    present, is what of it was really in the prompt (selected sentences): the RAG scores read that."""
    chunks = list(chunks or [])
    text = answer_text(answer)
    out: dict[str, Score] = {
        "similarity": similarity(text, question.reference, embed),
        "keywords": keywords(text, question.keywords),
        "patterns": patterns(answer, question.patterns),
        "exact": exact(text, question.reference, question.exact),
        "json_valid": json_valid(answer, question.json_schema or prompt_schema),
        "voice": voice(answer, voice_checks, question.tags),
    }
    if rag:
        texts = [c.get("prompt_text") or c.get("text", "") for c in chunks]
        out["context_hit"] = context_hit(question.evidence, texts, embed)
        out["groundedness"] = groundedness(text, texts, embed)
        out["citations"] = citations(answer, [c.get("source", "") for c in chunks], question.source, check_citations)
    else:
        for k in RAG_SCORES:
            out[k] = na("retrieval is off for this approach")
    return out


def quality(scores: dict) -> float | None:
    """Mean of the applicable quality scores (values may be Score or dicts from results.jsonl)."""
    vals = []
    for k in QUALITY_SCORES:
        s = scores.get(k)
        v = s.value if isinstance(s, Score) else (s or {}).get("value") if isinstance(s, dict) else None
        if v is not None:
            vals.append(float(v))
    return sum(vals) / len(vals) if vals else None
