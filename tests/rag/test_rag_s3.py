"""The object-store path for real: moto's standalone S3 server on loopback (started and stopped by the fixture),
WORKBENCH_LANCEDB_URI=s3://<bucket>/workbench, and ingest -> search -> ask -> a batch comparison through it.
LanceDB's object store reads AWS_ENDPOINT / AWS_ALLOW_HTTP / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION
from the environment."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import free_port, wait_http

from core.rag import api, store

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "sample_docs" / "knowledge"


@contextlib.contextmanager
def moto_s3(log_path: Path):
    """A moto S3 server on 127.0.0.1 (a free port); yields its endpoint URL and always stops it."""
    pytest.importorskip("moto", reason="moto[server] is in requirements.txt")
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/moto-api/", timeout=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    with moto_s3(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
          "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


@pytest.fixture
def s3_uri(s3_endpoint, data_dir, monkeypatch):
    """A fresh bucket on the moto server; the workbench's LanceDB location points at it. Yields (uri, s3 client)."""
    import boto3
    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT", s3_endpoint)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(k, raising=False)
    bucket = f"wb-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/workbench"
    monkeypatch.setenv("WORKBENCH_LANCEDB_URI", uri)
    yield uri, client, bucket


def keys(client, bucket: str) -> list[str]:
    out, token = [], None
    while True:
        kw = {"Bucket": bucket, **({"ContinuationToken": token} if token else {})}
        page = client.list_objects_v2(**kw)
        out += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return out
        token = page["NextContinuationToken"]


def test_ingest_and_search_on_s3(s3_uri, data_dir):
    uri, client, bucket = s3_uri
    docs = [KNOWLEDGE / "sms-reminders.md", KNOWLEDGE / "error-codes.txt", KNOWLEDGE / "plans-and-limits.md"]
    res = api.ingest_paths(docs, "s3kb")
    assert all(r.ok and r.chunks > 0 for r in res), [r.error for r in res]
    stored = keys(client, bucket)
    assert any(k.startswith("workbench/") and ".lance/" in k for k in stored), stored[:10]
    assert not (data_dir / "lancedb").exists()                      # nothing went to the local folder
    info = api.get_collection("s3kb")
    assert info.rows == sum(r.chunks for r in res) and info.documents == 3
    assert store.connect().uri == uri
    # every retrieval mode, on the bucket
    for mode in ("vector", "fts", "hybrid"):
        r = api.retrieve("How much is an SMS top-up pack?", "s3kb", mode=mode, k=3)
        assert r.chunks and r.chunks[0].source == "sms-reminders.md", (mode, [c.source for c in r.chunks])
    assert api.retrieve("TW-3402", "s3kb", mode="fts", k=1).chunks[0].source == "error-codes.txt"
    # unchanged files embed nothing; a version read stays reproducible after a new write
    v = api.get_collection("s3kb").table_version
    before = api.retrieve("webhooks", "s3kb", mode="hybrid", k=3, version=v).ids
    again = api.ingest_paths(docs, "s3kb")
    assert all(r.skipped_unchanged for r in again)
    assert api.ingest_paths([KNOWLEDGE / "integrations.md"], "s3kb")[0].ok
    assert api.get_collection("s3kb").table_version > v
    assert api.retrieve("webhooks", "s3kb", mode="hybrid", k=3, version=v).ids == before
    assert [c.name for c in api.list_collections()] == ["s3kb"]


@pytest.mark.slow
def test_ask_on_s3(s3_uri):
    assert api.ingest_paths([KNOWLEDGE / "sms-reminders.md", KNOWLEDGE / "plans-and-limits.md"], "s3ask")[0].ok
    res = api.answer("How much does an SMS top-up pack cost?", "s3ask", params={"max_tokens": 60, "temperature": 0.2})
    assert res.text.strip() and res.usage.completion_tokens > 0
    assert res.table_version == api.get_collection("s3ask").table_version
    assert 1 <= res.chunks_used <= 4 and res.retrieval.chunks[0].source in ("sms-reminders.md", "plans-and-limits.md")
    assert res.citations == api.check_citations(res.text, res.chunks_used)


@pytest.mark.slow
def test_compare_run_on_s3(s3_uri):
    """A batch comparison whose RAG column retrieves from the bucket: every answer stored, the RAG records pinned
    to the bucket table's version and holding chunks of the documents stored there."""
    from core.compare import approach as A
    from core.compare import runner
    from core.scenario import scenario_questions

    docs = [KNOWLEDGE / "sms-reminders.md", KNOWLEDGE / "security-and-sso.md"]
    assert all(r.ok for r in api.ingest_paths(docs, "s3cmp"))
    version = api.get_collection("s3cmp").table_version
    qs = [q for q in scenario_questions() if q.id in ("q17", "q04")]
    specs = [A.ApproachSpec("plain", prompt="zero_shot"),
             A.ApproachSpec("rag", prompt="guardrail", rag=A.RetrievalSpec("s3cmp", "hybrid", 2))]
    run_id = runner.create_run(specs, qs, max_tokens=24)
    st = runner.run_batch(runner.run_dir(run_id))
    assert st["state"] == "succeeded" and st["done"] == 4 and st["errors"] == 0, st
    run = runner.load_run(run_id)
    rag = [r for r in run.results if r["approach"] == "rag"]
    assert len(rag) == 2 and all(r["ok"] and r["answer"].strip() for r in run.results)
    assert all(r["table_version"] == version for r in rag)
    sources = {c["source"] for r in rag for c in r["retrieval"]["chunks"]}
    assert sources and sources <= {"sms-reminders.md", "security-and-sso.md"}, sources
