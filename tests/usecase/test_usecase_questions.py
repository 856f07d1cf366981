"""Candidate questions from real chunks (LanceDB + packaged embedder): extractive quality, job entry point,
and the LLM path's JSON checks, time limits and per-chunk errors."""
from __future__ import annotations

import re
import socket
import threading
import time

import pytest
from tests.usecase.uc_helpers import EXPECTED

from core.compare.scores import normalise
from core.usecase import questions as Q


def _all_chunks(uc):
    return {c["id"]: c for c in Q.collection_chunks(uc.collection)}


def test_extractive_candidates_from_real_chunks_are_grounded(lumen):
    _, uc = lumen
    chunks = _all_chunks(uc)
    res = Q.generate(chunks.values(), "extractive")
    assert res.generator == "extractive" and res.chunks == len(chunks) and res.chunks_done == len(chunks)
    assert res.errors == []
    assert len(res.candidates) >= len(EXPECTED)
    ids = [c.id for c in res.candidates]
    assert len(ids) == len(set(ids))
    for c in res.candidates:
        # every candidate keeps its source chunk, which exists in the collection, and quotes it verbatim
        assert c.chunk_id in chunks, c
        assert c.evidence in chunks[c.chunk_id]["text"]
        assert c.evidence == c.reference and c.evidence_match == "exact"
        assert c.source == chunks[c.chunk_id]["source"]
        assert c.generator == "extractive" and c.status == "pending" and c.tags == ["fact_lookup"]
        # a lookup question about the sentence's own subject, ending with one question mark
        assert c.question.endswith("?") and c.question.count("?") == 1 and c.question[0].isupper()
        assert c.subject and c.subject.lower() in c.question.lower()
        subject_words = [w for w in re.findall(r"[A-Za-z][\w-]+", c.subject) if len(w) > 3]
        assert all(w.lower() in c.evidence.lower() for w in subject_words)
        # keywords are facts of the evidence the question does not already give away
        for k in c.keywords:
            assert k in c.evidence and normalise(k) not in normalise(c.question).split()


def test_extractive_questions_for_known_sentences(lumen):
    _, uc = lumen
    res = Q.generate(_all_chunks(uc).values(), "extractive", per_chunk=10)
    by_evidence = {c.evidence: c for c in res.candidates}
    for sentence, (must, keyword) in EXPECTED.items():
        assert sentence in by_evidence, f"no question for {sentence!r}; got {list(by_evidence)}"
        c = by_evidence[sentence]
        for words in must:
            assert words in c.question.lower(), (words, c.question)
        if keyword:
            assert c.keywords[:1] == [keyword], (c.question, c.keywords)
    # a sentence whose subject is "You" gives no question (a bad question costs the reviewer time)
    assert "You can return a lamp within 30 days of delivery." not in by_evidence
    # a sentence without a fact gives none either
    assert "The warranty does not cover water damage." not in by_evidence


def test_wrapped_pdf_lines_stay_verbatim_and_clauses_are_used():
    text = ("Plan prices in detail\nCurrent costs €14 per staff member per month when billed monthly, or €12 per "
            "staff member\nper month when billed annually.\nImport your clients from a CSV file; one file can hold up "
            "to 5,000 rows.")
    chunk = {"id": "x" * 64, "doc_id": "p.pdf", "source": "p.pdf", "heading": "", "text": text, "position": 0}
    got = {c.question: c for c in Q.extractive_candidates(chunk, per_chunk=5)}
    q = "How much does Current cost per staff member per month when billed monthly?"
    assert q in got and "\n" in got[q].evidence and got[q].evidence in text and got[q].keywords == ["14"]
    assert "How many rows can one file hold?" in got
    assert got["How many rows can one file hold?"].keywords == ["5,000"]


def test_run_merges_candidates_and_reports_progress(copy_of):
    uc = copy_of
    seen = []

    class Rec(Q.ConsoleReport):
        def __call__(self, **fields):
            seen.append(fields)

    out = Q.run({"usecase": uc.name, "generator": "extractive"}, Rec())
    from core.usecase import review
    cands = review.load_candidates(uc)
    assert out["candidates"] == len(cands) == out["total_candidates"] > 0
    progress = [f["progress"] for f in seen if "progress" in f]
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    # a second run adds nothing new (same chunks, same ids) and keeps the review state
    review.set_status(uc, [cands[0].id], "accepted")
    out2 = Q.run({"usecase": uc.name, "generator": "extractive"}, Rec())
    again = review.load_candidates(uc)
    assert out2["candidates"] == 0 and len(again) == len(cands)
    assert {c.id: c.status for c in again}[cands[0].id] == "accepted"


def test_run_refuses_the_read_only_demo_and_an_empty_collection(lumen):
    from core.errors import UseCaseError
    from core.usecase import workspace

    with pytest.raises(UseCaseError, match="read-only"):
        Q.run({"usecase": "tidewave"}, Q.ConsoleReport())
    empty = workspace.create_usecase("nodocs", collection="nodocs_empty")
    with pytest.raises(Exception) as err:
        Q.run({"usecase": empty.name, "generator": "extractive"}, Q.ConsoleReport())
    assert "nodocs_empty" in str(err.value)


# --- LLM path --------------------------------------------------------------------------------------------------
CHUNK = {"id": "c" * 64, "doc_id": "app.txt", "source": "app.txt", "heading": "", "position": 0,
         "text": "The pairing code is valid for 10 minutes. A scene holds up to 12 lamps."}


