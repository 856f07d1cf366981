"""answer() with the real embedded backend (packaged GGUF) and the CLI commands."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli import main
from core.llm.base import ChatStream
from core.rag import api

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_answer_with_citations_records_version(kb):
    res = api.answer("How much does an SMS top-up pack cost?", "kb", params={"max_tokens": 80, "temperature": 0.2})
    assert res.text.strip()
    assert res.usage.completion_tokens > 0 and res.usage.prompt_tokens > 0
    assert res.usage.prompt_tokens + 80 <= res.usage.n_ctx or res.usage.n_ctx == 0
    assert 1 <= res.chunks_used <= 4
    assert res.table_version == api.get_collection("kb").table_version
    assert res.citations == api.check_citations(res.text, res.chunks_used)
    assert res.prompt == "guardrail"
    ctx = res.messages[-1]["content"]
    assert "[1] (" in ctx and "How much does an SMS top-up pack cost?" in ctx
    d = res.to_dict()
    assert d["table_version"] == res.table_version and len(d["retrieved_ids"]) == res.chunks_used


@pytest.mark.slow
def test_answer_stream(kb):
    s = api.answer("Which plan includes webhooks?", "kb", k=2, params={"max_tokens": 40}, stream=True)
    assert isinstance(s.stream, ChatStream) and s.retrieval.chunks
    text = "".join(s)
    res = s.result()
    assert res.text == text and res.usage is not None and res.chunks_used <= 2


def test_cli_ingest_search_eval_json(data_dir, small_corpus, capsys):
    assert main(["ingest", str(small_corpus / "error-codes.txt"), str(ROOT / "tests/fixtures/bad/empty.txt"),
                 "--collection", "cli", "--json"]) == 1            # one file failed -> exit 1, rest ingested
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] == 1 and out["failed"] == 1
    assert {f["file"]: f["ok"] for f in out["files"]} == {"error-codes.txt": True, "empty.txt": False}

    assert main(["search", "Google Calendar quota", "--collection", "cli", "--mode", "fts", "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "fts" and out["chunks"][0]["source"] == "error-codes.txt"
    assert out["chunks"][0]["text"] and out["table_version"] >= 1 and out["chunks"][0]["score"] > 0

    qfile = data_dir / "q.jsonl"
    qfile.write_text(json.dumps({"id": "x", "question": "What does TW-4020 mean?", "source": "knowledge/error-codes.txt",
                                 "evidence": "Google Calendar temporarily refused requests because of its quota."}) + "\n")
    assert main(["rag-eval", "--collection", "cli", "--questions", str(qfile), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["modes"]) == {"vector", "fts", "hybrid"} and out["modes"]["fts"]["hit_at_1"] == 1.0

    assert main(["search", "x", "--collection", "missing", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["error"] == "CollectionNotFound"


@pytest.mark.slow
def test_cli_ask_json(kb, capsys):
    assert main(["ask", "What does error TW-4020 mean?", "--collection", "kb", "--max-tokens", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["answer"].strip() and out["retrieved_ids"] and out["table_version"] >= 1
    assert out["usage"]["completion_tokens"] > 0 and "cited" in out["citations"]


@pytest.mark.slow
def test_sample_collection_is_idempotent(data_dir):
    assert api.ensure_sample_collection() == "support"
    info = api.get_collection("support")
    assert info.documents >= 15
    v = info.table_version
    assert api.ensure_sample_collection() == "support"
    assert api.get_collection("support").table_version == v
