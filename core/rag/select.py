"""Context selection for a small context window: which sentences of the retrieved chunks go into the prompt.

A 135M model does not read four 200-token chunks: it copies from the first lines it sees, or loops. Cutting each
chunk to its first N words keeps the wrong part as often as the right one (the evidence sentence of the scenario's
fact questions is often the third sentence of the second chunk). `select_context` keeps instead the sentences that
best match the question - MiniLM cosine (the collection's own embedder) plus an IDF-weighted lexical overlap, which
is what catches codes and numbers such as TW-4020 - under a token budget, each with the number of its source, so
the answer can still cite it and the citation check still maps [n] to a chunk.

    snippets = select_context(question, retrieval.chunks, budget_tokens=220, count_tokens=counter)
    context  = render_context(snippets)          # "[1] (sms-reminders.md) SMS credits: ...\n\n[2] (...) ..."
    chunks   = [s.chunk for s in snippets]       # chunk [n] of the prompt = chunks[n-1] (for citations/scores)

`RAG_PROFILES` holds the measured defaults per kind of backend (bench/small_model_rag.py: the embedded 135M
model gets a few selected sentences; a server model reads whole chunks). `extractive_answer` is the model-free
"retrieval only" reference answer: the best-matching sentences themselves, cited.
"""
from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from core.errors import InvalidParams

METHODS = ("sentences", "first_words", "chunks")
LEXICAL_WEIGHT = 0.5          # combined score = cosine(question, sentence) + LEXICAL_WEIGHT * idf-weighted overlap
NEWEST_BONUS = 0.15           # added to sentences of a source the scenario marks as the newest word (changelog)
MIN_RELATIVE = 0.55           # a sentence is only kept when its score >= this share of the best sentence's

# ---------------------------------------------------------------------------------------------------------------
# Measured defaults (bench/small_model_rag.py, README "RAG on a small model"). `prompt` names a prompt of the
# library; the prepare step uses the profile of the backend that answers.


@dataclass(frozen=True)
class RagProfile:
    k: int                    # chunks retrieved
    method: str               # sentences | first_words | chunks
    budget_tokens: int        # tokens of the whole numbered context
    max_sentences: int        # sentences kept at most (method "sentences")
    first_words: int = 70     # words per chunk (method "first_words")
    prompt: str = "guardrail"
    temperature: float = 0.0
    repeat_penalty: float | None = None
    max_tokens: int = 160

    def to_dict(self) -> dict:
        return asdict(self)


RAG_PROFILES: dict[str, RagProfile] = {
    # SmolLM2-135M in llama.cpp: the four best-matching sentences of k=4 chunks (<= 160 tokens), the guardrail
    # prompt, greedy decoding; through the prepare step keyword share 0.47 vs 0.31 with whole chunks on the 31 fact
    # questions (README "RAG on a small model", bench/small_model_rag.py product_* configs).
    "embedded": RagProfile(k=4, method="sentences", budget_tokens=160, max_sentences=4, prompt="guardrail",
                           temperature=0.0, repeat_penalty=None, max_tokens=160),
    # Ollama / OpenAI-compatible servers run bigger models that read long contexts well: whole chunks.
    "server": RagProfile(k=4, method="chunks", budget_tokens=1500, max_sentences=40, prompt="guardrail",
                         temperature=0.0, repeat_penalty=None, max_tokens=300),
}


def profile_key(backend_name: str | None) -> str:
    """'embedded' for the in-process model, 'server' for every other backend (the key of RAG_PROFILES)."""
    return "embedded" if (backend_name or "embedded") == "embedded" else "server"


def profile_for(backend_name: str | None) -> RagProfile:
    """The embedded profile for the in-process model, the server profile for every other backend."""
    return RAG_PROFILES[profile_key(backend_name)]


