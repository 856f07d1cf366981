"""Answer a question from retrieved chunks, with numbered citations checked against what was retrieved."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.citations import CitationCheck, check_citations
from core.errors import ContextOverflow, EmptyPrompt, WorkbenchError
from core.llm.base import ChatStream, GenParams, Message, Usage
from core.prompts.spec import PromptSpec
from core.rag.context import build_context
from core.rag.retriever import Retrieval, retrieve
from core.rag.select import RAG_PROFILES, RagProfile, SourcedSnippet, profile_key, render_context, select_context
from core.rag.select import approx_tokens, text_token_counter

DEFAULT_PROMPT = "guardrail"
NO_PASSAGES = "(no passages were retrieved)"
FALLBACK_SYSTEM = (
    "You answer questions using only the numbered context passages. After each fact, cite the passage it comes "
    "from in square brackets, like [1] or [2]. If the passages do not contain the answer, say you don't know. "
    "Keep the answer short."
)
FALLBACK_TEMPLATE = "Context:\n{context}\n\nQuestion: {question}"


def default_prompt() -> PromptSpec:
    """The prompt library's newest `guardrail` prompt (the library starts as a copy of sample_docs/prompts), the
    same one Compare's RAG columns resolve; a built-in cite-your-sources prompt if the library has none."""
    from core.prompts.library import PromptLibrary

    try:
        lib = PromptLibrary()
        if not lib.names():
            lib.ensure_starter()
        return lib.resolve(DEFAULT_PROMPT)[0]
    except (WorkbenchError, OSError):
        return PromptSpec(name="rag_cite", system=FALLBACK_SYSTEM, template=FALLBACK_TEMPLATE,
                          params=GenParams(temperature=0.2, max_tokens=220))


@dataclass
class AnswerResult:
    text: str
    usage: Usage | None
    retrieval: Retrieval
    citations: CitationCheck
    prompt: str = ""
    backend: str = ""
    model: str = ""
    messages: list = field(default_factory=list)
    chunks_used: int = 0          # sources [1]..[n] in the prompt (may be fewer than retrieved)
    seconds: float = 0.0
    sources: list = field(default_factory=list)     # chunk [n] of the prompt = sources[n-1] (RetrievedChunk)
    snippets: list = field(default_factory=list)    # what of each source went into the prompt (SourcedSnippet)
    profile: dict = field(default_factory=dict)     # the RAG profile used: name, k, method, budget_tokens, ...
    context_selected: bool = False                  # True: selected sentences, False: whole chunks

    @property
    def table_version(self) -> int:
        return self.retrieval.table_version

    @property
    def prompt_chunks(self) -> list:
        """The chunks numbered [1]..[n] in the prompt, in that order (what the citations point to)."""
        return list(self.sources) if self.sources else list(self.retrieval.chunks[: self.chunks_used])

    def to_dict(self) -> dict:
        chunks = self.prompt_chunks
        return {
            "answer": self.text, "citations": self.citations.to_dict(),
            "retrieved": [c.to_dict() for c in chunks],
            "retrieved_ids": [c.id for c in chunks],
            "in_prompt": [s.to_dict() for s in self.snippets],
            "rag_profile": self.profile, "context_selected": self.context_selected,
            "collection": self.retrieval.collection, "table_version": self.retrieval.table_version,
            "table_name": self.retrieval.table_name, "mode": self.retrieval.mode, "prompt": self.prompt,
            "backend": self.backend, "model": self.model,
            "usage": self.usage.to_dict() if self.usage else None, "seconds": self.seconds,
        }


@dataclass
class AnswerStream:
    """Iterate `stream` (or pass it to st.write_stream); then `result()` gives the AnswerResult."""
    stream: ChatStream
    retrieval: Retrieval
    prompt: str
    backend: str
    model: str
    messages: list
    chunks_used: int
    started: float
    rag: "RagPrompt | None" = None

    def __iter__(self):
        return iter(self.stream)

    def result(self) -> AnswerResult:
        res = self.stream.result()
        rp = self.rag
        return AnswerResult(res.text, res.usage, self.retrieval, check_citations(res.text, self.chunks_used),
                            self.prompt, self.backend, self.model, self.messages, self.chunks_used,
                            time.perf_counter() - self.started,
                            sources=list(rp.chunks) if rp else [], snippets=list(rp.snippets) if rp else [],
                            profile=dict(rp.profile) if rp else {}, context_selected=bool(rp and rp.selected))


