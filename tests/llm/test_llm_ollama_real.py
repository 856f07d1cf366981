"""Against a real Ollama server: runs only when OLLAMA_HOST (or the default port) answers and has a model."""
from __future__ import annotations

import json

import pytest

from core.errors import ModelNotFound
from core.llm.base import GenParams
from core.llm.ollama_backend import OllamaBackend

pytestmark = pytest.mark.ollama_real


@pytest.fixture(scope="module")
def live():
    b = OllamaBackend()
    st = b.status()
    if not st.reachable:
        pytest.skip(f"no real Ollama server: {st.reason}")
    if not st.models:
        pytest.skip("the Ollama server has no model pulled")
    return b, min(st.models, key=lambda m: m.size_bytes or 1 << 62).id    # the smallest model is fastest


def test_real_stream_with_usage(live):
    b, model = live
    stream = b.chat_stream([{"role": "user", "content": "Say hello in three words."}],
                           GenParams(max_tokens=20, seed=1, keep_alive="1m"), model)
    text = "".join(stream)
    u = stream.usage
    assert text.strip() and u.completion_tokens > 0 and u.prompt_tokens > 0
    assert u.digest and u.tokens_per_s > 0 and u.n_ctx > 0


def test_real_structured_output(live):
    b, model = live
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    r = b.chat([{"role": "user", "content": "Capital of France? Answer as JSON."}],
               GenParams(max_tokens=40, json_schema=schema), model)
    assert "city" in json.loads(r.text)


def test_real_unknown_model(live):
    b, _ = live
    with pytest.raises(ModelNotFound):
        b.chat_stream([{"role": "user", "content": "hi"}], model="no-such-model-xyz:1b")