# ---------------------------------------------------------------------------------------------------------------
@dataclass
class SourcedSnippet:
    """The part of one retrieved chunk that goes into the prompt, as source [n]."""
    n: int                            # the number the prompt shows and the answer cites ([n]), 1-based
    rank: int                         # the chunk's rank in the retrieval (1-based)
    source: str
    units: list[tuple[str, str]]      # kept (heading, sentence) pairs, in document order
    score: float                      # best combined score of its sentences (order of the snippets)
    chunk: object = field(default=None, repr=False)   # the RetrievedChunk (or dict) it comes from

    @property
    def sentences(self) -> list[str]:
        return [s for _, s in self.units]

    @property
    def text(self) -> str:
        """Sentences in document order; a heading is written once before the sentences under it."""
        parts, last = [], None
        for heading, sent in self.units:
            if heading and heading != last and heading.lower() not in sent.lower():
                parts.append(f"{heading}: {sent}")
            else:
                parts.append(sent)
            last = heading
        return " ".join(parts)

    def render(self) -> str:
        return f"[{self.n}] ({self.source}) {self.text}"

    def to_dict(self) -> dict:
        return {"n": self.n, "rank": self.rank, "source": self.source, "sentences": self.sentences,
                "score": self.score, "text": self.text}


def render_context(snippets: Sequence[SourcedSnippet]) -> str:
    """The numbered context block: '[1] (source) text' per snippet, blank line between."""
    return "\n\n".join(s.render() for s in snippets)


# ---- sentences -------------------------------------------------------------------------------------------------
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9€$\"'(\[])")


def _is_title(line: str) -> bool:
    """A short line without end punctuation that is not a table row: a heading such as 'FIRST RESPONSE TARGETS'."""
    return (0 < len(line.split()) <= 8 and not re.search(r"[.!?:;,]$", line) and "  " not in line
            and not _BULLET.match(line))


def _unwrap(text: str) -> list[str]:
    """Lines -> logical lines: PDF line wraps are joined (a line that does not end a sentence followed by one that
    starts in lower case, or a long prose line cut mid-sentence); bullets, titles and blank lines start a line."""
    out: list[str] = []
    for raw in (text or "").replace("\r", "").split("\n"):
        line = raw.strip()
        if not line:
            out.append("")
            continue
        prev = out[-1] if out else ""
        wrapped = prev and not _BULLET.match(line) and not re.search(r"[.!?:]$", prev) and (
            line[:1].islower() or line[:1] in "(€$%,;"
            or (len(prev) >= 60 and "  " not in prev and not _is_title(prev)))
        if wrapped:
            out[-1] = prev + " " + line
        else:
            out.append(line)
    return out


def sentence_units(text: str, heading: str = "", min_words: int = 3) -> list[tuple[str, str]]:
    """(local heading, sentence) for each sentence of a chunk: a title line inside the chunk (a table caption such
    as 'FIRST RESPONSE TARGETS') becomes the heading of the sentences under it; before any, `heading`."""
    units: list[tuple[str, str]] = []
    local = heading
    for line in _unwrap(text):
        if not line:
            continue
        if _is_title(line):
            local = line
            continue
        line = re.sub(r"\s{2,}", " ", _BULLET.sub("", line)).strip()
        line = re.sub(r"^\*\*(.+?)\*\*", r"\1", line)
        for s in _SENT_END.split(line):
            s = s.strip()
            if len(re.findall(r"\w+", s)) >= min_words:
                units.append((local, s))
    return units


def split_sentences(text: str, min_words: int = 3) -> list[str]:
    """A chunk's sentences, bullet markers removed; fragments under `min_words` words and title lines dropped."""
    return [s for _, s in sentence_units(text, "", min_words)]


def chunk_heading(chunk) -> str:
    """The chunk's section heading (structure chunker), else its first line when that line is a short title."""
    h = str(_get(chunk, "heading") or "").strip()
    if h:
        return h if len(h) <= 80 else ""
    first = (str(_get(chunk, "text") or "").strip().split("\n", 1) or [""])[0].strip()
    if first and len(first.split()) <= 8 and not re.search(r"[.!?]$", first):
        return first
    return ""


