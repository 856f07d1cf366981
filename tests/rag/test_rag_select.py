"""Context selection for a small window (core.rag.select) with the packaged MiniLM: the evidence sentence survives
a budget that the first-N-words cut loses it under, source numbers map back to chunks, the budget holds, and the
extractive retrieval-only answer cites the chunk it quotes."""
from __future__ import annotations

import re

import pytest

from core.errors import InvalidParams
from core.rag import select as S
from core.rag.context import check_citations

# Retrieved chunks in rank order; the evidence (the €10 top-up price) is the third sentence of the second chunk.
CHUNKS = [
    {"id": "a", "source": "sms-reminders.md", "heading": "SMS credits", "rank": 1,
     "text": "SMS credits\nEmail reminders are free and unlimited on every plan. SMS reminders use credits.\n\n"
             "- One credit pays for one SMS segment. A segment holds up to 160 plain characters.\n"
             "- Plan credits reset on the first day of each month and do not roll over."},
    {"id": "b", "source": "pricing-sheet-2024.pdf", "heading": "", "rank": 2,
     "text": "Add-ons\nAn extra business location costs €5 per month on Current and Surge; Harbor includes\n"
             "unlimited locations. Custom domains are included from Surge. An SMS top-up pack of 500 credits costs\n"
             "€10, and its credits stay valid for 12 months. Prices exclude VAT."},
    {"id": "c", "source": "team-and-roles.txt", "heading": "TEAM MEMBERS", "rank": 3,
     "text": "Invite people under Settings → Team. They get an invitation email that is valid for 7 days."},
]
QUESTION = "How much does an SMS top-up pack cost, and how many credits are in it?"
EVIDENCE = "An SMS top-up pack of 500 credits costs €10, and its credits stay valid for 12 months."


def words(text: str) -> int:
    """A strict, simple token counter for the budget checks: one token per word."""
    return len(text.split())


@pytest.fixture(scope="module")
def embed():
    from core.rag.api import get_embedder

    return get_embedder().encode


def test_sentences_join_pdf_wraps_and_drop_titles():
    sents = S.split_sentences(CHUNKS[1]["text"])
    assert EVIDENCE in sents                                           # joined across the PDF line break
    assert "Add-ons" not in sents and all(len(s.split()) >= 3 for s in sents)
    units = S.sentence_units("FIRST RESPONSE TARGETS\nSurge    chat and email    within 8 business hours", "SLA")
    assert units == [("FIRST RESPONSE TARGETS", "Surge chat and email within 8 business hours")]
    assert S.split_sentences("- First bullet point here.\n- Second bullet point here.") == [
        "First bullet point here.", "Second bullet point here."]


def test_the_evidence_survives_a_budget_the_first_words_cut_loses_it_under(embed):
    budget = 60
    naive = S.select_context(QUESTION, CHUNKS, budget, words, method="first_words", first_words=25)
    assert not S.contains_evidence(EVIDENCE, naive)
    picked = S.select_context(QUESTION, CHUNKS, budget, words, embed=embed, max_sentences=3)
    assert S.contains_evidence(EVIDENCE, picked)
    ctx = S.render_context(picked)
    assert words(ctx) <= budget
    first = picked[0]
    assert first.n == 1 and first.rank == 2 and first.source == "pricing-sheet-2024.pdf" and first.chunk is CHUNKS[1]
    assert ctx.startswith("[1] (pricing-sheet-2024.pdf) ")


def test_source_numbers_map_back_to_the_chunks_for_citations(embed):
    picked = S.select_context(QUESTION, CHUNKS, 200, words, embed=embed, max_sentences=4)
    ctx = S.render_context(picked)
    numbers = [int(n) for n in re.findall(r"^\[(\d+)\]", ctx, re.M)]
    assert numbers == list(range(1, len(picked) + 1))                   # numbered 1..m in the order shown
    prompt_chunks = [s.chunk for s in picked]                          # chunk [n] of the prompt = prompt_chunks[n-1]
    for s in picked:
        assert prompt_chunks[s.n - 1]["id"] == CHUNKS[s.rank - 1]["id"]
        assert all(sent in " ".join(prompt_chunks[s.n - 1]["text"].split()) for sent in s.sentences)
    assert check_citations("It costs €10 [1].", len(picked)).ok
    assert [s.score for s in picked] == sorted((s.score for s in picked), reverse=True)


def test_budget_is_respected_for_every_method(embed):
    for method in S.METHODS:
        for budget in (15, 40, 120):
            snips = S.select_context(QUESTION, CHUNKS, budget, words, method=method, embed=embed, first_words=20)
            assert words(S.render_context(snips)) <= budget, (method, budget)
    tiny = S.select_context(QUESTION, CHUNKS, 12, words, embed=embed)     # even the best sentence is too long
    assert tiny and words(S.render_context(tiny)) <= 12 and tiny[0].sentences[0].endswith("…")
    with pytest.raises(InvalidParams):
        S.select_context(QUESTION, CHUNKS, 100, method="middle")
    with pytest.raises(InvalidParams):
        S.select_context(QUESTION, CHUNKS, 0)
    assert S.select_context(QUESTION, [], 100) == []


def test_codes_and_numbers_weigh_in_the_lexical_score():
    sents = ["TW-4010 access revoked.", "TW-4020 Google Calendar refused requests because of its quota.",
             "Every error code starts with TW."]
    lex = S.lexical_scores("What does error TW-4020 mean?", sents)
    assert lex[1] == max(lex) and lex[1] > 2 * lex[0]
    assert S.terms("Credits, SMS packs and TW-4020!") == ["credit", "sms", "pack", "tw-4020"]


def test_excluded_sentences_never_reach_the_context(embed):
    snips = S.select_context(QUESTION, CHUNKS, 200, words, embed=embed, exclude=lambda s: "top-up pack" in s)
    assert snips and not S.contains_evidence(EVIDENCE, snips)
    assert all("top-up pack" not in s for sn in snips for s in sn.sentences)


def test_extractive_answer_quotes_and_cites_the_best_sentence(embed):
    ans = S.extractive_answer(QUESTION, CHUNKS, embed=embed)
    assert ans.text.startswith(f"Add-ons: {EVIDENCE} [2]")         # the sentence, under its section title
    assert ans.sentences[0] == {"n": 2, "source": "pricing-sheet-2024.pdf", "text": EVIDENCE,
                                "score": ans.sentences[0]["score"]} and ans.cited[0] == 2
    assert check_citations(ans.text, len(CHUNKS)).ok
    assert "no sentence" in S.extractive_answer(QUESTION, []).text


def test_profiles_are_data_for_the_prepare_step():
    emb, srv = S.profile_for("embedded"), S.profile_for("ollama")
    assert emb is S.RAG_PROFILES["embedded"] and srv is S.RAG_PROFILES["server"] is S.profile_for("openai")
    assert emb.method in S.METHODS and srv.method in S.METHODS
    assert emb.budget_tokens < srv.budget_tokens                       # the small model reads less
    assert set(emb.to_dict()) >= {"k", "method", "budget_tokens", "max_sentences", "prompt", "temperature"}
