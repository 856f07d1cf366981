"""Summary, baseline diff, decision rules and report rendering on hand-made stored answers (no model needed)."""
from __future__ import annotations

import json

from core import jobs
from core.compare import approach as A
from core.compare import report, runner
from core.compare.cost import CostModel
from core.scenario import Question

QS = [Question("q1", "Invite valid?", "Seven days", tags=["fact_lookup"]),
      Question("q2", "Say hi <b>", "Ahoy", tags=["brand_voice"])]


def _record(qid, approach, quality, answer="ok", latency=1.0, ptok=100):
    return {"qid": qid, "approach": approach, "ok": True, "answer": answer, "quality": quality,
            "latency_s": latency, "ttft_s": latency / 4, "retrieval_s": 0.0, "prompt_tokens": ptok,
            "completion_tokens": 20, "usage": {"latency_s": latency}, "prompt": "zero_shot@1", "model_id": "m",
            "scores": {"similarity": {"value": quality, "reason": "hand-made"},
                       "judge": {"value": None, "reason": "judge returned invalid JSON: 'oops'"}}}


def _run(data_dir, records, names=("short", "long"), baseline=None):
    specs = [A.ApproachSpec(names[0], prompt="zero_shot"), A.ApproachSpec(names[1], prompt="few_shot")]
    run_id = runner.create_run(specs, QS, baseline=baseline)
    d = runner.run_dir(run_id)
    for r in records:
        jobs.append_jsonl(d / "results.jsonl", r)
    folder = jobs.RunFolder(d)
    folder.write_status({**folder.read_status(), "state": "succeeded", "done": len(records), "total": 4,
                         "errors": 0, "message": "finished"})
    return run_id


def test_diff_decision_and_escaped_reports(data_dir):
    base = _run(data_dir, [_record("q1", "short", 0.2), _record("q2", "short", 0.9),
                           _record("q1", "long", 0.5), _record("q2", "long", 0.5)])
    evil = "<script>alert('x')</script> | pipe\nnew line"
    run_id = _run(data_dir, [_record("q1", "short", 0.8, evil), _record("q2", "short", 0.5),
                             _record("q1", "long", 0.85, latency=3.0, ptok=900),
                             _record("q2", "long", 0.52, latency=3.0, ptok=900)], baseline=base)
    run, summary = report.build(run_id)
    counts = summary["diff"]["counts"]
    assert counts["short"] == {"vs": "short", "better": 1, "worse": 1, "same": 0, "missing": 0}
    assert counts["long"]["better"] == 1 and counts["long"]["same"] == 1
    d = summary["decision"]
    assert d["accuracy"]["winner"] == "long"                       # 0.685 vs 0.65 mean quality
    assert "intervals overlap" in d["accuracy"]["text"]
    assert d["latency"]["winner"] == "short" and d["cost"]["winner"] == "short"
    assert d["overall"]["winner"] == "short"                       # within 0.05 of the best and simpler/cheaper
    assert "within 0.05" in d["overall"]["rule"]
    tags = {row["tag"] for row in d["accuracy"]["by_tag"]}
    assert tags == {"fact_lookup", "brand_voice"}
    sums = {s.name: s for s in summary["approaches"]}
    assert sums["short"].scores["judge"].n == 0 and sums["short"].scores["judge"].mean is None   # n/a, not NaN

    html_text = report.render_html(run, summary)
    assert "<script>alert" not in html_text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html_text
    assert "Say hi &lt;b&gt;" in html_text and "Say hi <b>" not in html_text
    md = report.render_markdown(run, summary)
    assert "&lt;script&gt;" in md and "\\| pipe new line" in md and "<script>" not in md
    assert f"Against baseline run `{base}`" in md
    path = report.export(run_id, "md", data_dir / "r.md", CostModel(mode="gpu", gpu_per_hour=3.6))
    assert "self-hosted" in path.read_text()


def test_cut_last_line_is_skipped_and_next_append_starts_fresh(data_dir):
    run_id = _run(data_dir, [_record("q1", "short", 0.5)])
    d = runner.run_dir(run_id)
    with open(d / "results.jsonl", "a") as fh:
        fh.write('{"qid": "q2", "approach": "sh')               # a kill in the middle of a write
    assert [r["qid"] for r in runner.load_run(run_id).results] == ["q1"]
    jobs.append_jsonl(d / "results.jsonl", _record("q2", "short", 0.7))
    assert sorted(r["qid"] for r in runner.load_run(run_id).results) == ["q1", "q2"]
    lines = (d / "results.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["qid"] == "q2"


def test_errored_answer_is_superseded_by_a_later_success(data_dir):
    run_id = _run(data_dir, [{"qid": "q1", "approach": "short", "ok": False, "error": "backend down"},
                             _record("q1", "short", 0.4)])
    (rec,) = runner.load_run(run_id).results
    assert rec["ok"] and rec["quality"] == 0.4


def test_cached_report_is_built_once_and_rebuilt_when_the_run_changes(data_dir):
    run_id = _run(data_dir, [_record("q1", "short", 0.5), _record("q1", "long", 0.6)])
    first = report.cached(run_id, "html")
    built = first.stat().st_mtime_ns
    assert "Plotly.newPlot" in first.read_text() and not list(first.parent.glob(".report.html.*.tmp"))
    assert report.cached(run_id, "html").stat().st_mtime_ns == built            # unchanged run: not rebuilt
    jobs.append_jsonl(runner.run_dir(run_id) / "results.jsonl", _record("q2", "short", 0.9, answer="fresh"))
    again = report.cached(run_id, "html")
    assert again.stat().st_mtime_ns != built and "fresh" in again.read_text()   # a new answer: rebuilt
    md = report.cached(run_id, "md", CostModel(mode="gpu", gpu_per_hour=3.6))
    assert "self-hosted" in md.read_text()
    assert "self-hosted" not in report.cached(run_id, "md").read_text()         # another cost model: rebuilt
