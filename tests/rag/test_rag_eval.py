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


def test_alternative_evidence_counts_and_rank_is_the_first_hit():
    from types import SimpleNamespace

    from core.rag.evaluate import ModeScore, rank_of
    q = {"question": "q", "evidence": "the history keeps five hundred commands", "source": "9.1-history.txt",
         "alternatives": [{"evidence": "HISTSIZE defaults to five hundred", "source": "5.2-variables.txt"}]}
    other = SimpleNamespace(text="nothing relevant here", source="x.txt", doc_id="x.txt")
    alt = SimpleNamespace(text="HISTSIZE: the shell sets it; defaults to five hundred.", source="5.2-variables.txt",
                          doc_id="5.2-variables.txt")
    wrong_file = SimpleNamespace(text=alt.text, source="other.txt", doc_id="other.txt")
    assert rank_of([other, alt], q) == 2
    assert rank_of([other, wrong_file], q) == 0
    assert rank_of([other] * 10 + [alt], q) == 0                      # only the top 10 count
    s = ModeScore.from_ranks("m", [1, 2, 0, 5])
    assert (s.hit_at_1, s.hit_at_5) == (0.25, 0.75) and s.mrr == pytest.approx((1 + 0.5 + 0.2) / 4)


def test_sweep_chart_from_recorded_measurements():
    from core.rag.evaluate import chunk_sweep_figure, chunk_sweep_frame, measured_defaults
    data = {"defaults": {"chunk_size": 200, "overlap": 32},
            "sweep": [{"set": s, "size": z, "overlap": o, "chunks": 10,
                       "hybrid": {"hit@1": 0.5, "mrr@10": 0.6}, "vector": {"hit@1": 0.4, "mrr@10": 0.5},
                       "fts": {"hit@1": 0.3, "mrr@10": 0.4}}
                      for s in ("scenario", "bashref") for z in (128, 200) for o in (0, 32)]}
    df = chunk_sweep_frame(data)
    assert len(df) == 8 * 3 * 2 and set(df["setting"]) == {"128/0", "128/32", "200/0", "200/32"}
    fig = chunk_sweep_figure(data)
    assert fig is not None and len(fig.data) == 2 * 2 * 2            # overlap x metric lines per set facet
    assert chunk_sweep_figure({}) is None
    rec = measured_defaults()                                          # what the bench recorded in the repo
    from core.rag.chunkers import DEFAULT_OVERLAP, DEFAULT_SIZE
    from core.rag.retriever import fusion_config
    assert (rec["defaults"]["chunk_size"], rec["defaults"]["overlap"]) == (DEFAULT_SIZE, DEFAULT_OVERLAP)
    assert rec["defaults"]["fusion_weight"] == fusion_config().weight and rec["defaults"]["fusion"] == "linear"
    assert set(rec["main"]) == {"scenario", "bashref"} and rec["sweep"]
    assert chunk_sweep_figure() is not None
