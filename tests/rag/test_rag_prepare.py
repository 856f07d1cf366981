"""The one RAG prepare step: the Knowledge Base's Ask and Compare's RAG approaches build the same messages and fit
a long retrieved context into the model's window the same way (Compare used to send every chunk and fail).
These tests use the server profile (whole chunks) on the embedded model so that the context overflows the window;
the embedded profile's sentence selection is tested in test_rag_prepare_select.py."""
from __future__ import annotations

import pytest

from core.compare import approach as A
from core.errors import ContextOverflow
from core.llm.registry import get_backend
from core.prompts.library import PromptLibrary
from core.rag import answer as rag_answer
from core.rag import api

QUESTION = "Which plans include webhooks, and what does error TW-4020 mean?"
K = 20          # far more context than the embedded model's 2048-token window holds


@pytest.mark.slow
def test_compare_rag_answers_a_long_context_question_the_knowledge_base_answers(kb):
    be = get_backend("embedded")
    retrieval = api.retrieve(QUESTION, "kb", mode="hybrid", k=K)
    lib = PromptLibrary()
    lib.ensure_starter()                                              # what the pages do on first use
    spec, _ = lib.resolve("guardrail")
    full = rag_answer.build_messages(QUESTION, retrieval.chunks, spec)
    assert be.count_tokens(full) + 64 > be.context_window()          # all chunks together do not fit

    # the Knowledge Base's Ask
    _, _, kb_spec, params, kb_retrieval, kb_messages, used = rag_answer.prepare(
        QUESTION, "kb", be, k=K, params={"max_tokens": 64}, profile="server")
    assert kb_spec.name == "guardrail" and 1 <= used < len(kb_retrieval.chunks)

    # Compare's prompt + RAG approach on the same collection, prompt and window
    res = A.resolve(A.ApproachSpec("prompt_rag", prompt="guardrail", rag=A.RetrievalSpec("kb", "hybrid", K),
                                   max_tokens=64, profile="server"), backend_name="embedded")
    assert res.available, res.reason
    run = A.AnswerRun(res, QUESTION, be)
    assert run.prepare() == kb_messages
    assert len(run.retrieval["chunks"]) == used and run.retrieval["dropped"] == len(kb_retrieval.chunks) - used
    assert [c["id"] for c in run.retrieval["chunks"]] == [str(c.id) for c in kb_retrieval.chunks[:used]]
    rec = run.run()                                   # answers instead of raising ContextOverflow
    assert rec["answer"].strip() and rec["prompt_tokens"] + 64 <= be.context_window()


@pytest.mark.slow
def test_prepare_rag_messages_drops_lowest_ranked_chunks_then_refuses(kb):
    be = get_backend("embedded")
    spec = rag_answer.default_prompt()
    chunks = api.retrieve(QUESTION, "kb", k=K).chunks
    rp = rag_answer.prepare_rag_messages(QUESTION, chunks, spec, be, params=spec.gen_params(), profile="server")
    assert rp.chunks == chunks[: len(rp.chunks)] and rp.dropped == len(chunks) - len(rp.chunks)
    assert rp.prompt_tokens + rp.params.max_tokens <= rp.n_ctx
    # one more chunk would not have fitted
    bigger = rag_answer.build_messages(QUESTION, chunks[: len(rp.chunks) + 1], spec)
    assert be.count_tokens(bigger) + rp.params.max_tokens > rp.n_ctx
    # a prompt that cannot fit even without context is refused, not truncated
    huge = spec.gen_params()
    huge.max_tokens = be.context_window()
    with pytest.raises(ContextOverflow):
        rag_answer.prepare_rag_messages(QUESTION, chunks, spec, be, params=huge, profile="server")
