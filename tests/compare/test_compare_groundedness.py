"""Groundedness and the embedding path of context hit, with the packaged MiniLM embedder: what counts as support,
and the rule that numbers must appear in the context (an answer with an invented number, or a retrieved sentence
with a stale one, is not supported by a close paraphrase)."""
from __future__ import annotations

import pytest

from core.compare import scores as S

PACK = "An SMS top-up pack of 500 credits costs €10, and its credits stay valid for 12 months."
INVITE = "They get an invitation email that is valid for 7 days."
CHUNKS = [f"SMS credits. Extra credits can be bought as top-up packs. {PACK} Plan credits reset monthly.",
          "Team members. Invite people under Settings → Team. " + INVITE]


@pytest.fixture(scope="module")
def embed():
    from core.rag.api import get_embedder

    return S.CachedEmbed(get_embedder().encode)


def test_an_answer_copied_from_the_context_is_grounded(embed):
    g = S.groundedness(f"{PACK} [1]", CHUNKS, embed)
    assert g.value == 1.0 and g.reason.startswith("1/1 sentences supported")


def test_a_paraphrase_with_the_right_numbers_is_grounded(embed):
    g = S.groundedness("A top-up pack has 500 SMS credits and costs €10 [1]. The invitation is valid for 7 days [2].",
                       CHUNKS, embed)
    assert g.value == 1.0, g.reason


def test_an_invented_number_is_not_grounded_even_when_the_sentence_is_close(embed):
    close = "An SMS top-up pack of 500 credits costs €15, and its credits stay valid for 12 months."
    assert float((embed([close]) @ embed([PACK]).T)[0, 0]) > S.GROUNDED_THRESHOLD     # the embedding alone would pass it
    g = S.groundedness(close, CHUNKS, embed)
    assert g.value == 0.0 and "numbers not in the context: 15" in g.reason
    assert g.detail["unsupported"] == [close]


def test_off_topic_sentences_lower_the_share(embed):
    g = S.groundedness(f"{INVITE} Our office cat is called Biscuit and loves tuna.", CHUNKS, embed)
    assert g.value == 0.5 and "1/2 sentences" in g.reason
    assert "Biscuit" in g.detail["unsupported"][0]


def test_citation_markers_and_missing_input_are_handled(embed):
    assert S.groundedness("[1] [2]", CHUNKS, embed).value is None                # nothing but citations
    assert S.groundedness("", CHUNKS, embed).value is None
    assert "no retrieved context" in S.groundedness(PACK, [], embed).reason


def test_context_hit_embedding_path_finds_a_paraphrased_evidence_sentence(embed):
    chunks = ["Invited people receive an email invitation; it stays valid for 7 days. Resend it if it expires."]
    hit = S.context_hit(INVITE, chunks, embed)
    assert hit.value == 1.0 and "cosine" in hit.reason and "chunk [1]" in hit.reason
    # without the embedder only a verbatim match counts
    assert S.context_hit(INVITE, chunks).value == 0.0


def test_context_hit_needs_the_evidence_numbers_in_the_matching_sentence(embed):
    stale = ["Current is our most popular plan. 200 SMS credits per staff member per month. Up to 3 calendars."]
    evidence = "The Current plan now includes 300 SMS credits per staff member per month instead of 200."
    hit = S.context_hit(evidence, stale, embed)
    assert hit.value == 0.0 and "lacks its numbers 300" in hit.reason
    other = S.context_hit(INVITE, ["Invited people receive an email invitation, which stays valid for 14 days."], embed)
    assert other.value == 0.0 and "lacks its numbers 7" in other.reason
    # the same stale chunk next to the changelog's sentence: the changelog chunk is the hit
    both = stale + ["4.2.0: The Current plan now includes 300 SMS credits per staff member per month (was 200)."]
    hit = S.context_hit(evidence, both, embed)
    assert hit.value == 1.0 and "chunk [2]" in hit.reason


def test_context_hit_unrelated_chunks_are_a_miss(embed):
    hit = S.context_hit(PACK, ["Tidewave stores customer data in Frankfurt, Germany."], embed)
    assert hit.value == 0.0 and "best cosine" in hit.reason
