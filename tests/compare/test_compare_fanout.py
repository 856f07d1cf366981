"""Fan-out of batch comparisons to server backends (core/compare/runner.py): against the OpenAI-compatible TEST DOUBLE
(tests/fixtures/openai_double.py) in its LATENCY SIMULATION mode (a fixed sleep per streamed token, each request
in its own server thread), a run with 4 requests in flight stores the same records as a sequential one, stops and
resumes mid-run, and stops as failed when the server dies under it. Plus the order a batch answers in
(batch_plan: the embedded model's prompts grouped by approach) and the setting's validation."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port, wait_http
from core.compare import approach as A
from core.compare import runner
from core.errors import CompareError, ConfigError
from core.scenario import Question

DOUBLE = ROOT / "tests" / "fixtures" / "openai_double.py"
TOKEN_MS = 15          # latency simulation: per streamed chunk; an answer here is ~16 chunks, ~0.25 s


class Double:
    """The test double in its own process on a free port (or a given one, to restart it after a kill)."""

    def __init__(self, tmp_path: Path, *args: str, port: int | None = None):
        self.port = port or free_port()
        self.log = open(tmp_path / f"double-{self.port}-{time.time_ns()}.log", "w")
        self.proc = subprocess.Popen([sys.executable, str(DOUBLE), str(self.port), "--echo",
                                      "--latency-sim-token-ms", str(TOKEN_MS), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.port}/v1/models", timeout=30)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def double(tmp_path, data_dir, monkeypatch):
    d = Double(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{d.port}/v1")
    monkeypatch.setenv("WORKBENCH_OPENAI_MODEL", "double")
    yield d
    d.close()


def _questions(n: int) -> list[Question]:
    return [Question(id=f"q{i:02d}", question=f"Question number {i}: when does the quota reset?",
                     reference="The quota resets on the first day of each month.") for i in range(1, n + 1)]


def _specs() -> list[A.ApproachSpec]:
    return [A.ApproachSpec("short", "double", "zero_shot", backend="openai"),
            A.ApproachSpec("shots", "double", "few_shot", backend="openai")]


STABLE = ("qid", "approach", "repeat", "ok", "answer", "prompt", "params", "seed", "backend", "model_id",
          "prompt_tokens", "completion_tokens", "quality", "scores")


def _stable(run_id: str) -> list[dict]:
    """The stored records without their timings (which differ run to run), in the spec's order."""
    return [{k: r.get(k) for k in STABLE} for r in runner.load_run(run_id).results]


