"""Bad input and unreachable servers give typed errors with clear messages, fast (no model is loaded here)."""
from __future__ import annotations

import os
import socket
import time

import pytest

from core.errors import (BackendUnavailable, ContextOverflow, EmptyPrompt, InvalidParams, ModelNotFound,
                         UnknownBackend)
from core.llm.base import GenParams, check_messages
from core.llm.context import make_report
from core.llm.registry import all_statuses, backend_names, get_backend

USER = [{"role": "user", "content": "hello"}]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]     # closed again when the socket is: nobody listens there


@pytest.mark.parametrize("field,value,words", [
    ("max_tokens", -5, "max_tokens"), ("max_tokens", 0, "max_tokens"), ("temperature", 50, "temperature"),
    ("temperature", float("nan"), "temperature"), ("top_p", 1.5, "top_p"), ("num_ctx", 12, "num_ctx"),
    ("seed", "abc", "seed"), ("stop", [""], "stop"), ("json_schema", "not a dict", "json_schema"),
])
def test_absurd_params_are_rejected_with_the_field_named(field, value, words):
    with pytest.raises(InvalidParams, match=words):
        GenParams(**{field: value}).validate()


@pytest.mark.parametrize("messages", [[], [{"role": "user", "content": "   "}],
                                      [{"role": "system", "content": "only a system prompt"}]])
def test_empty_prompt(messages):
    with pytest.raises(EmptyPrompt, match="empty"):
        check_messages(messages)


def test_unknown_role():
    with pytest.raises(InvalidParams, match="role"):
        check_messages([{"role": "wizard", "content": "x"}, *USER])


@pytest.mark.parametrize("name", ["embedded", "ollama", "openai"])
def test_every_backend_checks_input_before_doing_anything(name, data_dir, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    b = get_backend(name)
    with pytest.raises(EmptyPrompt):
        b.chat_stream([{"role": "user", "content": ""}])
    with pytest.raises(InvalidParams, match="temperature"):
        b.chat_stream(USER, GenParams(temperature=50))
    with pytest.raises(InvalidParams, match="max_tokens"):
        b.chat_stream(USER, GenParams(max_tokens=-1))


def test_registry():
    assert backend_names() == ["embedded", "ollama", "openai"]
    assert get_backend("embedded") is get_backend("EMBEDDED")
    with pytest.raises(UnknownBackend, match="embedded, ollama, openai"):
        get_backend("gpt5")


def test_default_backend_comes_from_settings(monkeypatch):
    monkeypatch.setenv("WORKBENCH_BACKEND", "ollama")
    assert get_backend().name == "ollama"


def test_unknown_embedded_model_and_adapter(data_dir):
    b = get_backend("embedded")
    with pytest.raises(ModelNotFound, match="smollm2-135m-instruct"):
        b.chat_stream(USER, model="llama-70b")
    with pytest.raises(ModelNotFound, match="Fine-Tune"):
        b.chat_stream(USER, model="ft:never-trained")


def test_embedded_status_lists_the_packaged_model_without_loading_it(data_dir):
    from core.llm import embedded
    st = get_backend("embedded").status()
    assert st.reachable, st.reason
    assert [m.id for m in st.models] == ["smollm2-135m-instruct"]
    assert st.models[0].size_bytes > 50_000_000
    assert st.detail["n_ctx"] == 2048
    assert isinstance(embedded.loaded_models(), list)


def test_ollama_down_is_a_fast_typed_error(monkeypatch, data_dir):
    port = closed_port()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")       # no scheme, as users often write it
    b = get_backend("ollama")
    t0 = time.perf_counter()
    st = b.status()
    assert time.perf_counter() - t0 < 1.5
    assert not st.reachable
    assert f"http://127.0.0.1:{port}" in st.reason and "ollama serve" in st.reason
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailable, match="OLLAMA_HOST"):
        b.chat_stream(USER, model="llama3.2:1b")
    with pytest.raises(BackendUnavailable):
        list(b.pull("llama3.2:1b"))
    assert time.perf_counter() - t0 < 2.0