# ---- the prepare step: ONE place that turns retrieved chunks into the messages a model answers from ----------
@dataclass
class RagPrompt:
    """The messages of a RAG answer and what went into them."""
    messages: list[Message]
    chunks: list                  # the chunks in the prompt: chunk [n] = chunks[n-1] (rank order for whole chunks,
                                  # best-matching source first for selected sentences)
    dropped: int                  # retrieved chunks not in the prompt (no sentence selected, or cut to fit the window)
    prompt_tokens: int
    n_ctx: int
    params: GenParams
    snippets: list[SourcedSnippet] = field(default_factory=list)   # what of chunk [n] is in the prompt
    profile: dict = field(default_factory=dict)     # name, k, method, budget_tokens, max_sentences (recorded)
    selected: bool = False                          # True: selected sentences; False: whole chunks

    @property
    def context(self) -> str:
        return render_context(self.snippets)


def resolve_profile(backend=None, profile: "RagProfile | str | dict | None" = None) -> tuple[str, RagProfile]:
    """(name, profile): the given profile (a RagProfile, a name of RAG_PROFILES or a dict of its fields), else the
    measured default of the backend that answers (core.rag.select.profile_for: embedded -> selected sentences,
    any server backend -> whole chunks)."""
    if isinstance(profile, RagProfile):
        return "custom", profile
    if isinstance(profile, dict):
        d = dict(profile)
        name = str(d.pop("name", "custom") or "custom")
        base = RAG_PROFILES.get(name)
        fields = {k: v for k, v in d.items() if k in RagProfile.__dataclass_fields__}
        try:
            return name, RagProfile(**{**(base.to_dict() if base else {}), **fields})
        except TypeError as exc:
            from core.errors import InvalidParams
            raise InvalidParams(f"RAG profile {profile!r} is incomplete: {exc}") from exc
    if isinstance(profile, str) and profile.strip():
        name = profile.strip().lower()
        if name not in RAG_PROFILES:
            from core.errors import InvalidParams
            raise InvalidParams(f"Unknown RAG profile {profile!r}: use one of {', '.join(RAG_PROFILES)}.")
        return name, RAG_PROFILES[name]
    name = profile_key(getattr(backend, "name", None))
    return name, RAG_PROFILES[name]


def profile_record(name: str, prof: RagProfile, k: int | None = None) -> dict:
    """What a result records about the context it was given (the report and the page show it)."""
    return {"name": name, "k": int(k if k is not None else prof.k), "method": prof.method,
            "budget_tokens": prof.budget_tokens if prof.method != "chunks" else None,
            "max_sentences": prof.max_sentences if prof.method == "sentences" else None}


