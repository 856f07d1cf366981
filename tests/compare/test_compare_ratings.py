"""Human ratings in a real run folder: append-only storage, latest-wins reading, export, and the judge's
agreement with people on a hand-computed case."""
from __future__ import annotations

import json

import pytest

from core.compare import ratings as R
from core.compare import runner
from core.errors import RatingError
from tests.compare.run_helpers import add_answer, judge_score, make_run


@pytest.fixture
def run8(data_dir):
    rid, qs = make_run(8)
    for i, q in enumerate(qs):
        add_answer(rid, q.id, "prompt_only", 0.3 + 0.05 * i, grade=3)
        add_answer(rid, q.id, "short", 0.5, grade=3)
    return rid, [q.id for q in qs]


def test_ratings_are_append_only_and_the_latest_per_rater_wins(run8):
    rid, qids = run8
    d = runner.run_dir(rid)
    a0 = f"{qids[0]}/prompt_only/0"
    R.add_rating(d, a0, "ana", "bad", note="misses the price")
    first = (d / R.RATINGS_FILE).read_bytes()
    R.add_rating(d, a0, "bob", grade=4)
    R.add_rating(d, a0, "ana", "good", 5, note="on second reading it is right")
    raw = (d / R.RATINGS_FILE).read_bytes()
    assert raw.startswith(first) and raw.count(b"\n") == 3          # nothing rewritten, one line per action
    # a fresh read from disk (as after a page refresh) gives the same standing ratings
    standing = {(r.rater, r.answer_id): r for r in R.latest(d)}
    assert set(standing) == {("ana", a0), ("bob", a0)}
    assert standing[("ana", a0)].label == "good" and standing[("ana", a0)].grade == 5
    assert standing[("ana", a0)].note == "on second reading it is right"
    assert standing[("bob", a0)].score == pytest.approx(0.75) and standing[("bob", a0)].binary == "good"
    hist, bad = R.history(d)
    assert [h.rater for h in hist] == ["ana", "bob", "ana"] and bad == 0
    assert all(h.at > 0 for h in hist)
    R.clear_rating(d, a0, "bob")
    assert [r.rater for r in R.latest(d)] == ["ana"] and len(R.history(d)[0]) == 4


@pytest.mark.parametrize("kwargs, msg", [
    (dict(rater="", label="good"), "rater's name"),
    (dict(rater="ana"), "good/bad"),
    (dict(rater="ana", grade=6), "1 to 5"),
    (dict(rater="ana", label="great"), "'good' or 'bad'"),
    (dict(rater="ana", label="good", note="x" * 2001), "at most"),
])
def test_bad_ratings_raise_and_write_nothing(run8, kwargs, msg):
    rid, qids = run8
    d = runner.run_dir(rid)
    with pytest.raises(RatingError, match=msg):
        R.add_rating(d, f"{qids[0]}/short/0", **kwargs)
    assert not (d / R.RATINGS_FILE).exists()


def test_unknown_answers_cannot_be_rated(run8):
    rid, qids = run8
    d = runner.run_dir(rid)
    with pytest.raises(RatingError, match="no answer"):
        R.add_rating(d, f"{qids[0]}/short/3", "ana", "good")          # no repeat 3
    with pytest.raises(Exception, match="not an answer id"):
        R.add_rating(d, "q01-short", "ana", "good")
    assert not (d / R.RATINGS_FILE).exists()


def test_a_line_cut_by_a_kill_is_skipped_and_the_next_rating_stays_readable(run8):
    rid, qids = run8
    d = runner.run_dir(rid)
    R.add_rating(d, f"{qids[0]}/short/0", "ana", "good")
    with open(d / R.RATINGS_FILE, "a", encoding="utf-8") as fh:
        fh.write('{"answer_id": "q01/short/0", "rater": "ana", "lab')       # no newline: the writer died
    R.add_rating(d, f"{qids[1]}/short/0", "ana", "bad")
    hist, bad = R.history(d)
    assert bad == 1 and [h.answer_id for h in hist] == [f"{qids[0]}/short/0", f"{qids[1]}/short/0"]


