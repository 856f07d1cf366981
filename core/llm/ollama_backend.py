"""Ollama backend through the official `ollama` client at OLLAMA_HOST.

List, pull (with progress), streaming chat with keep_alive / num_ctx / structured output (format = JSON schema).
Every transport failure becomes a typed error: no server -> BackendUnavailable within about a second (connect
timeout 1 s), unknown model -> ModelNotFound with the `ollama pull` line to run.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

from core.config import get_settings
from core.errors import BackendError, ConfigError, BackendUnavailable, InvalidParams, ModelNotFound
from core.llm.base import (Backend, BackendStatus, ChatStream, GenParams, Message, ModelInfo, Timer, Usage,
                           connect_error)
from core.llm.context import ContextReport, estimate_tokens

CONNECT_TIMEOUT = 1.0          # a missing server must be reported fast
STATUS_TIMEOUT = 1.0
READ_TIMEOUT = 600.0           # a first request may load a multi-GB model
DEFAULT_NUM_CTX = int(os.environ.get("OLLAMA_CONTEXT_LENGTH") or 4096)


@dataclass
class PullProgress:
    status: str
    completed: int = 0
    total: int = 0
    digest: str = ""

    @property
    def fraction(self) -> float:
        return (self.completed / self.total) if self.total else 0.0


def normalize_host(raw: str) -> str:
    """OLLAMA_HOST may be 'host', 'host:port', ':port' or a URL; always return scheme://host:port[/path]."""
    raw = (raw or "").strip()
    if not raw:
        return "http://127.0.0.1:11434"
    explicit = "://" in raw
    u = urlsplit(raw if explicit else "http://" + raw)
    host = u.hostname or "127.0.0.1"
    if host == "0.0.0.0":               # the server's bind-all address; a client talks to loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = u.port
    except ValueError as exc:
        raise ConfigError(f"OLLAMA_HOST={raw!r} has an invalid port.") from exc
    port = port or (11434 if not explicit else (443 if u.scheme == "https" else 80))
    return f"{u.scheme}://{host}:{port}{u.path.rstrip('/')}"


