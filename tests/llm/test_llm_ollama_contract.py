"""Contract test of the Ollama backend against a small local server that speaks Ollama's documented REST API
(/api/version, /api/tags, /api/show, /api/chat streaming NDJSON, /api/pull progress). No Ollama can be installed
on this machine; the real-server twin of these tests is test_llm_ollama_real.py (marker ollama_real).

The server follows https://github.com/ollama/ollama/blob/main/docs/api.md: NDJSON stream chunks with
`message.content` and `done`, a final chunk with prompt_eval_count / eval_count / durations in nanoseconds,
404 {"error": ...} for an unknown model, pull progress with digest / total / completed.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import BackendError, BackendUnavailable, ContextOverflow, ModelNotFound
from core.llm.base import GenParams
from core.llm.ollama_backend import OllamaBackend

DIGEST = "sha256:" + "ab" * 32
MODEL = {"name": "tiny:latest", "model": "tiny:latest", "modified_at": "2025-05-01T10:00:00.000000Z",
         "size": 98362432, "digest": DIGEST,
         "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                     "parameter_size": "135M", "quantization_level": "Q4_1"}}


class FakeOllama(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.models = {"tiny:latest": dict(MODEL)}
        self.requests: list[tuple[str, dict]] = []
        self.context_length = 8192
        self.fail_mid_stream = False


class Handler(BaseHTTPRequestHandler):
    server: FakeOllama

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _json(self, code: int, obj) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _ndjson(self, chunks) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for c in chunks:
            line = (json.dumps(c) + "\n").encode()
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _model(self, name: str):
        return self.server.models.get(name) or self.server.models.get(f"{name}:latest")

    def do_GET(self):
        self.server.requests.append((self.path, {}))
        if self.path == "/api/version":
            return self._json(200, {"version": "0.12.3"})
        if self.path == "/api/tags":
            return self._json(200, {"models": list(self.server.models.values())})
        return self._json(404, {"error": "not found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append((self.path, body))
        if self.path == "/api/show":
            if not self._model(body.get("model", "")):
                return self._json(404, {"error": f"model '{body.get('model')}' not found"})
            return self._json(200, {"modelfile": "FROM tiny", "parameters": "stop \"<|im_end|>\"",
                                    "template": "{{ .Prompt }}", "details": MODEL["details"],
                                    "model_info": {"general.architecture": "llama",
                                                   "llama.context_length": self.server.context_length}})
        if self.path == "/api/chat":
            return self._chat(body)
        if self.path == "/api/pull":
            return self._pull(body)
        return self._json(404, {"error": "not found"})

    def _chat(self, body):
        name = body.get("model", "")
        if not self._model(name):
            return self._json(404, {"error": f"model \"{name}\" not found, try pulling it first"})
        opts = body.get("options") or {}
        user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        reply = json.dumps({"answer": user}) if isinstance(body.get("format"), dict) else f"You said: {user}"
        tokens = [w + " " for w in reply.split(" ")]
        tokens[-1] = tokens[-1].rstrip()
        limit = int(opts.get("num_predict", -1))
        done_reason = "stop"
        if 0 < limit < len(tokens):
            tokens, done_reason = tokens[:limit], "length"
        prompt_count = sum(len(m["content"].split()) for m in body["messages"]) + 5
        now = "2025-05-01T10:00:00Z"
        chunks = [{"model": name, "created_at": now, "message": {"role": "assistant", "content": t}, "done": False}
                  for t in tokens]
        if self.server.fail_mid_stream:
            chunks = chunks[:2] + [{"error": "an error was encountered while running the model"}]
        else:
            chunks.append({"model": name, "created_at": now, "message": {"role": "assistant", "content": ""},
                           "done": True, "done_reason": done_reason, "total_duration": 250_000_000,
                           "load_duration": 20_000_000, "prompt_eval_count": prompt_count,
                           "prompt_eval_duration": 30_000_000, "eval_count": len(tokens),
                           "eval_duration": 100_000_000})
        if body.get("stream") is False:
            return self._json(200, chunks[-1])
        self._ndjson(chunks)

    def _pull(self, body):
        name = body.get("model", "")
        if name.startswith("missing"):
            return self._ndjson([{"status": "pulling manifest"},
                                 {"error": "pull model manifest: file does not exist"}])
        layer = "sha256:" + "cd" * 32
        chunks = [{"status": "pulling manifest"}]
        chunks += [{"status": f"pulling {layer[7:19]}", "digest": layer, "total": 1000, "completed": c}
                   for c in (0, 250, 500, 1000)]
        chunks += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
        full = name if ":" in name else f"{name}:latest"
        self.server.models[full] = dict(MODEL, name=full, model=full, digest="sha256:" + "ef" * 32)
        self._ndjson(chunks)


@pytest.fixture
def ollama_server(monkeypatch, data_dir):
    srv = FakeOllama()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{srv.server_address[1]}")   # host:port, no scheme
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def backend():
    return OllamaBackend()


MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "where is my booking page"}]


def test_status_lists_models_with_digest_and_version(ollama_server, backend):
    st = backend.status()
    assert st.reachable, st.reason
    assert "0.12.3" in st.reason
    assert [(m.id, m.digest) for m in st.models] == [("tiny:latest", DIGEST)]
    assert "135M" in st.models[0].description and st.models[0].size_bytes == 98362432


def test_chat_streams_deltas_and_usage_from_the_final_chunk(ollama_server, backend):
    params = GenParams(temperature=0.3, top_p=0.9, max_tokens=50, seed=11, stop=["\n\n"], keep_alive="10m",
                       num_ctx=2048)
    stream = backend.chat_stream(MSGS, params, model="tiny")
    deltas = list(stream)
    assert len(deltas) == 7 and stream.text == "You said: where is my booking page"
    u = stream.usage
    assert (u.backend, u.model, u.digest) == ("ollama", "tiny", DIGEST)
    assert u.prompt_tokens == 2 + 5 + 5 and u.completion_tokens == 7 and u.finish_reason == "stop"
    assert u.tokens_per_s == pytest.approx(70.0)            # eval_count / eval_duration
    assert u.load_s == pytest.approx(0.02) and u.n_ctx == 2048 and u.ttft_s > 0
    path, body = [r for r in ollama_server.requests if r[0] == "/api/chat"][-1]
    assert body["stream"] is True and body["keep_alive"] == "10m"
    assert body["options"] == {"temperature": 0.3, "top_p": 0.9, "num_predict": 50, "num_ctx": 2048, "seed": 11,
                               "stop": ["\n\n"]}
    assert body["messages"] == MSGS


def test_num_ctx_is_always_sent_and_capped_by_the_model(ollama_server, backend):
    ollama_server.context_length = 1024
    backend.chat(MSGS, GenParams(max_tokens=5), model="tiny:latest")
    body = [r for r in ollama_server.requests if r[0] == "/api/chat"][-1][1]
    assert body["options"]["num_ctx"] == 1024 and body["options"]["num_predict"] == 5


def test_max_tokens_cut_reports_length(ollama_server, backend):
    r = backend.chat(MSGS, GenParams(max_tokens=2), model="tiny")
    assert r.text == "You said: " and r.usage.completion_tokens == 2 and r.usage.finish_reason == "length"


def test_structured_output_sends_the_schema_as_format(ollama_server, backend):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    r = backend.chat(MSGS, GenParams(json_schema=schema), model="tiny")
    assert json.loads(r.text) == {"answer": "where is my booking page"}
    body = [r for r in ollama_server.requests if r[0] == "/api/chat"][-1][1]
    assert body["format"] == schema


def test_unknown_model_says_how_to_pull_it(ollama_server, backend):
    with pytest.raises(ModelNotFound, match="ollama pull nope"):
        backend.chat_stream(MSGS, model="nope")


def test_pull_yields_progress_then_the_model_is_listed(ollama_server, backend):
    progress = list(backend.pull("llama3.2:1b"))
    assert progress[0].status == "pulling manifest" and progress[-1].status == "success"
    fractions = [p.fraction for p in progress if p.total]
    assert fractions == [0.0, 0.25, 0.5, 1.0]
    assert "llama3.2:1b" in [m.id for m in backend.list_models()]
    with pytest.raises(BackendError, match="does not exist"):
        list(backend.pull("missing-model"))


def test_context_overflow_uses_num_ctx(ollama_server, backend):
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(ContextOverflow, match="num_ctx"):
        backend.chat_stream(long, GenParams(max_tokens=100, num_ctx=1024), model="tiny")
    assert not [r for r in ollama_server.requests if r[0] == "/api/chat"]     # refused before sending


def test_error_in_the_middle_of_a_stream_is_typed(ollama_server, backend):
    ollama_server.fail_mid_stream = True
    stream = backend.chat_stream(MSGS, model="tiny")
    with pytest.raises(BackendError, match="error was encountered"):
        list(stream)


def test_default_model_is_the_first_listed(ollama_server, backend, monkeypatch):
    monkeypatch.setenv("WORKBENCH_BACKEND", "embedded")
    assert backend.default_model() == "tiny:latest"
    assert backend.chat(MSGS, GenParams(max_tokens=3)).usage.model == "tiny:latest"


def test_server_going_away_is_reported_fast(ollama_server, backend):
    assert backend.status().reachable
    ollama_server.shutdown()
    ollama_server.server_close()
    t0 = time.perf_counter()
    st = backend.status()
    assert not st.reachable and "ollama serve" in st.reason
    with pytest.raises(BackendUnavailable):
        backend.chat_stream(MSGS, model="tiny")
    assert time.perf_counter() - t0 < 2.0
