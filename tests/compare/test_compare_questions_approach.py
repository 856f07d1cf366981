"""Question files (JSONL/CSV, bad lines reported) and approach specs (parsing, presets, unavailable approaches)."""
from __future__ import annotations

import json

import pytest

from core.compare import approach as A
from core.scenario import load_scenario, parse_questions, scenario_questions
from core.errors import CompareError, DatasetError


def test_jsonl_and_csv_question_files():
    data = "\n".join([json.dumps({"id": "a", "question": "Q1?", "reference": "R1", "tags": ["fact_lookup"],
                                  "keywords": ["x"]}),
                      "", json.dumps({"question": "Q2?"})])
    qs = parse_questions(data, "set.jsonl")
    assert [q.id for q in qs] == ["a", "q3"] and qs[0].tags == ["fact_lookup"] and qs[1].reference == ""
    csv = "id,question,reference,tags,keywords\nc1,How much?,€10,fact_lookup;pricing,500|10\n"
    (q,) = parse_questions(csv.encode(), "set.csv")
    assert q.tags == ["fact_lookup", "pricing"] and q.keywords == ["500", "10"]


def test_question_file_with_missing_fields_lists_every_bad_line():
    data = "\n".join([json.dumps({"id": "a", "question": "ok?"}), json.dumps({"id": "b", "reference": "no q"}),
                      "{broken", json.dumps({"id": "a", "question": "dup"}), json.dumps(["not", "an object"])])
    with pytest.raises(DatasetError) as err:
        parse_questions(data, "bad.jsonl")
    lines = [ln for ln, _ in err.value.problems]
    assert lines == [2, 3, 4, 5]
    assert "missing field `question`" in str(err.value) and "line 2" in str(err.value)
    with pytest.raises(DatasetError, match="`question` column"):
        parse_questions("id,reference\n1,x\n", "bad.csv")
    with pytest.raises(DatasetError, match="no questions"):
        parse_questions("\n\n", "empty.jsonl")
    with pytest.raises(DatasetError, match="unsupported"):
        parse_questions("x", "q.txt")
    with pytest.raises(DatasetError, match="UTF-8"):
        parse_questions(b"\xff\xfe\x00bad", "q.jsonl")


def test_scenario_questions_and_voice_checks_load():
    sc = load_scenario()
    assert sc.collection == "support"
    assert {v.name for v in sc.voice_checks} >= {"greeting", "signoff"}
    qs = scenario_questions(limit=3)
    assert len(qs) == 3 and all(q.question for q in qs)


def test_parse_approach_spec_strings():
    a = A.parse_approach("prompt_rag=model=smollm2-135m-instruct,prompt=guardrail@1,rag=support:hybrid:4")
    assert a.rag == A.RetrievalSpec("support", "hybrid", 4) and a.prompt == "guardrail@1" and a.kind == "prompt + RAG"
    assert A.parse_approach(a.to_string()) == a                     # round trip
    ft = A.parse_approach("ft=model=ft:latest,prompt=zero_shot,max_tokens=64")
    assert ft.fine_tuned and ft.rag is None and ft.max_tokens == 64 and ft.complexity == 2
    for bad, msg in [("noequals", "NAME=key=value"), ("x=model=m,colour=red", "unknown key"),
                     ("x=model=m,rag=support:fuzzy:4", "mode"), ("x=model=m,rag=support:hybrid:99", "k must"),
                     ("x=model=m,max_tokens=lots", "not a number"), ("bad name=model=m", "Approach name")]:
        with pytest.raises(CompareError, match=msg):
            A.parse_approach(bad)


def test_classic_preset_and_set_checks():
    specs = A.classic_presets("support")
    assert [s.name for s in specs] == ["prompt_only", "prompt_rag", "fine_tuned", "fine_tuned_rag"]
    assert [s.complexity for s in specs] == [0, 1, 2, 3]
    with pytest.raises(CompareError, match="at most 6"):
        A.check_set([A.ApproachSpec(f"a{i}") for i in range(7)])
    with pytest.raises(CompareError, match="unique"):
        A.check_set([A.ApproachSpec("a"), A.ApproachSpec("a")])


def test_unavailable_approaches_resolve_with_reasons(data_dir):
    """No adapter trained, an adapter that was deleted, a missing collection, an unknown prompt: each approach
    resolves as unavailable with a message that says what to do - never an exception."""
    ft = A.resolve(A.ApproachSpec("ft", "ft:latest", "zero_shot"))
    assert not ft.available and "Fine-Tune page" in ft.reason
    gone = A.resolve(A.ApproachSpec("gone", "ft:deleted_adapter", "zero_shot"))
    assert not gone.available and "deleted" in gone.reason
    rag = A.resolve(A.ApproachSpec("rag", prompt="guardrail", rag=A.RetrievalSpec("no_such_collection")))
    assert not rag.available and "no_such_collection" in rag.reason and "does not exist" in rag.reason
    bad_prompt = A.resolve(A.ApproachSpec("p", prompt="nope_prompt"))
    assert not bad_prompt.available and "nope_prompt" in bad_prompt.reason
    ok = A.resolve(A.ApproachSpec("p", prompt="few_shot"), max_tokens=32, seed=7)
    assert ok.available and ok.prompt_version >= 1 and ok.params["max_tokens"] == 32 and ok.params["seed"] == 7
    assert "few_shot@" in ok.describe()


def test_rag_profile_key_and_the_retrieval_only_spec(data_dir, monkeypatch):
    s = A.parse_approach("rag_whole=model=smollm2-135m-instruct,prompt=guardrail,rag=support:hybrid:4,profile=server")
    assert s.profile == "server" and A.parse_approach(s.to_string()) == s
    with pytest.raises(CompareError, match="profile 'tiny' is unknown"):
        A.parse_approach("x=model=m,prompt=p,rag=support,profile=tiny")
    ref = A.retrieval_only_preset("support", k=3)
    assert ref.model_free and ref.kind == "retrieval only (no model)" and ref.rag.k == 3
    assert A.parse_approach(ref.to_string()) == ref and not any(a.model_free for a in A.classic_presets())
    with pytest.raises(CompareError, match="needs retrieval"):
        A.parse_approach("ref=model=extractive")
    from argparse import Namespace

    from core.compare import cli as compare_cli
    monkeypatch.setattr(compare_cli, "_ensure_sample_collection", lambda: None)   # composition only, no ingest
    specs = compare_cli._approaches(Namespace(preset="classic+retrieval", approach=[]))
    assert [a.name for a in specs][-1] == A.RETRIEVAL_ONLY and len(specs) == 5
