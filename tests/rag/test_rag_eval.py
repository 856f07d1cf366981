"""Retrieval evaluation over the scenario's questions whose evidence is in the small corpus."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import DatasetError
from core.rag import api
from core.scenario import load_questions

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "sample_docs" / "eval" / "questions.jsonl"


def test_eval_on_scenario_questions(kb, small_corpus):
    names = {p.name for p in small_corpus.iterdir()}
    qs = [q.to_dict() for q in load_questions(QUESTIONS)
          if q.evidence and q.source and Path(q.source).name in names]
    assert len(qs) >= 5
    rep = api.evaluate("kb", qs)
    assert rep.n_questions == len(qs) and set(rep.modes) == {"vector", "fts", "hybrid"}
    for s in rep.modes.values():
        assert 0 <= s.hit_at_1 <= s.hit_at_5 <= 1 and s.hit_at_1 <= s.mrr <= 1
    # the evidence of these questions is in the index: hybrid finds most of it in the top 5
    assert rep.modes["hybrid"].hit_at_5 >= 0.6
    for row in rep.details:
        rank = row["hybrid"]
        h5 = 1 <= rank <= 5
        assert isinstance(rank, int) and rank >= 0
        assert h5 or rank == 0 or rank > 5


def test_eval_file_errors(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "a", "evidence": "b"}\n{broken\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2"):
        api.load_questions(bad)
    none = tmp_path / "n.jsonl"
    none.write_text('{"question": "a", "evidence": null}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="no question with an `evidence`"):
        api.load_questions(none)
    assert len(api.load_questions(QUESTIONS)) >= 40
