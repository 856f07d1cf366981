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
    chunks_used: int = 0          # chunks that fit the context window (may be fewer than retrieved)
    seconds: float = 0.0

    @property
    def table_version(self) -> int:
        return self.retrieval.table_version

    def to_dict(self) -> dict:
        return {
            "answer": self.text, "citations": self.citations.to_dict(),
            "retrieved": [c.to_dict() for c in self.retrieval.chunks[: self.chunks_used or None]],
            "retrieved_ids": self.retrieval.ids[: self.chunks_used or None],
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

    def __iter__(self):
        return iter(self.stream)

    def result(self) -> AnswerResult:
        res = self.stream.result()
        return AnswerResult(res.text, res.usage, self.retrieval, check_citations(res.text, self.chunks_used),
                            self.prompt, self.backend, self.model, self.messages, self.chunks_used,
                            time.perf_counter() - self.started)


# ---- the prepare step: ONE place that turns retrieved chunks into the messages a model answers from ----------
@dataclass
class RagPrompt:
    """The messages of a RAG answer and what went into them."""
    messages: list[Message]
    chunks: list                  # the retrieved chunks in the prompt, numbered [1]..[n] in rank order
    dropped: int                  # lowest-ranked retrieved chunks left out so the prompt fits the window
    prompt_tokens: int
    n_ctx: int
    params: GenParams


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
    return spec.render(rag_variables(spec, question, variables),
                       context=build_context(chunks) if chunks else NO_PASSAGES)


def prepare_rag_messages(question: str, chunks, spec: PromptSpec, backend, model: str | None = None,
                         params: GenParams | None = None, variables: dict | None = None) -> RagPrompt:
    """THE prepare step of every RAG answer: the Knowledge Base's Ask, Compare's RAG approaches (single question
    and batch) and `python -m core ask` all call this, so a prompt that answers on one page answers on the other.

    Renders `spec` with the numbered context of `chunks` (in rank order) and fits it into the model's context
    window: while prompt + max_tokens does not fit, the lowest-ranked chunk is dropped. Raises ContextOverflow
    when even the prompt without any chunk does not fit. (Context selection for small models is tuned here.)"""
    if not (question or "").strip():
        raise EmptyPrompt("The question is empty: type a question first.")
    params = (params or spec.gen_params()).validate()
    chunks = list(chunks)
    n_ctx = backend.context_window(model, params)
    retrieved = len(chunks)
    while True:
        messages = build_messages(question, chunks, spec, variables)
        used = backend.count_tokens(messages, model)
        if used + params.max_tokens <= n_ctx or not chunks:
            break
        chunks.pop()   # drop the lowest-ranked chunk and try again
    if used + params.max_tokens > n_ctx:
        raise ContextOverflow(used, params.max_tokens, n_ctx, model or "")
    return RagPrompt(messages, chunks, retrieved - len(chunks), used, n_ctx, params)


def prepare(question: str, collection: str, backend=None, model: str | None = None, prompt: PromptSpec | None = None,
            mode: str = "hybrid", k: int = 4, params: GenParams | dict | None = None, version: int | None = None):
    """Retrieve, then `prepare_rag_messages`. Returns (backend, model, spec, params, retrieval, messages,
    chunks_used)."""
    if not (question or "").strip():
        raise EmptyPrompt("The question is empty: type a question first.")
    if backend is None or isinstance(backend, str):
        from core.llm.registry import get_backend
        backend = get_backend(backend)
    spec = prompt or default_prompt()
    if isinstance(params, dict):
        params = GenParams.from_dict({**spec.gen_params().to_dict(), **params})
    params = (params or spec.gen_params()).validate()
    retrieval = retrieve(question, collection, mode=mode, k=k, version=version)
    rp = prepare_rag_messages(question, retrieval.chunks, spec, backend, model, params)
    return backend, model, spec, rp.params, retrieval, rp.messages, len(rp.chunks)


def answer(question: str, collection: str, backend=None, model: str | None = None, prompt: PromptSpec | None = None,
           mode: str = "hybrid", k: int = 4, params: GenParams | dict | None = None, stream: bool = False,
           version: int | None = None):
    """Retrieve k chunks, prompt the model with them numbered, check the citations of the reply.

    stream=False -> AnswerResult. stream=True -> AnswerStream (iterate it / st.write_stream it, then .result())."""
    t0 = time.perf_counter()
    be, model, spec, params, retrieval, messages, used = prepare(question, collection, backend, model, prompt, mode,
                                                                 k, params, version)
    model_id = be.resolve(model)
    chat = be.chat_stream(messages, params, model)
    s = AnswerStream(chat, retrieval, spec.name, be.name, model_id, messages, used, t0)
    return s if stream else s.result()
