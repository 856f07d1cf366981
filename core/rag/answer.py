"""Answer a question from retrieved chunks, with numbered citations checked against what was retrieved."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ContextOverflow, EmptyPrompt, PromptError
from core.llm.base import ChatStream, GenParams, Usage
from core.prompts.spec import PromptSpec
from core.rag.context import CitationCheck, build_context, check_citations
from core.rag.retriever import Retrieval, retrieve

DEFAULT_PROMPT = "guardrail"
FALLBACK_SYSTEM = (
    "You answer questions using only the numbered context passages. After each fact, cite the passage it comes "
    "from in square brackets, like [1] or [2]. If the passages do not contain the answer, say you don't know. "
    "Keep the answer short."
)
FALLBACK_TEMPLATE = "Context:\n{context}\n\nQuestion: {question}"


def default_prompt() -> PromptSpec:
    """The scenario's `guardrail` prompt (sample_docs/prompts/guardrail.yaml), else a built-in cite-your-sources one."""
    from core.config import SAMPLE_DOCS

    path = Path(SAMPLE_DOCS) / "prompts" / f"{DEFAULT_PROMPT}.yaml"
    try:
        import yaml
        spec = PromptSpec.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))
        if "context" not in spec.template:
            spec.template = FALLBACK_TEMPLATE if "question" in spec.variables() else spec.template
        return spec
    except (OSError, PromptError, ValueError, TypeError, AttributeError):
        return PromptSpec(name="rag_cite", system=FALLBACK_SYSTEM, template=FALLBACK_TEMPLATE,
                          params=GenParams(temperature=0.2, max_tokens=220))


def _scenario_values() -> dict[str, str]:
    from core.config import SAMPLE_DOCS
    try:
        import yaml
        data = yaml.safe_load((Path(SAMPLE_DOCS) / "scenario.yaml").read_text(encoding="utf-8")) or {}
        return {k: str(v) for k, v in data.items() if isinstance(v, (str, int, float))}
    except (OSError, ValueError, AttributeError):
        return {}


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


def build_messages(question: str, chunks, spec: PromptSpec) -> list[dict]:
    values = {k: v for k, v in _scenario_values().items()}
    values["question"] = question
    for name in spec.variables():
        values.setdefault(name, "")
    values.pop("context", None)
    return spec.render(values, context=build_context(chunks) if chunks else "(no passages were retrieved)")


def prepare(question: str, collection: str, backend=None, model: str | None = None, prompt: PromptSpec | None = None,
            mode: str = "hybrid", k: int = 4, params: GenParams | dict | None = None, version: int | None = None):
    """Retrieve, render and fit the prompt into the model's context window (dropping the lowest-ranked chunks
    if needed). Returns (backend, model, spec, params, retrieval, messages, chunks_used)."""
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
    chunks = list(retrieval.chunks)
    n_ctx = backend.context_window(model)
    while True:
        messages = build_messages(question, chunks, spec)
        used = backend.count_tokens(messages, model)
        if used + params.max_tokens <= n_ctx or not chunks:
            break
        chunks.pop()   # drop the lowest-ranked chunk and try again
    if used + params.max_tokens > n_ctx:
        raise ContextOverflow(used, params.max_tokens, n_ctx, model or "")
    return backend, model, spec, params, retrieval, messages, len(chunks)


def answer(question: str, collection: str, backend=None, model: str | None = None, prompt: PromptSpec | None = None,
           mode: str = "hybrid", k: int = 4, params: GenParams | dict | None = None, stream: bool = False,
           version: int | None = None):
    """Retrieve k chunks, prompt the model with them numbered, check the citations of the reply.

    stream=False -> AnswerResult. stream=True -> AnswerStream (iterate it / st.write_stream it, then .result())."""
    t0 = time.perf_counter()
    be, model, spec, params, retrieval, messages, used = prepare(question, collection, backend, model, prompt, mode,
                                                                 k, params, version)
    model_id = model or (be.default_model() if hasattr(be, "default_model") else "")
    chat = be.chat_stream(messages, params, model)
    s = AnswerStream(chat, retrieval, spec.name, be.name, model_id, messages, used, t0)
    return s if stream else s.result()
