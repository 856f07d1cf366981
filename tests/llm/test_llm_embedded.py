"""Real generation with the packaged SmolLM2-135M GGUF through the embedded llama.cpp backend."""
from __future__ import annotations

import json
import threading

import jsonschema
import pytest

from core.errors import BackendError, ContextOverflow
from core.llm.base import GenParams
from core.llm.context import check_context
from core.llm.embedded import EmbeddedBackend
from core.llm.models import register_adapter

pytestmark = pytest.mark.slow

MSGS = [{"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def backend(data_dir):
    return EmbeddedBackend()


def bare_reference(lm, messages, params: GenParams) -> dict:
    """llama-cpp-python's own non-streaming answer and usage for the same request, on the same Llama."""
    with lm.lock:
        return lm.llm.create_chat_completion(messages=messages, temperature=params.temperature, top_p=params.top_p,
                                             max_tokens=params.max_tokens, seed=params.seed,
                                             stop=params.stop or None)


@pytest.mark.parametrize("max_tokens", [200, 6])   # ends on end-of-turn / is cut by max_tokens
def test_stream_text_and_usage_match_llama_cpp(backend, max_tokens):
    params = GenParams(temperature=0.2, max_tokens=max_tokens, seed=7)
    stream = backend.chat_stream(MSGS, params)
    deltas = list(stream)
    u = stream.usage
    assert len(deltas) >= 2 and "".join(deltas) == stream.text
    ref = bare_reference(backend.load(), MSGS, params)
    assert stream.text == ref["choices"][0]["message"]["content"]
    assert u.finish_reason == ref["choices"][0]["finish_reason"] == ("length" if max_tokens == 6 else "stop")
    assert u.prompt_tokens == ref["usage"]["prompt_tokens"]
    assert u.completion_tokens == ref["usage"]["completion_tokens"]
    assert u.backend == "embedded" and u.model == "smollm2-135m-instruct"
    assert u.digest.startswith("sha256:") and len(u.digest) == 7 + 64
    assert 0 < u.ttft_s <= u.latency_s and u.tokens_per_s > 0 and u.n_ctx == 2048


def test_model_is_loaded_once_and_load_time_is_reported_once(backend):
    lm = backend.load()
    assert backend.load() is lm and backend.is_loaded()
    first = backend.chat(MSGS, GenParams(max_tokens=4))
    second = backend.chat(MSGS, GenParams(max_tokens=4))
    assert second.usage.load_s == 0.0
    assert first.usage.load_s in (0.0, lm.load_s)
    loaded = backend.status().detail["loaded"]
    assert any(m["model"] == "smollm2-135m-instruct" and m["load_s"] > 0 for m in loaded)


def test_same_seed_same_answer(backend):
    p = GenParams(temperature=0.9, max_tokens=24, seed=123)
    assert backend.chat(MSGS, p).text == backend.chat(MSGS, p).text


def test_json_schema_output_validates(backend):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "confident": {"type": "boolean"}},
              "required": ["city", "confident"]}
    r = backend.chat(MSGS, GenParams(max_tokens=60, json_schema=schema))
    jsonschema.validate(json.loads(r.text), schema)


def test_two_threads_generate_at_once(backend):
    """Two Streamlit sessions on one model: both finish, each with the answer it would get alone."""
    p = GenParams(temperature=0.7, max_tokens=24, seed=5)
    alone = backend.chat(MSGS, p).text
    results, errors = [None, None], []

    def run(i):
        try:
            results[i] = backend.chat(MSGS, p).text
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and results == [alone, alone]


def test_abandoned_stream_releases_the_model(backend):
    s = backend.chat_stream(MSGS, GenParams(max_tokens=50))
    it = iter(s)
    next(it)
    s.close()                      # a closed tab / rerun mid-answer
    lm = backend.load()
    assert lm.lock.acquire(timeout=5)
    lm.lock.release()
    assert backend.chat(MSGS, GenParams(max_tokens=4)).text


def test_context_overflow_is_refused_before_generating(backend, monkeypatch):
    monkeypatch.setenv("WORKBENCH_N_CTX", "256")
    long = [{"role": "user", "content": "Tell me about calendars. " * 60}]
    report = check_context(backend, long, GenParams(max_tokens=64))
    assert report.exact and report.n_ctx == 256 and not report.fits and report.prompt_tokens > 256
    with pytest.raises(ContextOverflow) as err:
        backend.chat_stream(long, GenParams(max_tokens=64))
    assert err.value.prompt_tokens == report.prompt_tokens and err.value.n_ctx == 256
    short = check_context(backend, MSGS, GenParams(max_tokens=64))
    assert short.fits and not short.warn


def test_lora_adapter_is_applied(backend, tiny_adapter):
    models = [m.id for m in backend.list_models()]
    assert "ft:tiny" in models
    p = GenParams(temperature=0.0, max_tokens=12, seed=1)
    base = backend.chat(MSGS, p)
    tuned = backend.chat(MSGS, p, model="ft:tiny")
    assert tuned.usage.model == "ft:tiny" and tuned.usage.adapter == "tiny"
    assert "+lora:sha256:" + tiny_adapter.sha256 in tuned.usage.digest
    assert tuned.usage.digest.startswith(base.usage.digest)
    assert tuned.text != base.text          # random LoRA weights change the answer
    lm = backend.load("ft:tiny")
    assert lm.lora_path == tiny_adapter.gguf_path and lm is not backend.load()


def test_broken_adapter_file_is_a_clear_error(backend, data_dir, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    register_adapter("broken", bad, "smollm2-135m-instruct")
    with pytest.raises(BackendError, match="adapter"):
        backend.chat_stream(MSGS, model="ft:broken")
    notgguf = tmp_path / "notgguf.gguf"
    notgguf.write_text("hello")
    register_adapter("text", notgguf, "smollm2-135m-instruct")
    with pytest.raises(BackendError, match="not a GGUF"):
        backend.chat_stream(MSGS, model="ft:text")