def _get(chunk, name: str, default=None):
    return chunk.get(name, default) if isinstance(chunk, dict) else getattr(chunk, name, default)


# ---- lexical overlap -------------------------------------------------------------------------------------------
_STOP = set("""a an the and or but if then of to in on at by for with from as is are was were be been being do does did
done have has had having it its this that these those there here what which who whom whose when where why how can
could should would will shall may might must i you he she we they me my your our their them us am not no yes so
than too very just also about into over under up down out any all each some such only own same more most other
tidewave please need want get got""".split())
_WORD = re.compile(r"[a-z0-9]+(?:[-'.][a-z0-9]+)*|€|\$|%")


def terms(text: str) -> list[str]:
    """Content words of a text: lower case, unicode-normalised, stop words out, plural 's' stripped; codes such as
    tw-4020 and numbers kept whole."""
    t = unicodedata.normalize("NFKC", text or "").lower()
    out = []
    for w in _WORD.findall(t):
        if w in _STOP or w in "€$%":
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss") and not w[-2].isdigit():
            w = w[:-1]
        out.append(w)
    return out


def lexical_scores(question: str, sentences: Sequence[str]) -> list[float]:
    """Share of the question's content words each sentence contains, IDF-weighted over these sentences. Words no
    sentence contains carry no information and are left out; codes and numbers (a digit inside) count double."""
    sets = [set(terms(s)) for s in sentences]
    q = {w for w in terms(question) if any(w in s for s in sets)}
    if not q:
        return [0.0] * len(sentences)
    n = len(sets)
    idf = {w: (math.log(1 + n / sum(w in s for s in sets)) + 0.1) * (2.0 if any(ch.isdigit() for ch in w) else 1.0)
           for w in q}
    total = sum(idf.values())
    return [sum(idf[w] for w in q & s) / total for s in sets]


# ---- embeddings (cached: the same chunks come back for many questions) ------------------------------------------
class _EmbedCache:
    def __init__(self, max_items: int = 50_000):
        self.max_items = max_items
        self.data: OrderedDict[str, object] = OrderedDict()
        self.lock = threading.Lock()

    def encode(self, embed: Callable, texts: list[str]):
        import numpy as np

        with self.lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self.data))
        if missing:
            vecs = np.asarray(embed(missing), dtype="float32")
            with self.lock:
                for t, v in zip(missing, vecs):
                    self.data[t] = v
                while len(self.data) > self.max_items:
                    self.data.popitem(last=False)
                got = {t: self.data.get(t) for t in texts}
        else:
            with self.lock:
                got = {t: self.data[t] for t in texts}
        if any(v is None for v in got.values()):          # evicted meanwhile: embed this call directly
            return np.asarray(embed(texts), dtype="float32")
        return np.stack([got[t] for t in texts])


_CACHE = _EmbedCache()


def default_embed() -> Callable:
    """The collection's packaged MiniLM (L2-normalised vectors)."""
    from core.rag.embedders import get_embedder

    return get_embedder().encode


# ---- scoring -----------------------------------------------------------------------------------------------------
NEXT_SPILL = 0.7              # a sentence also scores this share of the sentence before it (the fact often follows)


@dataclass
class _Cand:
    chunk_i: int
    sent_i: int
    heading: str
    text: str
    score: float = 0.0
    own: float = 0.0


def _newest_sources() -> tuple[str, ...]:
    """Sources the scenario marks as the newest word (scenario.yaml `newest_sources`), e.g. the changelog."""
    try:
        import yaml

        from core.config import SAMPLE_DOCS

        raw = yaml.safe_load((SAMPLE_DOCS / "scenario.yaml").read_text(encoding="utf-8")) or {}
        vals = raw.get("newest_sources") or []
        return tuple(str(v).lower() for v in (vals if isinstance(vals, list) else [vals]))
    except Exception:  # noqa: BLE001 - no scenario, no preference
        return ()