def test_parse_llm_reply_checks_evidence_verbatim():
    reply = ('{"questions": [{"question": "How long is the pairing code valid?", "answer": "10 minutes", '
             '"evidence": "The pairing code is valid for 10 minutes."}, '
             '{"question": "How many lamps fit in a scene?", "answer": "12", "evidence": "a SCENE holds up to 12 lamps"}, '
             '{"question": "What colour is the lamp?", "answer": "white", "evidence": "The lamp is white."}]}')
    cands, problems = Q.parse_llm_reply(reply, CHUNK, "m")
    assert [c.evidence_match for c in cands] == ["exact", "normalised"]
    assert all(c.chunk_id == CHUNK["id"] and c.generator == "llm" for c in cands)
    assert cands[0].keywords == ["10"]
    assert len(problems) == 1 and "evidence not found verbatim" in problems[0]
    for bad, msg in (("", "empty reply"), ("not json at all", "invalid JSON"), ('{"items": []}', "no `questions`")):
        c, p = Q.parse_llm_reply(bad, CHUNK)
        assert c == [] and msg in p[0]


def test_llm_generator_refuses_the_built_in_model():
    from core.errors import UseCaseError
    with pytest.raises(UseCaseError, match="extractive"):
        Q.generate([CHUNK], "llm", backend_name="embedded")
    assert Q.resolve_generator("auto", "embedded") == "extractive"
    assert Q.resolve_generator("auto", "openai") == "llm"


def test_llm_backend_down_fails_fast_with_a_reason_per_chunk(monkeypatch, data_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # closed again: nobody listens there
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("WORKBENCH_OPENAI_MODEL", "m")
    t0 = time.perf_counter()
    res = Q.generate([CHUNK, {**CHUNK, "id": "d" * 64}], "llm", backend_name="openai", timeout_s=5)
    assert time.perf_counter() - t0 < 5
    assert res.candidates == [] and len(res.errors) == 2
    assert "backend unavailable" in res.errors[0].error and "skipped" in res.errors[1].error


def test_llm_hanging_server_times_out_per_chunk(monkeypatch, data_dir):
    """A server that accepts the connection and never answers: every chunk gets a timeout error, the batch ends."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
                conns.append(c)           # read nothing, answer nothing
            except OSError:
                continue

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{srv.getsockname()[1]}/v1")
        monkeypatch.setenv("WORKBENCH_OPENAI_MODEL", "m")
        chunks = [CHUNK, {**CHUNK, "id": "e" * 64}]
        t0 = time.perf_counter()
        res = Q.generate(chunks, "llm", backend_name="openai", timeout_s=1.5)
        took = time.perf_counter() - t0
        assert took < 2 * 1.5 + 3, took
        assert res.candidates == [] and len(res.errors) == 2
        assert all("within 1.5 s" in e.error for e in res.errors)
        assert res.to_dict()["chunks_done"] == 2
    finally:
        stop.set()
        for c in conns:
            c.close()
        srv.close()


@pytest.mark.slow
def test_llm_generator_against_a_real_openai_compatible_server(tmp_path, monkeypatch, data_dir):
    """llama-cpp-python's server on the packaged SmolLM2 under a JSON schema: a tiny model, so most items fail
    the verbatim-evidence check; each chunk ends with candidates whose evidence is in it, or a clear error."""
    import sys

    from conftest import free_port, run_server

    from core.llm.models import packaged_gguf_path

    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_gguf_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--model_alias", "smollm2"]
    with run_server(cmd, f"http://127.0.0.1:{port}/docs", tmp_path / "server.log", timeout=60):
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
        chunks = [CHUNK, {**CHUNK, "id": "f" * 64, "text": "Refunds are issued within 5 business days."}]
        res = Q.generate(chunks, "llm", backend_name="openai", per_chunk=1, timeout_s=90)
    assert res.model == "smollm2" and res.chunks_done == 2
    failed = {e.chunk_id for e in res.errors}
    by_chunk = {c.chunk_id for c in res.candidates}
    assert failed | by_chunk == {c["id"] for c in chunks}     # every chunk: candidates or a reason
    for e in res.errors:
        assert e.error and "nan" not in e.error.lower()
    texts = {c["id"]: c["text"] for c in chunks}
    for c in res.candidates:
        assert Q.evidence_match(c.evidence, texts[c.chunk_id]) in ("exact", "normalised")


def test_a_cancel_stops_between_chunks_and_keeps_what_was_made(copy_of):
    from core.usecase import review

    class StopAfterOne(Q.ConsoleReport):
        calls = 0

        def __call__(self, **fields):
            if str(fields.get("message", "")).startswith("chunk "):
                StopAfterOne.calls += 1

        def cancel_requested(self):
            return StopAfterOne.calls >= 1

    from core.jobs import Cancelled

    # the job ends cancelled (core.jobs' vocabulary), after saving what the first chunk gave
    with pytest.raises(Cancelled, match=r"cancelled after 1/\d+ chunk\(s\); (\d+) new candidate\(s\) saved") as ei:
        Q.run({"usecase": copy_of.name, "generator": "extractive", "per_chunk": 10}, StopAfterOne())
    made = review.load_candidates(copy_of)
    assert made and len({c.chunk_id for c in made}) == 1
    assert f"; {len(made)} new candidate(s) saved" in str(ei.value)
