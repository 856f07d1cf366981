"""The OpenAI-compatible client against the TEST DOUBLE server (tests/fixtures/openai_double.py, not a model):
a stream that ends without `data: [DONE]` -- the connection cut mid-answer -- is an error, never a complete
answer; hostile stream chunks (deeply nested JSON) are a typed error too."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import free_port, run_server

from core.errors import BackendError, BackendUnavailable
from core.llm.base import GenParams
from core.llm.openai_backend import OpenAIBackend

DOUBLE = Path(__file__).resolve().parents[1] / "fixtures" / "openai_double.py"
ANSWER = "The quota resets on the first day of each month, at midnight UTC."
MSGS = [{"role": "user", "content": "When does the quota reset?"}]
PARAMS = GenParams(temperature=0.0, max_tokens=32)


@pytest.fixture
def double(tmp_path, monkeypatch, data_dir, request):
    """Start the double with the (indirect) parameter's extra arguments; point the backend at it."""
    args = list(getattr(request, "param", []))
    port = free_port()
    cmd = [sys.executable, str(DOUBLE), str(port), "--answer", ANSWER, "--chunk-chars", "8", *args]
    with run_server(cmd, f"http://127.0.0.1:{port}/v1/models", tmp_path / "double.log", timeout=30):
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
        monkeypatch.setenv("WORKBENCH_OPENAI_MODEL", "double")
        yield OpenAIBackend()


def _collect(stream) -> tuple[list[str], Exception | None]:
    got = []
    try:
        for delta in stream:
            got.append(delta)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return got, exc
    return got, None


def test_complete_stream_is_the_whole_answer(double):
    res = double.chat(MSGS, PARAMS, model="double")
    assert res.text == ANSWER
    assert res.usage.finish_reason == "stop" and res.usage.completion_tokens > 0


@pytest.mark.parametrize("double", [["--cut-after", "2"]], indirect=True)
def test_stream_cut_cleanly_is_an_error_not_an_answer(double):
    """The HTTP body ends well-formed after two chunks, without the final chunk and `data: [DONE]`."""
    got, exc = _collect(double.chat_stream(MSGS, PARAMS, model="double"))
    assert "".join(got) == ANSWER[:16]                     # what arrived was shown as it streamed ...
    assert isinstance(exc, BackendUnavailable), exc        # ... and then the cut is reported, typed
    assert "without `data: [DONE]`" in str(exc) and "incomplete" in str(exc) and "127.0.0.1" in str(exc)
    with pytest.raises(BackendUnavailable, match="incomplete"):
        double.chat(MSGS, PARAMS, model="double")          # the non-streaming call never returns the partial text


@pytest.mark.parametrize("double", [["--cut-after", "2", "--cut-abrupt"]], indirect=True)
def test_stream_cut_abruptly_is_an_error_not_an_answer(double):
    """The socket closes in the middle of the chunked body (httpx: incomplete chunked read)."""
    got, exc = _collect(double.chat_stream(MSGS, PARAMS, model="double"))
    assert "".join(got) == ANSWER[:16]
    assert isinstance(exc, BackendUnavailable), exc
    assert "incomplete" in str(exc)


def test_deeply_nested_stream_chunk_is_a_typed_error(monkeypatch, data_dir):
    """A server (or something in between) that sends `data: [[[[...]]]]` gets a BackendError, not a crash with
    RecursionError, through the same parser (core.jsonout.loads)."""
    import httpx

    body = ("data: " + "[" * 100_000 + "]" * 100_000 + "\n\ndata: [DONE]\n\n").encode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"data": [{"id": "double", "max_model_len": 4096}]})
        return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=body)

    transport = httpx.MockTransport(handler)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://double.invalid/v1")
    backend = OpenAIBackend()
    real_client = backend._client

    def client(read_timeout: float = 600.0):
        c = real_client(read_timeout)
        return httpx.Client(base_url=c.base_url, headers=c.headers, transport=transport)

    monkeypatch.setattr(backend, "_client", client)
    got, exc = _collect(backend.chat_stream(MSGS, PARAMS, model="double"))
    assert got == [] and isinstance(exc, BackendError) and not isinstance(exc, RecursionError)
    assert "nested too deeply" in str(exc), exc
