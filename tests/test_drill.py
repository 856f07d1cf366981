"""The knowledge-update drill (core/drill.py): definitions, value checks, and a real end-to-end drill."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import drill as D
from core.errors import PatternError
from core.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_drill_applies_to_the_shipped_documents_and_tests_a_trained_fact():
    d = D.load_drill("topup-price")
    sc = load_scenario()
    original = (sc.knowledge_dir / d.document).read_text(encoding="utf-8")
    changed = D.apply_edits(original, d.edits)
    assert changed != original and "4.5.0" in changed and "4.5.0" not in original
    assert {q.id for q in sc.questions()} >= set(d.questions)
    # the premise of the drill: the transcripts a fine-tune learns from state the OLD value, never the new one
    train = sc.finetune["train"].read_text(encoding="utf-8")
    assert D.value_state(train, d.old_values, d.new_values) == "old"
    # and no document states the new value before the change
    for p in sc.knowledge_dir.iterdir():
        if p.suffix in (".md", ".txt", ".html"):
            assert D.value_state(p.read_text(encoding="utf-8"), [], d.new_values) == "neither", p.name
    assert D.value_state(changed, [], d.new_values) == "new"


@pytest.mark.parametrize("answer, state", [
    ("A pack of 500 credits costs €13.", "new"),
    ("It costs € 10 for 500 credits.", "old"),
    ("It was €10, now it is €13.", "both"),
    ("It costs €100.", "neither"),
    ("", "neither"),
    ("13 euro per pack", "new"),
])
def test_value_state(answer, state):
    d = D.load_drill("topup-price")
    assert D.value_state(answer, d.old_values, d.new_values) == state


def test_bad_drills_get_clear_errors(tmp_path):
    with pytest.raises(D.DrillError, match="No drill 'nope'.*topup-price"):
        D.load_drill("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("document: changelog.html\nedits: [{old: 'not in the file', new: 'x'}]\nquestions: [q01]\n"
                   "new_values: ['x']\n")
    d = D.load_drill(bad)
    with pytest.raises(D.DrillError, match="exactly once .found 0 times"):
        D.apply_edits("some other text", d.edits)
    bad.write_text("document: changelog.html\nedits: [{old: a, new: b}]\nnew_values: ['x']\n")
    with pytest.raises(D.DrillError, match="no question"):
        D.load_drill(bad)
    bad.write_text("document: changelog.html\nedits: [{old: a, new: b}]\nquestions: [q01]\nnew_values: ['(']\n")
    with pytest.raises(PatternError):
        D.load_drill(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(D.DrillError, match="a mapping"):
        D.load_drill(bad)
    with pytest.raises(D.DrillError, match="new value"):
        D.custom_drill(tmp_path / "x.md", ["How much?"], "€10", "")


def test_custom_drill_values_are_literal_text(tmp_path):
    d = D.custom_drill(tmp_path / "pricing.md", ["How much is it?", " "], "€9.50", "€9.99 (incl. VAT)")
    assert d.custom_questions == ["How much is it?"]
    assert D.value_state("now €9.99 (incl. VAT)", d.old_values, d.new_values) == "new"
    assert D.value_state("now €9x99 (incl. VAT)", d.old_values, d.new_values) == "neither"   # '.' is literal


def test_context_rank_reads_the_retrieved_chunks():
    d = D.load_drill("topup-price")
    rec = {"retrieval": {"chunks": [{"text": "Plans cost €15.", "rank": 1}, {"text": "A pack costs €13 now.",
                                                                             "rank": 2}]}}
    assert D.context_rank(rec, d.new_values) == 2
    assert D.context_rank({"retrieval": None}, d.new_values) is None and D.context_rank(None, d.new_values) is None


@pytest.mark.slow
def test_drill_end_to_end_through_the_cli(data_dir):
    """A real drill on the built-in model: the drill collection indexes the scenario, the changed changelog is
    re-ingested (timed), the RAG column's retrieval finds the new value only after the change, both runs are
    stored comparison runs, the drill collection is restored, and the user's own collection is never created."""
    env = dict(os.environ, WORKBENCH_DATA=str(data_dir), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2")
    r = subprocess.run([sys.executable, "-m", "core", "drill", "topup-price", "--max-tokens", "48", "--json"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["state"] == "succeeded"
    res = out["result"]
    assert res["collection"] == "support-drill" and res["document"] == "changelog.html"
    assert 0 < res["reingest_seconds"] < res["index_seconds"] + 60 and res["reingest_chunks"] > 0
    rows = {a["approach"]: a for a in res["approaches"]}
    assert set(rows) == {"prompt_only", "prompt_rag", "fine_tuned", "fine_tuned_rag", "retrieval_only"}
    ref = rows["retrieval_only"]["questions"][0]
    assert ref["before"] == "old" and ref["after"] in ("new", "both")          # retrieval alone sees the change
    rag = rows["prompt_rag"]["questions"][0]
    assert rag["context_before"] is None and rag["context_after"] is not None       # RAG's side, model-free
    assert rows["prompt_only"]["retrieved_new"] is None
    assert not rows["fine_tuned"]["available"] and "no fine-tuned adapter" in rows["fine_tuned"]["reason"]
    assert [i["change"] for i in res["iteration"]] == ["prompt edit", "document change", "retrain"]
    assert res["iteration"][1]["seconds"] >= res["reingest_seconds"]
    for run_id in (res["before_run"], res["after_run"]):
        assert (data_dir / "compare" / run_id / "results.jsonl").is_file()
    from core.rag import api as rag_api
    names = {c.name for c in rag_api.list_collections()}
    assert "support-drill" in names and "support" not in names
    chunks = [c for d in rag_api.list_documents("support-drill") if d["doc_id"] == "changelog.html"
              for c in rag_api.document_chunks("support-drill", "changelog.html")]
    assert chunks and not any("4.5.0" in c["text"] for c in chunks)                 # restored
    # the decision report of any run now carries the measured drill in its maintenance section
    from core.compare.report import build
    _, summary = build(res["after_run"])
    m = summary["decision"]["maintenance"]
    assert "knowledge-update drill 'topup-price'" in m["text"] and len(m["extra"]) == 2