def _lines(run_id: str) -> list[dict]:
    text = (runner.run_dir(run_id) / "results.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(x) for x in text.splitlines()]           # every line is a whole record


@pytest.mark.slow
def test_concurrent_run_stores_the_same_records_as_a_sequential_one(double):
    qs = _questions(6)
    seq = runner.create_run(_specs(), qs, name="seq", max_tokens=64, seed=3, concurrency=1)
    con = runner.create_run(_specs(), qs, name="con", max_tokens=64, seed=3, concurrency=4)
    t = time.perf_counter()
    st = runner.run_batch(runner.run_dir(seq))
    t_seq = time.perf_counter() - t
    assert st["state"] == "succeeded" and st["done"] == 12 and st["concurrency"] == 1, st
    peak = []

    def watch(rec, status):
        peak.append(status.get("in_flight", 0))

    t = time.perf_counter()
    st = runner.run_batch(runner.run_dir(con), on_record=watch)
    t_con = time.perf_counter() - t
    assert st["state"] == "succeeded" and st["done"] == 12 and st["errors"] == 0 and st["concurrency"] == 4, st
    a, b = _stable(seq), _stable(con)
    assert a == b and len(a) == 12
    assert all(r["ok"] and "You asked: " in r["answer"] and r["quality"] is not None for r in b)
    assert len({r["answer"] for r in b if r["approach"] == "short"}) == 6     # one answer per question, not mixed
    assert max(peak) >= 3                       # several requests really were in flight
    # per-answer timing is each request's own (~16 chunks x 15 ms), not a share of the batch's wall time
    recs = runner.load_run(con).results
    assert all(0.15 < r["latency_s"] < t_con and 0 < r["ttft_s"] < r["latency_s"] for r in recs)
    starts = sorted(r["started"] for r in recs)
    assert starts[3] - starts[0] < min(r["latency_s"] for r in recs)         # the first four overlapped
    assert t_con < t_seq / 2, (t_seq, t_con)
    assert len(_lines(con)) == 12


@pytest.mark.slow
def test_stop_and_resume_mid_run_with_requests_in_flight(double):
    qs = _questions(8)
    rid = runner.create_run(_specs(), qs, name="stop", max_tokens=64, seed=3, concurrency=4)
    seen = []

    def stop_after_three(rec, status):
        seen.append(rec)
        if len(seen) == 3:
            runner.request_stop(rid, signal_worker=False)

    st = runner.run_batch(runner.run_dir(rid), on_record=stop_after_three, score=False)
    assert st["state"] == "cancelled" and "resume" in st["message"], st
    # the answers already in flight when the stop came finished and were kept; nothing new started
    # (the stop is requested from on_record, which the single writer thread calls; under load it can lag the
    # finished answers by a few, each of which already freed a slot: at most 4 in flight + 4 queued for writing)
    assert 3 <= st["done"] <= 3 + 2 * 4 and st["done"] < 16 and st["errors"] == 0, st
    first = {(r["qid"], r["approach"]): r for r in _lines(rid)}
    assert len(first) == st["done"] == len(_lines(rid))
    assert runner.can_resume(runner.read_status(runner.run_dir(rid)))

    st = runner.run_batch(runner.run_dir(rid), score=False)
    assert st["state"] == "succeeded" and st["done"] == 16 and st["resumed_from"] == len(first), st
    lines = _lines(rid)
    assert len(lines) == 16 and len({(r["qid"], r["approach"]) for r in lines}) == 16     # nothing redone
    run = runner.load_run(rid)
    for key, rec in first.items():
        assert run.result(*key)["started"] == rec["started"]
    assert [(r["qid"], r["approach"]) for r in run.results] == [(q.id, a) for q in qs for a in ("short", "shots")]

    ref = runner.create_run(_specs(), qs, name="ref", max_tokens=64, seed=3, concurrency=1)
    runner.run_batch(runner.run_dir(ref), score=False)
    assert _stable(ref) == _stable(rid)


@pytest.mark.slow
def test_server_dying_under_concurrent_requests_stops_the_run_and_resume_finishes(tmp_path, double, monkeypatch):
    """The double serves 5 requests, dies in the 6th: every request in flight fails, the run stops as failed
    after MAX_BACKEND_FAILURES consecutive failures (no new request starts), every stored line is whole, and a
    resume against a restarted server answers the rest."""
    double.close()
    dying = Double(tmp_path, "--die-after", "5")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{dying.port}/v1")
    try:
        qs = _questions(10)
        rid = runner.create_run(_specs(), qs, max_tokens=64, seed=3, concurrency=4)
        st = runner.run_batch(runner.run_dir(rid), score=False)
        assert dying.proc.wait(10) == 1
        assert st["state"] == "failed" and "backend stopped answering" in st["message"], st
        assert f"{st['done']}/20 answers kept" in st["message"]
        lines = _lines(rid)
        assert st["done"] <= 5 and st["errors"] >= runner.MAX_BACKEND_FAILURES
        assert len(lines) == st["done"] + st["errors"] < 20          # it stopped: the rest never started
        assert all(r.get("error") for r in lines if not r["ok"])
    finally:
        dying.close()
    again = Double(tmp_path, port=dying.port)
    try:
        st = runner.run_batch(runner.run_dir(rid), score=False)
        assert st["state"] == "succeeded" and st["done"] == 20, st
        assert all(r["ok"] for r in runner.load_run(rid).results)
    finally:
        again.close()


def test_batch_plan_groups_the_embedded_models_prompts_by_approach():
    qs = _questions(3)
    res = [A.Resolved(spec=A.ApproachSpec(n), backend=b) for n, b in
           (("emb1", "embedded"), ("srv", "openai"), ("emb2", "embedded"))]
    serial, fanout = runner.batch_plan(qs, res, 2, concurrent=lambda b: b != "embedded")
    assert [(q.id, a.name, r) for q, a, r in serial] == [
        (q, a, r) for a in ("emb1", "emb2") for q in ("q01", "q02", "q03") for r in (0, 1)]
    assert [(q.id, a.name, r) for q, a, r in fanout] == [(q, "srv", r) for q in ("q01", "q02", "q03") for r in (0, 1)]
    assert runner.serves_concurrently("openai") and runner.serves_concurrently("ollama")
    assert not runner.serves_concurrently("embedded")


def test_concurrency_setting_is_validated(data_dir, monkeypatch):
    assert runner.concurrency_of({"params": {}}) == 4
    monkeypatch.setenv("WORKBENCH_COMPARE_CONCURRENCY", "7")
    assert runner.concurrency_of({"params": {}}) == 7
    assert runner.concurrency_of({"params": {"concurrency": 2}}) == 2
    assert runner.concurrency_of({"params": {"concurrency": 2}}, 5) == 5
    for bad in (0, 33, -1, 2.5, True, "4"):
        with pytest.raises(CompareError, match="concurrency must be a whole number from 1 to 32"):
            runner.check_concurrency(bad)
    monkeypatch.setenv("WORKBENCH_COMPARE_CONCURRENCY", "many")
    with pytest.raises(ConfigError, match="compare_concurrency"):
        runner.concurrency_of({"params": {}})
    with pytest.raises(CompareError, match="concurrency"):
        runner.create_run(_specs(), _questions(1), concurrency=0)
    monkeypatch.delenv("WORKBENCH_COMPARE_CONCURRENCY")
    rid = runner.create_run(_specs(), _questions(1))          # no server needed to create a run
    assert runner.load_run(rid).spec["params"]["concurrency"] is None
    runner.set_concurrency(rid, 2)                           # what `compare --resume RUN --concurrency 2` does
    assert runner.concurrency_of(runner.load_run(rid).spec) == 2
    with pytest.raises(CompareError):
        runner.set_concurrency(rid, 99)
