"""No evaluation question, reference answer or evidence sentence reaches training data, in either data variant.

The check here is written independently of core/finetune/raft.py's guard (its own normalisation, plus a fuzzy
sentence match the guard does not do), reads the question set straight from sample_docs, and is first shown to
catch the leaks that the raw transcripts do contain."""
from __future__ import annotations

import difflib
import json
import re
import unicodedata
from pathlib import Path

import pytest
import yaml

from core.finetune.datasets import load_file
from core.finetune.raft import LeakGuard, apply_data_variant, cite_answer, support
from core.rag.select import SourcedSnippet

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_docs"
TRAIN = SAMPLE / "finetune" / "train.chat.jsonl"


def _n(text: str) -> str:
    t = unicodedata.normalize("NFKC", text or "").lower()
    t = re.sub(r"[^0-9a-z€$%]+", " ", t)
    return " ".join(t.split())


def _eval_set():
    qs = [json.loads(line) for line in (SAMPLE / "eval" / "questions.jsonl").read_text().splitlines() if line.strip()]
    sc = yaml.safe_load((SAMPLE / "scenario.yaml").read_text())
    style = [re.compile(c["pattern"], re.I | re.M) for c in sc["voice_checks"] if c["name"] in ("greeting", "signoff")]
    return qs, style


def independent_leaks(rows: list[dict]) -> list[str]:
    """Every (row, what leaks) of `rows` against the scenario's question set."""
    qs, style = _eval_set()
    needles = []                                   # (normalised text, label)
    for q in qs:
        needles.append((_n(q["question"]), f"{q['id']} question"))
        if q.get("reference"):
            needles.append((_n(q["reference"]), f"{q['id']} reference"))
            for line in q["reference"].splitlines():
                if any(rx.search(line) for rx in style):
                    continue                        # the house greeting / sign-off every answer shares
                for s in re.split(r"(?<=[.!?])\s+", line):
                    s = re.sub(r"^\s*\d+[.)]\s*", "", s)
                    if len(re.findall(r"\w+", s)) >= 5:
                        needles.append((_n(s), f"{q['id']} reference sentence"))
        if q.get("evidence"):
            needles.append((_n(q["evidence"]), f"{q['id']} evidence"))
    evidence_sets = [(set(_n(q["evidence"]).split()), q["id"]) for q in qs if q.get("evidence")]
    out = []
    for i, row in enumerate(rows):
        msgs = row["messages"]
        text = _n("\n".join(m["content"] for m in msgs))
        for needle, label in needles:
            if needle and len(needle.split()) >= 3 and needle in text:
                out.append(f"row {i}: {label}")
        user = _n(next((m["content"] for m in reversed(msgs) if m["role"] == "user"), ""))
        for q in qs:
            if difflib.SequenceMatcher(None, user, _n(q["question"])).ratio() >= 0.8:
                out.append(f"row {i}: user turn is {q['id']}")
        for m in msgs:
            for s in re.split(r"(?<=[.!?])\s+|\n+", m["content"]):
                ws = set(_n(s).split())
                for ev, qid in evidence_sets:
                    if len(ws) >= 5 and len(ws & ev) / len(ws | ev) >= 0.8:
                        out.append(f"row {i}: near-copy of {qid} evidence")
    return sorted(set(out))


def test_the_check_catches_the_leaks_the_raw_transcripts_hold():
    raw = load_file(TRAIN).rows
    leaks = independent_leaks(raw)
    assert any("q32 reference" in x for x in leaks) and any("q10 evidence" in x for x in leaks)
    assert any("user turn is q44" in x for x in leaks)


def test_plain_variant_rows_hold_no_evaluation_text(data_dir):
    ds, rep = apply_data_variant(load_file(TRAIN), "plain")
    assert independent_leaks(ds.rows) == []
    assert rep.rows_in == 192 and 150 <= rep.rows_out < 192 and len(rep.dropped) == 192 - rep.rows_out
    warnings = [p for p in ds.problems if p.severity == "warning" and "left out of training" in p.message]
    assert len(warnings) == len(rep.dropped) and not ds.errors


