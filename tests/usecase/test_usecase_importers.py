"""Past answers: column mapping, duplicates, personal data and masking, the training rows' dataset checks, and
voice/format checks derived from the answers."""
from __future__ import annotations

import json

import pytest

from core.errors import DatasetError, UseCaseError
from core.finetune.datasets import load_file
from core.usecase import checks as C
from core.usecase import importers as I
from core.usecase import workspace as W
from tests.usecase.uc_helpers import PAST_ANSWERS


@pytest.fixture
def acme(data_dir):
    return W.create_usecase("acme", product="Tidewave", system_prompt="You are Pip, the Tidewave support assistant.")


def test_csv_import_with_guessed_mapping_dupes_and_pii(acme):
    rep = I.import_answers(acme, PAST_ANSWERS.read_bytes(), PAST_ANSWERS.name)
    m = rep.mapping
    assert (m.question, m.answer, m.context, m.category) == ("customer_message", "agent_reply", "notes", "topic")
    d = rep.to_dict()
    assert d["rows_read"] == 100 and d["kept"] == 92 and rep.written == 92
    kinds = sorted(x["kind"] for x in d["duplicates"])
    assert kinds == ["exact"] * 4 + ["normalised"] * 3
    assert all(x["of_line"] < x["line"] for x in d["duplicates"])
    assert [p["message"] for p in d["problems"]] == ["no answer: row skipped"]
    found = {(p["kind"], p["text"]) for p in d["pii"]}
    assert {("email", "anna.kovacs@example.com"), ("email", "j.smith@salon-bright.nl"),
            ("phone", "+31 6 1234 5678"), ("phone", "(020) 555-0143"), ("phone", "0049 171 2345678")} <= found
    assert not rep.masked
    # the training file passes the fine-tune page's own dataset checks, in chat form with the system prompt
    ds = load_file(acme.file("train"))
    assert ds.ok and ds.format == "chat" and len(ds.rows) == 92
    assert ds.rows[0]["messages"][0] == {"role": "system", "content": acme.system_prompt}
    assert "anna.kovacs@example.com" in acme.file("train").read_text(encoding="utf-8")
    answers = W.read_jsonl(acme.file("answers"))
    assert len(answers) == 92 and {a["category"] for a in answers} >= {"billing", "sms"}


def test_masking_replaces_personal_data_but_keeps_allowed(acme):
    rep = I.import_answers(acme, PAST_ANSWERS.read_bytes(), PAST_ANSWERS.name, mask=True,
                           keep=["billing@tidewave.app"])
    assert rep.masked
    text = acme.file("train").read_text(encoding="utf-8")
    for secret in ("anna.kovacs@example.com", "j.smith@salon-bright.nl", "555-0143", "171 2345678"):
        assert secret not in text
    assert "[email]" in text and "[phone]" in text and "billing@tidewave.app" in text
    assert load_file(acme.file("train")).ok


@pytest.mark.parametrize("text, kinds", [
    ("write to a.b+c@mail.example.org now", ["email"]),
    ("call +44 20 7946 0958 or 06-12345678", ["phone", "phone"]),
    ("It costs €1,200.50 since 2024-10-07, version 4.4.1, code TW-4020, 5,000 rows, 99.9%", []),
    ("from 08:00 to 20:00 on 07.04.2025, order 1234567", []),
])
def test_pii_patterns(text, kinds):
    assert [k for k, _ in I.find_pii(text)] == kinds


