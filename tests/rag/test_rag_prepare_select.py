"""The one RAG prepare step uses context selection (issue 13): the embedded model's profile puts the best-matching
sentences of the retrieved chunks into the prompt, numbered so [n] still maps to a chunk; a server backend's profile
sends whole chunks. The Knowledge Base's Ask, `core ask` and Compare's RAG columns get the same prompt, the result
records the profile, and Compare scores against what was really in the prompt. Also the model-free retrieval_only
reference column."""
from __future__ import annotations

import os

import pytest

from core.compare import approach as A
from core.compare import scores as S
from core.rag import answer as rag_answer
from core.rag import api
from core.rag.context import build_context, check_citations
from core.rag.select import RAG_PROFILES, contains_evidence
from core.scenario import scenario_questions

SMS = "How much does an SMS top-up pack cost, and how many credits are in it?"


def _question(text: str):
    return next(q for q in scenario_questions() if q.question == text)


@pytest.fixture(scope="module")
def be():
    from core.llm.registry import get_backend

    return get_backend("embedded")


@pytest.fixture(scope="module")
def sample(tmp_path_factory, embedder):
    """A fresh data folder with the sample collection `support` (all of sample_docs/knowledge), as a presenter has."""
    d = tmp_path_factory.mktemp("sample-data")
    old = os.environ.get("WORKBENCH_DATA")
    os.environ["WORKBENCH_DATA"] = str(d)
    try:
        yield api.ensure_sample_collection()
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_DATA", None)
        else:
            os.environ["WORKBENCH_DATA"] = old


@pytest.mark.slow
def test_embedded_profile_puts_the_evidence_sentence_into_the_numbered_prompt(kb, be):
    q = _question(SMS)
    p = rag_answer.prepare(q.question, "kb", be)
    rp = p.rag
    prof = RAG_PROFILES["embedded"]
    assert rp.selected and rp.profile["name"] == "embedded" and rp.profile["method"] == prof.method == "sentences"
    assert rp.profile["k"] == len(p.retrieval.chunks) == prof.k
    user = rp.messages[-1]["content"]
    assert contains_evidence(q.evidence, user)                              # the evidence survived the cut
    assert rp.context in user and rp.context.startswith("[1] (")
    # sources are numbered 1..n and chunk [n] of the prompt is the retrieved chunk the sentences come from
    assert [s.n for s in rp.snippets] == list(range(1, len(rp.chunks) + 1))
    retrieved_ids = [c.id for c in p.retrieval.chunks]
    for s, c in zip(rp.snippets, rp.chunks):
        assert s.chunk is c and c.id in retrieved_ids and f"[{s.n}] ({c.source})" in user
        flat = " ".join(c.text.split())
        assert all(" ".join(sent.split())[:40] in flat for sent in s.sentences)
    ev_n = next(s.n for s in rp.snippets if contains_evidence(q.evidence, [s]))
    assert rp.chunks[ev_n - 1].source.endswith("pricing-sheet-2024.pdf")
    # citations map back: [ev_n] is valid, one past the last source is not
    cc = check_citations(f"It costs €10 for 500 credits [{ev_n}] [{len(rp.chunks) + 1}].", len(rp.chunks))
    assert cc.valid == [ev_n] and cc.invalid == [len(rp.chunks) + 1]
    # far shorter than the whole chunks the server profile sends
    whole = rag_answer.prepare(q.question, "kb", be, profile="server").rag
    assert not whole.selected and whole.chunks == p.retrieval.chunks[: len(whole.chunks)]
    assert whole.messages == rag_answer.build_messages(q.question, whole.chunks, p.spec)
    assert build_context(whole.chunks) in whole.messages[-1]["content"]
    assert rp.prompt_tokens < whole.prompt_tokens
    # the user's k still wins over the profile's
    assert rag_answer.prepare(q.question, "kb", be, k=2).rag.profile["k"] == 2