def score_sentences(question: str, chunks: Sequence, *, embed: Callable | None = None,
                    use_embedding: bool = True, newest: Sequence[str] | None = None,
                    exclude: Callable[[str], bool] | None = None) -> list[_Cand]:
    """Every sentence of every chunk with its score: cosine(question, heading + sentence) + LEXICAL_WEIGHT x lexical
    overlap + NEWEST_BONUS for the scenario's newest sources; then each sentence gets at least NEXT_SPILL x the
    score of the sentence before it in its chunk (the answer often follows the sentence that names the topic)."""
    cands: list[_Cand] = []
    newest = tuple(s.lower() for s in (_newest_sources() if newest is None else newest))
    for ci, c in enumerate(chunks):
        for si, (heading, sent) in enumerate(sentence_units(str(_get(c, "text") or ""), chunk_heading(c))):
            if exclude is not None and exclude(sent):
                continue
            cands.append(_Cand(ci, si, heading, sent))
    if not cands:
        return cands
    keyed = [f"{c.heading}: {c.text}" if c.heading and c.heading.lower() not in c.text.lower() else c.text
             for c in cands]
    lex = lexical_scores(question, keyed)
    if use_embedding:
        vecs = _CACHE.encode(embed or default_embed(), [question] + keyed)
        cos = (vecs[1:] @ vecs[0]).tolist()
    else:
        cos = [0.0] * len(cands)
    for c, lx, cs in zip(cands, lex, cos):
        src = str(_get(chunks[c.chunk_i], "source") or "").lower()
        bonus = NEWEST_BONUS if newest and any(n in src for n in newest) else 0.0
        c.own = c.score = float(cs) + LEXICAL_WEIGHT * lx + bonus
    for prev, c in zip(cands, cands[1:]):
        if prev.chunk_i == c.chunk_i and prev.sent_i == c.sent_i - 1:
            c.score = max(c.own, NEXT_SPILL * prev.own)
    return cands


def text_token_counter(backend, model: str | None = None) -> Callable[[str], int]:
    """count_tokens(text) in the backend's own tokens (the text as a user message minus an empty message's cost)."""
    empty = backend.count_tokens([{"role": "user", "content": ""}], model)
    cache: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in cache:
            if len(cache) > 20_000:
                cache.clear()
            cache[text] = max(0, backend.count_tokens([{"role": "user", "content": text}], model) - empty)
        return cache[text]
    return count


def approx_tokens(text: str) -> int:
    """~3.5 characters per token: the estimate servers without a tokenizer endpoint get (core.llm)."""
    return max(1, math.ceil(len(text or "") / 3.5))


# ---- selection -----------------------------------------------------------------------------------------------------
def select_context(question: str, chunks: Sequence, budget_tokens: int, count_tokens: Callable[[str], int] | None = None,
                   *, method: str = "sentences", max_sentences: int = 6, first_words: int = 70,
                   embed: Callable | None = None, use_embedding: bool = True, newest: Sequence[str] | None = None,
                   exclude: Callable[[str], bool] | None = None) -> list[SourcedSnippet]:
    """The snippets of `chunks` (retrieved, in rank order) that go into the prompt, within `budget_tokens` of the
    numbered context (`count_tokens(text)`; default ~3.5 characters per token).

    method "sentences": the best-scoring sentences (at most `max_sentences`, none below MIN_RELATIVE of the best),
        grouped per chunk; snippets are numbered best first, sentences keep their document order.
    method "first_words": the first `first_words` words of each chunk, in rank order (the naive cut).
    method "chunks": whole chunks in rank order, the lowest-ranked dropped until the context fits.
    `exclude(sentence) -> True` leaves a sentence out (RAFT uses it to keep evaluation evidence out of training)."""
    if method not in METHODS:
        raise InvalidParams(f"Unknown context selection method {method!r}: use one of {', '.join(METHODS)}.")
    if not isinstance(budget_tokens, int) or budget_tokens < 1:
        raise InvalidParams(f"The context budget must be a whole number of tokens >= 1 (got {budget_tokens!r}).")
    count = count_tokens or approx_tokens
    chunks = list(chunks)
    if not chunks:
        return []
    if method == "sentences":
        return _select_sentences(question, chunks, budget_tokens, count, max_sentences, embed, use_embedding,
                                 newest, exclude)
    out: list[SourcedSnippet] = []
    for i, c in enumerate(chunks):
        if method == "chunks":
            text = " ".join(str(_get(c, "text") or "").split())
            units = [("", text)] if text and (exclude is None or not exclude(text)) else []
        else:
            units, words = [], 0
            text = " ".join(str(_get(c, "text") or "").split())
            for sent in _SENT_END.split(text):
                if exclude is not None and exclude(sent):
                    continue
                w = sent.split()
                if words + len(w) > first_words:
                    if first_words - words >= 3:
                        units.append(("", " ".join(w[: first_words - words]) + " …"))
                    break
                units.append(("", sent))
                words += len(w)
        if not units:
            continue
        snip = SourcedSnippet(len(out) + 1, i + 1, str(_get(c, "source") or ""), units, 0.0, c)
        if count(render_context(out + [snip])) > budget_tokens:
            break
        out.append(snip)
    return out