class OllamaBackend(Backend):
    name = "ollama"
    exact_token_count = False     # Ollama has no tokenize endpoint: the pre-check estimates, usage is exact
    serves_concurrently = True    # OLLAMA_NUM_PARALLEL requests at once; more wait in its queue

    def __init__(self):
        self._show_cache: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()

    # ---- plumbing -------------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return normalize_host(get_settings().ollama_host)

    def _client(self, read_timeout: float = READ_TIMEOUT):
        import httpx
        import ollama
        return ollama.Client(host=self.host, timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT))

    def _unavailable(self, exc: Exception | None = None) -> BackendUnavailable:
        why = f" ({type(exc).__name__}: {exc})" if exc is not None and not isinstance(exc, ConnectionError) else ""
        return BackendUnavailable(f"No Ollama server answers at {self.host}{why} — start it with `ollama serve`, "
                                  f"or set OLLAMA_HOST to where it runs.")

    def _map(self, exc: Exception, model: str = "") -> Exception:
        """Turn client/transport exceptions into typed workbench errors."""
        import httpx
        import ollama
        if isinstance(exc, (BackendError, InvalidParams)):
            return exc
        if isinstance(exc, ollama.ResponseError):
            msg = str(exc.error)
            if exc.status_code == 404 or "not found" in msg.lower():
                return ModelNotFound(f"Ollama at {self.host} has no model {model!r}: pull it with "
                                     f"`ollama pull {model}` (or `python -m core pull {model} --backend ollama`).")
            if exc.status_code == 400:
                return InvalidParams(f"Ollama rejected the request: {msg}")
            code = f" (HTTP {exc.status_code})" if exc.status_code > 0 else ""
            return BackendError(f"Ollama at {self.host} failed: {msg}{code}.")
        if isinstance(exc, (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout)):
            return self._unavailable(exc)
        if isinstance(exc, httpx.TimeoutException):
            return BackendUnavailable(f"Ollama at {self.host} did not answer in time ({type(exc).__name__}).")
        if isinstance(exc, (httpx.HTTPError, OSError, ValueError)):
            return BackendError(f"Talking to Ollama at {self.host} failed: {type(exc).__name__}: {exc}")
        return exc

    # ---- Backend protocol -----------------------------------------------------------------------------------
    def default_model(self) -> str:
        s = get_settings()
        if s.backend == self.name and s.model:
            return s.model
        models = self.list_models()
        if not models:
            raise ModelNotFound(f"Ollama at {self.host} has no models yet: pull one, e.g. `ollama pull llama3.2:1b`.")
        return models[0].id

    def status(self) -> BackendStatus:
        t0 = time.perf_counter()
        down = connect_error(self.host, STATUS_TIMEOUT)
        if down is not None:
            return BackendStatus(self.name, False, str(self._unavailable(down)), [], {"host": self.host})
        try:
            import httpx
            client = self._client(read_timeout=STATUS_TIMEOUT)
            try:
                resp = httpx.get(f"{self.host}/api/version", timeout=httpx.Timeout(STATUS_TIMEOUT))
                version = resp.json().get("version", "") if resp.status_code == 200 else ""
                models = self._models_from(client)
            finally:
                client.close()
            return BackendStatus(self.name, True, f"Ollama {version} at {self.host}".replace("  ", " "), models,
                                 {"host": self.host, "version": version,
                                  "probe_ms": round((time.perf_counter() - t0) * 1000, 1)})
        except Exception as exc:  # noqa: BLE001 - status never raises
            err = self._map(exc)
            return BackendStatus(self.name, False, str(err), [], {"host": self.host})

    def _models_from(self, client) -> list[ModelInfo]:
        out = []
        for m in client.list().models:
            details = m.details
            desc = " ".join(x for x in ((details.family or "") if details else "",
                                        (details.parameter_size or "") if details else "",
                                        (details.quantization_level or "") if details else "") if x)
            out.append(ModelInfo(id=m.model or "", backend=self.name, description=desc, digest=m.digest or "",
                                 size_bytes=int(m.size or 0)))
        return out

    def list_models(self) -> list[ModelInfo]:
        try:
            client = self._client(read_timeout=10)
            try:
                return self._models_from(client)
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001
            raise self._map(exc) from exc

    def pull(self, model: str) -> Iterator[PullProgress]:
        """Download a model on the Ollama server, yielding progress (completed/total bytes per layer)."""
        if not model or not model.strip():
            raise InvalidParams("Name the model to pull, e.g. llama3.2:1b.")
        client = self._client()
        try:
            for p in client.pull(model.strip(), stream=True):
                yield PullProgress(status=p.status or "", completed=int(p.completed or 0), total=int(p.total or 0),
                                   digest=p.digest or "")
        except Exception as exc:  # noqa: BLE001
            raise self._map(exc, model) from exc
        finally:
            client.close()

    def show(self, model: str) -> dict:
        """/api/show (cached per host+model): model info incl. the trained context length."""
        key = (self.host, model)
        with self._lock:
            if key in self._show_cache:
                return self._show_cache[key]
        client = self._client(read_timeout=10)
        try:
            info = client.show(model)
        except Exception as exc:  # noqa: BLE001
            raise self._map(exc, model) from exc
        finally:
            client.close()
        data = {"modelinfo": dict(info.modelinfo or {}), "parameters": info.parameters or "",
                "template": info.template or ""}
        with self._lock:
            self._show_cache[key] = data
        return data

    def trained_context(self, model: str) -> int:
        info = self.show(model)["modelinfo"]
        for k, v in info.items():
            if k.endswith(".context_length"):
                return int(v)
        return 0

    def context_window(self, model: str | None = None, params: GenParams | None = None) -> int:
        """The num_ctx we send: params.num_ctx, else OLLAMA_CONTEXT_LENGTH (4096), capped by what the model was
        trained for. It is always sent explicitly, so the server never silently uses a smaller window."""
        want = (params.num_ctx if params and params.num_ctx else None) or DEFAULT_NUM_CTX
        if model:
            try:
                trained = self.trained_context(model)
            except BackendError:
                trained = 0
            if trained and not (params and params.num_ctx):
                want = min(want, trained)
        return want

    def count_tokens(self, messages: list[Message], model: str | None = None) -> int:
        return estimate_tokens(messages)

    def _stream(self, messages: list[Message], params: GenParams, model: str, report: ContextReport) -> ChatStream:
        num_ctx, prompt_est = report.n_ctx, report.prompt_tokens
        options = {"temperature": params.temperature, "top_p": params.top_p, "num_predict": params.max_tokens,
                   "num_ctx": num_ctx}
        if params.seed is not None:
            options["seed"] = params.seed
        if params.repeat_penalty is not None:
            options["repeat_penalty"] = float(params.repeat_penalty)
        if params.stop:
            options["stop"] = list(params.stop)
        usage = Usage(backend=self.name, model=model, prompt_tokens=prompt_est, n_ctx=num_ctx)
        timer = Timer()
        client = self._client()
        try:
            it = client.chat(model=model, messages=[{"role": m["role"], "content": m.get("content") or ""}
                                                    for m in messages],
                             stream=True, options=options, keep_alive=params.keep_alive,
                             format=params.json_schema)
            first = next(it, None)       # send the request now: errors surface before streaming starts
        except Exception as exc:  # noqa: BLE001
            client.close()
            raise self._map(exc, model) from exc
        digest_box = {}

        def deltas():
            try:
                chunk = first
                while chunk is not None:
                    text = chunk.message.content if chunk.message else ""
                    if text:
                        timer.mark_token()
                        yield text
                    if chunk.done:
                        usage.prompt_tokens = int(chunk.prompt_eval_count or usage.prompt_tokens)
                        usage.completion_tokens = int(chunk.eval_count or 0)
                        usage.finish_reason = chunk.done_reason or "stop"
                        usage.load_s = (chunk.load_duration or 0) / 1e9
                        if chunk.eval_count and chunk.eval_duration:
                            digest_box["tps"] = chunk.eval_count / (chunk.eval_duration / 1e9)
                        break
                    chunk = next(it, None)
            except Exception as exc:  # noqa: BLE001
                raise self._map(exc, model) from exc
            finally:
                timer.stop()
                client.close()

        def finish() -> Usage:
            timer.fill(usage)
            if "tps" in digest_box:      # the server's own decode rate is more precise than our clock
                usage.tokens_per_s = digest_box["tps"]
            usage.digest = self._digest(model)
            return usage

        return ChatStream(deltas(), finish)

    def _digest(self, model: str) -> str:
        try:
            return self.digest(model)
        except BackendError:
            return ""