def test_explicit_mapping_jsonl_and_errors(acme):
    rows = [{"q": "How do I pay?", "a": "Ahoy there! Use a card.", "ctx": "plan: Current"},
            {"q": "How do I pay?", "a": "Ahoy there! Use a card."},
            {"q": "Refunds?", "a": "Ahoy there! Within 5 days."}]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    with pytest.raises(UseCaseError, match="cannot tell which columns"):
        I.import_answers(acme, data, "old.jsonl")
    rep = I.import_answers(acme, data, "old.jsonl", I.ColumnMapping("q", "a", "ctx"))
    assert rep.written == 2 and rep.to_dict()["duplicates"][0]["kind"] == "exact"
    first = json.loads(acme.file("train").read_text(encoding="utf-8").splitlines()[0])
    assert first["messages"][1]["content"] == "How do I pay?\n\nContext: plan: Current"
    with pytest.raises(UseCaseError, match="not in the file"):
        I.import_answers(acme, data, "old.jsonl", I.ColumnMapping("q", "answer"))
    with pytest.raises(DatasetError, match="bad line"):
        I.import_answers(acme, data + b"\n{oops", "old.jsonl", I.ColumnMapping("q", "a"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        I.import_answers(acme, b"q,a\n\xff\xfe,x\n", "old.csv")
    # append: the earlier rows stay, a repeat across both files is a duplicate
    more = json.dumps({"q": "refunds?!", "a": "ahoy there within 5 days"}) + "\n" + json.dumps({"q": "Hi", "a": "Hello"})
    rep = I.import_answers(acme, more.encode(), "more.jsonl", I.ColumnMapping("q", "a"), append=True)
    assert rep.written == 3 and [d["kind"] for d in rep.to_dict()["duplicates"]] == ["normalised"]


def test_dry_run_writes_nothing_and_the_demo_is_read_only(acme, data_dir):
    rep = I.import_answers(acme, PAST_ANSWERS.read_bytes(), PAST_ANSWERS.name, dry_run=True)
    assert rep.written == 92 and not acme.file("train").exists() and not acme.file("answers").exists()
    with pytest.raises(UseCaseError, match="read-only"):
        I.import_answers(W.get_usecase("tidewave"), PAST_ANSWERS.read_bytes(), PAST_ANSWERS.name)


# --- derived checks ------------------------------------------------------------------------------------------------
def test_checks_derived_from_the_past_answers(acme):
    rep = I.import_answers(acme, PAST_ANSWERS.read_bytes(), PAST_ANSWERS.name)
    props = {p["name"]: p for p in rep.proposals}
    assert set(props) == {"greeting", "signoff", "numbered_steps"}
    assert props["greeting"]["example"] == "Ahoy there! ⚓" and props["greeting"]["support"] >= 0.9
    assert props["signoff"]["example"].startswith("Smooth sailing! — Pip, Tidewave Support")
    # the proposals wait for the user: nothing is a check before it is accepted
    assert W.load_checks(acme)["voice_checks"] == []
    assert [p["name"] for p in W.read_proposals(acme)] == list(props)
    chosen = C.accept(W.load_checks(acme), W.read_proposals(acme), ["greeting", "signoff"])
    W.save_checks(acme, chosen)
    sc = W.scenario_of(acme)
    assert [v.name for v in sc.voice_checks] == ["greeting", "signoff"]
    from core.compare.scores import voice
    good = "Ahoy there! ⚓\n1. Do this.\n2. Then that.\nSmooth sailing! — Pip, Tidewave Support 🌊"
    assert voice(good, sc.voice_checks).value == 1.0
    assert voice("Hello.\nBye.", sc.voice_checks).value == 0.0
    with pytest.raises(UseCaseError, match="No proposed check"):
        C.accept(W.load_checks(acme), W.read_proposals(acme), ["nope"])


def test_no_check_below_the_threshold():
    answers = ["Hi there, friend.\nThe answer.\nCheers, Sam"] * 8 + ["Hello.\nOther.\nBest, Kim"] * 2
    props = {p.name: p for p in C.derive_checks(answers)}
    assert props == {}                                   # 80% is not >= 90%
    answers = ["Hi there, friend.\nThe answer.\nCheers, Sam"] * 9 + ["Hello.\nOther.\nCheers, Sam"]
    props = {p.name: p for p in C.derive_checks(answers)}
    assert set(props) == {"greeting", "signoff"} and props["greeting"].support == 0.9
    assert props["signoff"].matched == 10
    assert C.derive_checks(["Hi.\nx"] * 3) == []          # too few answers to prove anything


def test_checks_validation():
    with pytest.raises(UseCaseError, match="invalid regex"):
        C.validate_checks({"voice_checks": [{"name": "x", "pattern": "(("}]})
    with pytest.raises(UseCaseError, match="flags"):
        C.validate_checks({"voice_checks": [{"name": "x", "pattern": "a", "flags": "ix"}]})
    with pytest.raises(UseCaseError, match="two voice checks"):
        C.validate_checks({"voice_checks": [{"name": "x", "pattern": "a"}, {"name": "x", "pattern": "b"}]})
    with pytest.raises(UseCaseError, match="refusal pattern 1"):
        C.validate_checks({"refusal_patterns": ["[unclosed"]})
    import re
    refusals = [re.compile(p) for p in C.DEFAULT_REFUSAL_PATTERNS]
    assert any(r.search("Sorry, I can only help with questions about Lumen.") for r in refusals)
    assert any(r.search("I don't know based on the documentation.") for r in refusals)
    assert not any(r.search("Your lamp ships within 2 business days.") for r in refusals)