def _select_sentences(question, chunks, budget, count, max_sentences, embed, use_embedding, newest, exclude):
    cands = score_sentences(question, chunks, embed=embed, use_embedding=use_embedding, newest=newest,
                            exclude=exclude)
    if not cands:
        return []
    cands.sort(key=lambda c: (-c.score, c.chunk_i, c.sent_i))
    top = cands[0]
    if count(render_context(_group(chunks, [top]))) > budget:
        return _cut_to_fit(chunks, top, budget, count)     # the best sentence alone is over budget: cut it
    best = top.score
    chosen: list[_Cand] = []
    keys: set[tuple[int, int]] = set()
    for c in cands:
        if len(chosen) >= max_sentences or (best > 0 and c.score < MIN_RELATIVE * best):
            break
        if c.score > c.own and (c.chunk_i, c.sent_i - 1) not in keys:
            continue             # ranked up only as the follow-up of its sentence, which did not make it
        if count(render_context(_group(chunks, chosen + [c]))) <= budget:
            chosen.append(c)
            keys.add((c.chunk_i, c.sent_i))
    return _group(chunks, chosen)


def _cut_to_fit(chunks, c: _Cand, budget: int, count) -> list[SourcedSnippet]:
    words = c.text.split()
    while len(words) > 3:
        words = words[: max(3, int(len(words) * 0.8))]
        trial = _group(chunks, [_Cand(c.chunk_i, c.sent_i, c.heading, " ".join(words) + " …", c.score, c.own)])
        if count(render_context(trial)) <= budget:
            return trial
    return []


def _group(chunks, chosen: list[_Cand]) -> list[SourcedSnippet]:
    by_chunk: dict[int, list[_Cand]] = {}
    for c in chosen:
        by_chunk.setdefault(c.chunk_i, []).append(c)
    order = sorted(by_chunk, key=lambda ci: (-max(c.score for c in by_chunk[ci]), ci))
    out = []
    for n, ci in enumerate(order, start=1):
        cs = sorted(by_chunk[ci], key=lambda c: c.sent_i)
        ch = chunks[ci]
        out.append(SourcedSnippet(n, ci + 1, str(_get(ch, "source") or ""), [(c.heading, c.text) for c in cs],
                                  max(c.score for c in cs), ch))
    return out


def _norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", text or "").lower().replace("*", "")
    return re.sub(r"\s+", " ", t).strip().rstrip(".")


def contains_evidence(evidence: str, snippets: Sequence[SourcedSnippet] | str) -> bool:
    """True when the evidence sentence (whitespace/case-normalised) is inside the selected context."""
    ctx = snippets if isinstance(snippets, str) else render_context(snippets)
    ev = _norm(evidence)
    return bool(ev) and ev in re.sub(r"\s+", " ", _norm(ctx))