@pytest.mark.slow
def test_compare_rag_column_gets_the_same_prompt_records_the_profile_and_scores_the_prompt(kb, be):
    q = _question(SMS)
    kb_p = rag_answer.prepare(q.question, "kb", be)
    res = A.resolve(A.ApproachSpec("prompt_rag", prompt="guardrail", rag=A.RetrievalSpec("kb", "hybrid", 4)),
                    backend_name="embedded")
    assert res.available, res.reason
    assert res.rag["context"]["name"] == "embedded" and "selected sentences" in res.describe()
    run = A.AnswerRun(res, q.question, be)
    assert run.prepare() == kb_p.rag.messages                               # one prepare step for both pages
    r = run.retrieval
    assert r["context_selected"] is True and r["profile"]["method"] == "sentences" and r["profile"]["k"] == 4
    assert [c["id"] for c in r["chunks"]] == [str(c.id) for c in kb_p.rag.chunks]
    assert [c["prompt_text"] for c in r["chunks"]] == [s.text for s in kb_p.rag.snippets]
    # scores read what the prompt held: a sentence of a retrieved chunk that was cut out does not ground an answer
    ev_n = next(i for i, c in enumerate(r["chunks"], 1) if contains_evidence(q.evidence, c["prompt_text"]))
    embed = api.get_embedder().encode
    sc = S.score_answer(q, f"An SMS top-up pack of 500 credits costs €10 [{ev_n}].", chunks=r["chunks"], rag=True,
                        embed=embed, check_citations=check_citations)
    assert sc["context_hit"].value == 1.0 and sc["citations"].value == 1.0 and sc["groundedness"].value == 1.0
    left_out = [s for c in r["chunks"] for s in S.sentences(c["text"])
                if s not in c["prompt_text"] and any(ch.isdigit() for ch in s) and len(s.split()) >= 6]
    assert left_out, "the selection kept every numbered sentence; pick another question"
    sc2 = S.score_answer(q, left_out[0], chunks=r["chunks"], rag=True, embed=embed, check_citations=check_citations)
    whole = [dict(c, prompt_text=None) for c in r["chunks"]]
    sc3 = S.score_answer(q, left_out[0], chunks=whole, rag=True, embed=embed, check_citations=check_citations)
    assert sc3["groundedness"].value == 1.0 and sc2["groundedness"].value < 1.0
    # a server profile named in the spec sends whole chunks
    res_s = A.resolve(A.ApproachSpec("rag_whole", prompt="guardrail", rag=A.RetrievalSpec("kb", "hybrid", 4),
                                     profile="server"), backend_name="embedded")
    run_s = A.AnswerRun(res_s, q.question, be)
    run_s.prepare()
    assert run_s.retrieval["context_selected"] is False and run_s.retrieval["profile"]["name"] == "server"
    assert all(c["prompt_text"] == " ".join(c["text"].split()) for c in run_s.retrieval["chunks"])


@pytest.mark.slow
def test_retrieval_only_column_quotes_and_cites_without_a_model(kb):
    q = _question(SMS)
    spec = A.parse_approach("retrieval_only=model=extractive,rag=kb:hybrid:4")
    assert spec == A.retrieval_only_preset("kb") and spec.model_free and spec.kind.startswith("retrieval only")
    res = A.resolve(spec)
    assert res.available and res.model_id == A.EXTRACTIVE_MODEL and "no model" in res.describe()
    rec = A.AnswerRun(res, q.question, backend=None).run()                 # no backend is ever touched
    assert rec["model_free"] and rec["prompt_tokens"] == 0 and rec["completion_tokens"] == 0
    chunks = rec["retrieval"]["chunks"]
    cited = check_citations(rec["answer"], len(chunks))
    assert cited.ok and rec["retrieval"]["quoted"]
    for row in rec["retrieval"]["quoted"]:                                 # [n] = the chunk the sentence is from
        assert " ".join(row["text"].split())[:40] in " ".join(chunks[row["n"] - 1]["text"].split())
    from core.compare.runner import score_one
    sc = score_one(q, rec["answer"], res, rec["retrieval"])["scores"]
    assert sc["keywords"]["value"] == 1.0 and sc["citations"]["value"] == 1.0
    with pytest.raises(Exception, match="needs retrieval"):
        A.parse_approach("x=model=extractive")


@pytest.mark.slow
def test_sms_question_on_the_sample_collection_answers_from_selected_context(sample, be):
    """What a presenter does on a fresh data folder: Ask with citations, the SMS question, the built-in model.
    Greedy decoding; measured identical over 3 runs before the answer's content was asserted."""
    q = _question(SMS)
    res = api.answer(q.question, sample, backend=be)
    assert res.context_selected and res.profile["name"] == "embedded" and res.profile["method"] == "sentences"
    prompt = res.messages[-1]["content"]
    assert contains_evidence(q.evidence, prompt)
    assert res.usage.prompt_tokens < 600                                    # was ~1,000 with whole chunks
    d = res.to_dict()
    assert d["context_selected"] and d["rag_profile"] == res.profile
    assert [s["n"] for s in d["in_prompt"]] == list(range(1, len(res.prompt_chunks) + 1))
    assert d["retrieved_ids"] == [c.id for c in res.prompt_chunks]
    ev = next(s for s in res.snippets if contains_evidence(q.evidence, [s]))
    assert res.prompt_chunks[ev.n - 1].source.endswith("pricing-sheet-2024.pdf")
    # the answer: the right numbers, citing the source that holds them (it largely copies its context)
    assert S.keywords(res.text, q.keywords).value == 1.0
    assert res.citations.ok and ev.n in res.citations.cited