def rag_variables(spec: PromptSpec, question: str, variables: dict | None = None) -> dict[str, str]:
    """Template values: the scenario's ({product}, ...) unless `variables` are given (a comparison pins them),
    then the question; any other {variable} of the template is left empty. {context} comes from the chunks."""
    if variables is None:
        from core.scenario import load_scenario
        base = load_scenario().prompt_values()
    else:
        base = {k: str(v) for k, v in variables.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    values = dict(base)
    values["question"] = question
    for name in spec.variables():
        values.setdefault(name, "")
    values.pop("context", None)
    return values


def build_messages(question: str, chunks, spec: PromptSpec, variables: dict | None = None) -> list[Message]:
    """Messages with whole `chunks` numbered in rank order (the server profile's context)."""
    return spec.render(rag_variables(spec, question, variables),
                       context=build_context(chunks) if chunks else NO_PASSAGES)


def _render(question: str, snippets: list[SourcedSnippet], spec: PromptSpec, variables: dict | None):
    return spec.render(rag_variables(spec, question, variables),
                       context=render_context(snippets) if snippets else NO_PASSAGES)


def prepare_rag_messages(question: str, chunks, spec: PromptSpec, backend, model: str | None = None,
                         params: GenParams | None = None, variables: dict | None = None,
                         profile: RagProfile | str | dict | None = None) -> RagPrompt:
    """THE prepare step of every RAG answer: the Knowledge Base's Ask, Compare's RAG approaches (single question
    and batch) and `python -m core ask` all call this, so a prompt that answers on one page answers on the other.

    The context follows the RAG profile of the backend that answers (`profile` overrides it; core.rag.select):
    - "embedded" (method sentences): the sentences of `chunks` that best match the question, under the profile's
      token budget (counted in the backend's own tokens), grouped per chunk and numbered best source first;
    - "server" (method chunks): whole chunks in rank order.
    Either way the context is `render_context`'s '[n] (source) text' blocks and `RagPrompt.chunks[n-1]` is the
    chunk behind [n], so the citation check and the scores look at what was really in the prompt. Then the prompt
    is fitted into the model's window: while prompt + max_tokens does not fit, the last source is dropped. Raises
    ContextOverflow when even the prompt without any context does not fit."""
    if not (question or "").strip():
        raise EmptyPrompt("The question is empty: type a question first.")
    params = (params or spec.gen_params()).validate()
    chunks = list(chunks)
    name, prof = resolve_profile(backend, profile)
    n_ctx = backend.context_window(model, params)
    retrieved = len(chunks)
    if prof.method == "chunks":
        # whole chunks; no token budget beyond the model's window (a server model reads long contexts)
        snippets = select_context(question, chunks, 10 ** 9, approx_tokens, method="chunks")
    else:
        snippets = select_context(question, chunks, prof.budget_tokens, text_token_counter(backend, model),
                                  method=prof.method, max_sentences=prof.max_sentences,
                                  first_words=prof.first_words)
    while True:
        messages = _render(question, snippets, spec, variables)
        used = backend.count_tokens(messages, model)
        if used + params.max_tokens <= n_ctx or not snippets:
            break
        snippets.pop()   # drop the last source (lowest ranked / lowest scoring) and try again
    if used + params.max_tokens > n_ctx:
        raise ContextOverflow(used, params.max_tokens, n_ctx, model or "")
    return RagPrompt(messages, [sn.chunk for sn in snippets], retrieved - len(snippets), used, n_ctx, params,
                     snippets, profile_record(name, prof, retrieved), prof.method != "chunks")


@dataclass
class Prepared:
    """What `prepare` returns. Unpacks as the 7-tuple (backend, model, spec, params, retrieval, messages,
    chunks_used) older callers use; `.rag` is the RagPrompt (sources, snippets, profile)."""
    backend: object
    model: str | None
    spec: PromptSpec
    params: GenParams
    retrieval: Retrieval
    rag: RagPrompt

    def __iter__(self):
        return iter((self.backend, self.model, self.spec, self.params, self.retrieval, self.rag.messages,
                     len(self.rag.chunks)))


def prepare(question: str, collection: str, backend=None, model: str | None = None, prompt: PromptSpec | None = None,
            mode: str = "hybrid", k: int | None = None, params: GenParams | dict | None = None,
            version: int | None = None, profile: RagProfile | str | dict | None = None) -> Prepared:
    """Retrieve (k chunks; default the backend's RAG profile's k), then `prepare_rag_messages` with that profile."""
    if not (question or "").strip():
        raise EmptyPrompt("The question is empty: type a question first.")
    if backend is None or isinstance(backend, str):
        from core.llm.registry import get_backend
        backend = get_backend(backend)
    spec = prompt or default_prompt()
    if isinstance(params, dict):
        params = GenParams.from_dict({**spec.gen_params().to_dict(), **params})
    params = (params or spec.gen_params()).validate()
    name, prof = resolve_profile(backend, profile)
    retrieval = retrieve(question, collection, mode=mode, k=int(k) if k else prof.k, version=version)
    rp = prepare_rag_messages(question, retrieval.chunks, spec, backend, model, params,
                              profile={"name": name, **prof.to_dict()} if name != "custom" else prof)
    return Prepared(backend, model, spec, rp.params, retrieval, rp)


def answer(question: str, collection: str, backend=None, model: str | None = None, prompt: PromptSpec | None = None,
           mode: str = "hybrid", k: int | None = None, params: GenParams | dict | None = None, stream: bool = False,
           version: int | None = None, profile: RagProfile | str | dict | None = None):
    """Retrieve k chunks, prompt the model with the context the backend's RAG profile selects from them (numbered
    sources), check the citations of the reply.

    stream=False -> AnswerResult. stream=True -> AnswerStream (iterate it / st.write_stream it, then .result())."""
    t0 = time.perf_counter()
    p = prepare(question, collection, backend, model, prompt, mode, k, params, version, profile)
    be = p.backend
    model_id = be.resolve(p.model)
    chat = be.chat_stream(p.rag.messages, p.params, p.model)
    s = AnswerStream(chat, p.retrieval, p.spec.name, be.name, model_id, p.rag.messages, len(p.rag.chunks), t0,
                     p.rag)
    return s if stream else s.result()
