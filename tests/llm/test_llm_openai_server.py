"""The OpenAI-compatible backend against a real server: `python -m llama_cpp.server` on loopback, serving the
packaged SmolLM2 GGUF, with an API key (the way a team points the workbench at a shared GPU box)."""
from __future__ import annotations

import json
import sys

import jsonschema
import pytest
from conftest import free_port, run_server

from core.errors import BackendUnavailable
from core.llm.base import GenParams
from core.llm.models import packaged_gguf_path
from core.llm.openai_backend import OpenAIBackend

pytestmark = pytest.mark.slow
KEY = "team-secret"
MSGS = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_gguf_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "1024", "--n_threads", "1", "--n_threads_batch", "1",
           "--model_alias", "smollm2", "--api_key", KEY]
    with run_server(cmd, f"http://127.0.0.1:{port}/docs", tmp_path_factory.mktemp("llama-server") / "server.log",
                    timeout=60):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def backend(llama_server, monkeypatch, data_dir):
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("WORKBENCH_OPENAI_MODEL", raising=False)
    return OpenAIBackend()


def test_status_and_models(backend, llama_server):
    st = backend.status()
    assert st.reachable, st.reason
    assert [m.id for m in st.models] == ["smollm2"]
    assert st.detail["auth"] is True and llama_server in st.reason


def test_stream_with_usage(backend):
    stream = backend.chat_stream(MSGS, GenParams(max_tokens=24, seed=3))
    deltas = list(stream)
    u = stream.usage
    assert len(deltas) >= 2 and stream.text.strip()
    assert u.backend == "openai" and u.model == "smollm2"
    assert u.completion_tokens >= len(deltas) - 1 and 0 < u.completion_tokens <= 24
    assert u.prompt_tokens > 5 and 0 < u.ttft_s <= u.latency_s and u.tokens_per_s > 0
    assert u.finish_reason in ("stop", "length")
    # llama-cpp-python's server sends no usage chunk in streams: prompt tokens are then our estimate
    from core.llm.context import estimate_tokens
    assert u.prompt_tokens == estimate_tokens(MSGS)


def test_json_schema_output(backend):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    r = backend.chat(MSGS, GenParams(max_tokens=40, json_schema=schema))
    jsonschema.validate(json.loads(r.text), schema)


def test_wrong_key_is_a_clear_error(backend, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    st = backend.status()
    assert not st.reachable and "OPENAI_API_KEY" in st.reason
    with pytest.raises(BackendUnavailable, match="OPENAI_API_KEY"):
        backend.chat_stream(MSGS, model="smollm2")