def test_judge_agreement_parse_failures_and_human_scores_by_hand(data_dir):
    rid, qs = make_run(8)
    q = [x.id for x in qs]
    d = runner.run_dir(rid)
    # (human label, judge grade) for 8 answers: agreement on 6 of 8; both sides 4 good / 4 bad
    #   -> accuracy 0.75, p_e = 0.5, kappa = 0.5
    pairs = [("good", 5), ("good", 4), ("good", 2), ("bad", 1), ("bad", 2), ("bad", 5), ("good", 5), ("bad", 1)]
    for i, (_, g) in enumerate(pairs):
        add_answer(rid, q[i], "prompt_only", 0.4, grade=g)
    add_answer(rid, q[0], "short", 0.6, judge=judge_score(None))                          # parse failure
    add_answer(rid, q[1], "short", 0.6, judge=judge_score(None, "judge returned an empty reply"))
    add_answer(rid, q[2], "short", 0.6, judge=judge_score(None, "judge failed: backend down"))
    add_answer(rid, q[3], "short", 0.6, grade=5)
    for i, (lab, _) in enumerate(pairs):
        R.add_rating(d, f"{q[i]}/prompt_only/0", "ana", "bad" if i == 2 else lab)
    R.add_rating(d, f"{q[2]}/prompt_only/0", "ana", "good")        # changed her mind: the latest counts
    R.add_rating(d, f"{q[0]}/short/0", "ana", "good")              # judge could not grade it: not paired
    R.add_rating(d, f"{q[3]}/short/0", "ana", "good")              # a tie between two people: no majority
    R.add_rating(d, f"{q[3]}/short/0", "bob", "bad")
    run = runner.load_run(rid)
    ag = R.agreement(run)
    assert (ag.n, ag.accuracy, ag.kappa) == (8, pytest.approx(0.75), pytest.approx(0.5))
    pf = R.parse_failures(run)
    assert pf == {"judged": 12, "parse_failures": 2, "other_failures": 1, "rate": pytest.approx(2 / 12)}
    rep = R.judge_report(run)
    assert "κ = 0.50, n = 8" in rep["text"] and "2 of 12 answers (17%)" in rep["text"]
    assert "failed for 1 more" in rep["text"] and "agrees only moderately" in rep["text"]
    rows = {r["approach"]: r for r in rep["by_approach"]}
    assert rows["prompt_only"]["rated answers"] == 8
    assert rows["prompt_only"]["human score"].startswith("0.50 [")   # 4 good of 8
    assert rows["short"]["rated answers"] == 2 and rows["short"]["human score"].startswith("0.75")
    assert rows["prompt_only"]["quality (all)"] == pytest.approx(0.4)


def test_labelled_export(run8):
    rid, qids = run8
    d = runner.run_dir(rid)
    R.add_rating(d, f"{qids[0]}/prompt_only/0", "ana", "good", 4, note="fine <b>really</b>")
    R.add_rating(d, f"{qids[1]}/short/0", "bob", grade=2)
    run = runner.load_run(rid)
    path = R.export_labelled(run, d.parent / "out" / "labels.jsonl")
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["answer_id"], r["rater"], r["label"]) for r in recs] == [
        (f"{qids[0]}/prompt_only/0", "ana", "good"), (f"{qids[1]}/short/0", "bob", "bad")]
    q0 = next(x for x in run.questions if x.id == qids[0])
    assert recs[0]["question"] == q0.question and recs[0]["reference"] == q0.reference
    assert recs[0]["answer"] == f"Answer to {qids[0]} by prompt_only." and recs[0]["note"] == "fine <b>really</b>"
    assert recs[1]["human_score"] == pytest.approx(0.25) and recs[1]["given_label"] is None
    assert recs[0]["judge_score"] == pytest.approx(0.5) and recs[0]["rated_at"].endswith("Z")
    assert R.labelled_jsonl(run) == path.read_text(encoding="utf-8")