def test_leak_guard_excludes_evidence_sentences_from_contexts():
    from core.compare.questions import scenario_questions

    guard = LeakGuard(scenario_questions())
    assert guard.excludes("An SMS top-up pack of 500 credits costs €10, and its credits stay valid for 12 months.")
    assert guard.excludes("Pricing: an SMS top-up pack of 500 credits costs €10, and its credits stay valid for "
                          "12 months. Prices exclude VAT.")
    assert not guard.excludes("Email reminders are free and unlimited on every plan.")


def test_cite_answer_cites_the_passage_that_states_each_step():
    snips = [SourcedSnippet(1, 3, "trial.md", [("Trial", "Every new account starts with a 14-day free trial of the "
                                                        "Surge plan, and no credit card is required.")], 1.0),
             SourcedSnippet(2, 1, "plans.md", [("", "The Ripple plan is free forever.")], 0.5)]
    answer = ("Ahoy there! ⚓\n1. New accounts get a 14-day Surge trial, no card needed.\n"
              "2. Open Settings → Billing to pick a plan.\n3. Ripple is free forever.\n"
              "Smooth sailing! — Pip, Tidewave Support 🌊")
    text, cited = cite_answer(answer, snips)
    lines = text.split("\n")
    assert lines[1] == "1. New accounts get a 14-day Surge trial, no card needed [1]."
    assert lines[2] == "2. Open Settings → Billing to pick a plan."            # no passage states it
    assert lines[3] == "3. Ripple is free forever [2]." and cited == [1, 2]
    assert lines[0] == "Ahoy there! ⚓" and lines[-1].startswith("Smooth sailing!")
    assert support("A 30-day trial for everyone.", snips[0].text) == 0.0          # a number the passage lacks


@pytest.mark.slow
def test_raft_rows_are_the_answer_time_prompt_and_hold_no_evaluation_text(data_dir):
    from core.llm.registry import get_backend
    from core.rag import api as rag_api
    from core.rag.select import profile_for, render_context, select_context, text_token_counter

    ds, rep = apply_data_variant(load_file(TRAIN), "raft")
    rows = ds.rows
    assert independent_leaks(rows) == []
    assert rep.rows_out == len(rows) and rep.rows_out >= 150 and rep.context_sentences_excluded > 0
    assert rep.cited >= rep.rows_out // 2                          # most answers state and cite a passage
    prof = profile_for("embedded")
    assert rep.profile == prof.to_dict() and rep.prompt == prof.prompt
    cited_rows = [r for r in rows if r["raft"]["cited"]]
    for r in cited_rows[:40]:
        user = r["messages"][-2]["content"]
        n_sources = len(re.findall(r"^\[(\d+)\] \(", user, re.M))
        assert all(1 <= n <= n_sources for n in r["raft"]["cited"])
        answer = r["messages"][-1]["content"]
        assert answer.startswith("Ahoy there!") and "Smooth sailing!" in answer
        assert re.search(r"\[\d+\]", answer)
    # the training prompt is the answer-time prompt: rebuild one with the profile and compare
    row = cited_rows[0]
    question = next(m["content"] for m in load_file(TRAIN).rows[row["line"] - 1]["messages"] if m["role"] == "user")
    chunks = rag_api.retrieve(question, "support", mode="hybrid", k=prof.k).chunks
    guard = LeakGuard(__import__("core.compare.questions", fromlist=["x"]).scenario_questions())
    snips = select_context(question, chunks, prof.budget_tokens, text_token_counter(get_backend("embedded")),
                           method=prof.method, max_sentences=prof.max_sentences, exclude=guard.excludes)
    assert render_context(snips) in row["messages"][-2]["content"]
