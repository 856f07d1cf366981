"""A run's evidence: paired differences per tag, repeats, the stored advice checked against the measurement, and
the report sections (Markdown and HTML) on hand-made answers in a real run folder."""
from __future__ import annotations

import pytest

from core import advisor as ADV
from core.compare import evidence as E
from core.compare import ratings as R
from core.compare import report, runner
from core.compare.runner import RunData
from core.errors import CompareError
from core.safe_text import unescape_markdown
from tests.compare.run_helpers import add_answer, make_run


def test_answer_ids_round_trip():
    assert E.answer_id("q01", "prompt_rag", 2) == "q01/prompt_rag/2"
    assert E.parse_answer_id("q01/prompt_rag/2") == ("q01", "prompt_rag", 2)
    assert E.repeat_of({"qid": "q01"}) == 0
    for bad in ("q01/prompt_rag", "q01//0", "q01/a/x", ""):
        with pytest.raises(CompareError):
            E.parse_answer_id(bad)


@pytest.fixture
def measured_run(data_dir):
    """'short' is better than 'prompt_only' by exactly 0.2 on every question."""
    rid, qs = make_run(10)
    for i, q in enumerate(qs):
        base = 0.2 + 0.04 * i
        add_answer(rid, q.id, "prompt_only", base, grade=2)
        add_answer(rid, q.id, "short", base + 0.2 + (0.02 if i % 2 else -0.02), grade=4)
    return rid, qs


def test_paired_table_overall_and_per_tag(measured_run):
    rid, qs = measured_run
    run = runner.load_run(rid)
    diffs = E.paired_table(run)
    overall = [d for d in diffs if d.label == E.ALL]
    assert len(overall) == 1
    d = overall[0]
    assert (d.a, d.b, d.n) == ("prompt_only", "short", 10) and d.mean == pytest.approx(0.2)
    assert d.separated and d.winner == "short"
    tags = {t for q in qs for t in q.tags}
    assert {x.label for x in diffs} == {E.ALL} | tags
    for x in diffs:
        if x.label != E.ALL:
            assert x.n == sum(1 for q in qs if x.label in q.tags)


def test_advice_stored_with_a_run_is_checked_in_the_report(measured_run):
    rid, _ = measured_run
    d = runner.run_dir(rid)
    rec = ADV.advise(ADV.Questionnaire())                      # nothing needed: start with the prompt only
    path = ADV.attach_advice(d, rec)
    assert path == d / ADV.ADVICE_FILE
    assert ADV.load_advice(d).to_dict() == rec.to_dict()
    R.add_rating(d, f"{runner.load_run(rid).questions[0].id}/short/0", "ana", "good", note="<script>x</script>")
    # the Markdown report escapes every piece of text (issue 14): read it back as text
    md = unescape_markdown(report.export(rid, "md").read_text(encoding="utf-8"))
    assert "## Advisor vs measured" in md
    assert "Prompt engineering only (prompt_only)" in md
    # 'short' (also a plain prompt, but not what the advice pointed to) is clearly better than the advised start
    assert "Measured verdict: contradicted." in md and "short beats prompt_only by 0.20" in md
    assert "## Paired differences between approaches" in md
    assert "## Judge agreement with people" in md and "1 ratings of 1 answers by 1 rater(s)" in md
    assert "## Repeat spread" not in md                            # no repeats in this run
    html = report.export(rid, "html").read_text(encoding="utf-8")
    assert "<h2>Advisor vs measured</h2>" in html and "<h2>Judge agreement with people</h2>" in html
    assert "<script>x</script>" not in html


def test_runs_without_advice_or_ratings_leave_those_sections_out(measured_run):
    rid, _ = measured_run
    titles = [s["title"] for s in report.evidence_sections(runner.load_run(rid))]
    assert titles == ["Paired differences between approaches"]
    with pytest.raises(CompareError):
        ADV.attach_advice(runner.run_dir(rid).parent, ADV.advise(ADV.Questionnaire()))


def test_repeated_answers_give_spread_and_repeat_aware_intervals(data_dir):
    """Repeats stored as the runner is to store them: one record per (question, approach, repeat)."""
    rid, qs = make_run(6)
    spread = [0.0, 0.3, -0.3]
    for i, q in enumerate(qs):
        for r in range(3):
            add_answer(rid, q.id, "prompt_only", 0.3 + 0.1 * i + spread[r] * (i % 2), repeat=r)
            add_answer(rid, q.id, "short", 0.4 + 0.1 * i, repeat=r)
    base = runner.load_run(rid)
    import json
    results = [json.loads(line) for line in (base.dir / "results.jsonl").read_text().splitlines()]
    spec = dict(base.spec, params=dict(base.spec["params"], repeats=3))
    run = RunData(rid, base.dir, spec, base.status, results)
    assert E.n_repeats(run) == 3 and len(E.ok_answers(run)) == 36
    vals = E.values(run, "prompt_only")
    assert all(len(v) == 3 for v in vals.values())
    rows = {r["approach"]: r for r in E.spread_rows(run)}
    assert rows["prompt_only"]["changed"] == 3 and rows["short"]["changed"] == 0
    assert rows["prompt_only"]["repeats"] == 3
    top = E.question_spread_rows(run)
    assert top[0]["approach"] == "prompt_only" and top[0]["max"] - top[0]["min"] == pytest.approx(0.6)
    titles = [s["title"] for s in E.report_sections(run)]
    assert "Repeat spread" in titles
    md = "\n".join(report._md_sections(E.report_sections(run)))
    assert "repeats resampled" in md and "naive CI" in md
    # ratings key on the repeat: repeat 2 of an answer is its own answer to rate
    R.add_rating(base.dir, f"{qs[1].id}/prompt_only/2", "ana", "bad")
    assert R.latest(base.dir)[0].repeat == 2