# ---- "retrieval only": the model-free reference answer --------------------------------------------------------------
@dataclass
class ExtractiveAnswer:
    text: str                          # the best sentences, each followed by [n] (n = the chunk's retrieval rank)
    cited: list[int]
    sentences: list[dict]              # {n, source, text, score}

    def to_dict(self) -> dict:
        return asdict(self)


def extractive_answer(question: str, chunks: Sequence, *, max_sentences: int = 2, embed: Callable | None = None,
                      use_embedding: bool = True, newest: Sequence[str] | None = None) -> ExtractiveAnswer:
    """What retrieval alone finds: the `max_sentences` best-matching sentences of the retrieved chunks, in score
    order, each cited with its chunk's number in the retrieval ([1] = top chunk). No model is involved."""
    chunks = list(chunks)
    cands = score_sentences(question, chunks, embed=embed, use_embedding=use_embedding, newest=newest)
    if not cands:
        return ExtractiveAnswer("The retrieved passages contain no sentence to quote.", [], [])
    cands.sort(key=lambda c: (-c.score, c.chunk_i, c.sent_i))
    best = cands[0].score
    picked: list[_Cand] = []
    for c in cands:
        if len(picked) >= max_sentences or c.score < MIN_RELATIVE * best:
            break
        if c.score > c.own and not any(p.chunk_i == c.chunk_i and p.sent_i == c.sent_i - 1 for p in picked):
            continue             # only as the follow-up of its own sentence
        picked.append(c)
    parts, cited, rows = [], [], []
    last_heading = None
    for c in picked:
        n = c.chunk_i + 1
        fresh = c.heading and c.heading != last_heading and c.heading.lower() not in c.text.lower()
        text = f"{c.heading}: {c.text}" if fresh else c.text
        last_heading = c.heading
        parts.append(f"{text} [{n}]")
        if n not in cited:
            cited.append(n)
        rows.append({"n": n, "source": str(_get(chunks[c.chunk_i], "source") or ""), "text": c.text,
                     "score": round(c.score, 4)})
    return ExtractiveAnswer(" ".join(parts), cited, rows)


# ---- the one call for the RAG prepare step ---------------------------------------------------------------------------
@dataclass
class SelectedContext:
    text: str                          # the numbered context for {context}
    chunks: list                       # chunk [n] of the prompt = chunks[n-1] (citation check, scores, display)
    snippets: list[SourcedSnippet]
    profile: RagProfile


def prepare_context(question: str, chunks: Sequence, backend, model: str | None = None,
                    profile: RagProfile | None = None, exclude: Callable[[str], bool] | None = None) -> SelectedContext:
    """Select the context for `backend` with its profile (RAG_PROFILES), counting in the backend's own tokens:

        sel = prepare_context(question, retrieval.chunks, backend, model)
        messages = spec.render(values, context=sel.text)      # and cite/score against sel.chunks
    """
    prof = profile or profile_for(getattr(backend, "name", None))
    if prof.method == "chunks":
        snippets = select_context(question, chunks, prof.budget_tokens, approx_tokens, method="chunks",
                                  exclude=exclude)
    else:
        snippets = select_context(question, chunks, prof.budget_tokens, text_token_counter(backend, model),
                                  method=prof.method, max_sentences=prof.max_sentences, first_words=prof.first_words,
                                  exclude=exclude)
    return SelectedContext(render_context(snippets), [s.chunk for s in snippets], snippets, prof)


def apply_decoding(params, profile: RagProfile):
    """The profile's decoding for a RAG answer when the prompt does not set it: repetition penalty (temperature and
    max_tokens stay the prompt's / approach's). Returns a new GenParams."""
    from core.llm.base import GenParams

    p = GenParams.from_dict(params.to_dict())
    if p.repeat_penalty is None and profile.repeat_penalty is not None:
        p.repeat_penalty = profile.repeat_penalty
    return p