def test_ollama_unroutable_host_times_out_within_about_a_second(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "http://10.255.255.1:11434")   # a black hole: connect must time out
    t0 = time.perf_counter()
    st = get_backend("ollama").status()
    assert not st.reachable
    assert time.perf_counter() - t0 < 2.5


def test_openai_unconfigured_and_down(monkeypatch, data_dir):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    b = get_backend("openai")
    st = b.status()
    assert not st.reachable and "OPENAI_BASE_URL" in st.reason
    with pytest.raises(BackendUnavailable, match="OPENAI_BASE_URL"):
        b.chat_stream(USER)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    t0 = time.perf_counter()
    st = b.status()
    assert not st.reachable and "start it" in st.reason
    with pytest.raises(BackendUnavailable):
        b.chat_stream(USER, model="x")
    assert time.perf_counter() - t0 < 2.0
    monkeypatch.setenv("OPENAI_BASE_URL", "gpu-box:8000/v1")
    assert "http://" in b.status().reason


def test_all_statuses_never_raise_and_are_fast(monkeypatch, data_dir):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{closed_port()}")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    t0 = time.perf_counter()
    statuses = all_statuses()
    assert time.perf_counter() - t0 < 1.5
    assert [s.name for s in statuses] == ["embedded", "ollama", "openai"]
    assert [s.reachable for s in statuses] == [True, False, False]
    assert all(s.reason for s in statuses)


def test_context_report_and_overflow_message():
    ok = make_report(100, 200, 2048)
    assert ok.fits and not ok.warn and ok.ratio == pytest.approx(300 / 2048)
    near = make_report(1600, 200, 2048)
    assert near.fits and near.warn and "close to the limit" in near.message()
    over = make_report(2000, 256, 2048, exact=False, model="m")
    assert not over.fits and "about 2000" in over.message()
    err = ContextOverflow(2000, 256, 2048, "m")
    assert "2048" in str(err) and "lower max_tokens" in str(err)


def test_ollama_host_forms():
    from core.llm.ollama_backend import normalize_host
    assert normalize_host("") == "http://127.0.0.1:11434"
    assert normalize_host("gpu-box") == "http://gpu-box:11434"
    assert normalize_host("gpu-box:9999") == "http://gpu-box:9999"
    assert normalize_host(":11500") == "http://127.0.0.1:11500"
    assert normalize_host("0.0.0.0:11434") == "http://127.0.0.1:11434"
    assert normalize_host("https://ollama.example.com/") == "https://ollama.example.com:443"


def test_status_of_absent_servers_imports_no_http_client(data_dir, tmp_path):
    """The app's first render probes every backend: with no server listening, the answer comes from a TCP
    connect alone (core.llm.base.connect_error), so neither httpx nor the ollama client is imported."""
    import subprocess
    import sys

    code = ("import sys\nfrom core.llm.registry import all_statuses\n"
            "st = {s.name: s for s in all_statuses()}\n"
            "assert not st['ollama'].reachable and 'ollama serve' in st['ollama'].reason, st['ollama'].reason\n"
            "assert not st['openai'].reachable and 'OPENAI_BASE_URL' in st['openai'].reason, st['openai'].reason\n"
            "assert st['embedded'].reachable, st['embedded'].reason\n"
            "print(sorted(m for m in ('httpx', 'ollama') if m in sys.modules))\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    env.update(OLLAMA_HOST=f"127.0.0.1:{closed_port()}", WORKBENCH_DATA=str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == "[]"
    env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{closed_port()}/v1"
    p = subprocess.run([sys.executable, "-c", code.replace("'OPENAI_BASE_URL'", "'start it'")], cwd=root, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == "[]"


def test_connect_error_tells_a_listening_port_from_a_closed_one():
    from core.llm.base import connect_error

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        assert connect_error(f"http://127.0.0.1:{srv.getsockname()[1]}/v1") is None
    assert isinstance(connect_error(f"127.0.0.1:{closed_port()}"), ConnectionRefusedError)
    assert isinstance(connect_error("http://127.0.0.1:notaport"), ValueError)
