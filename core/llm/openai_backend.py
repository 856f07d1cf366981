"""OpenAI-compatible backend (vLLM, llama.cpp server, LM Studio, ...) over plain httpx.

Point it at a shared GPU server with OPENAI_BASE_URL (e.g. http://gpu-box:8000/v1) and, if the server wants one,
OPENAI_API_KEY. Chats stream over server-sent events; usage comes from the server's final chunk when it sends one
(`stream_options.include_usage`), otherwise it is counted from the stream.
"""
from __future__ import annotations

import time

from core.config import get_settings
from core.errors import BackendError, BackendUnavailable, InvalidParams, ModelNotFound
from core.jsonout import loads
from core.llm.base import (Backend, BackendStatus, ChatStream, GenParams, Message, ModelInfo, Timer, Usage,
                           connect_error)
from core.llm.context import ContextReport, estimate_tokens

CONNECT_TIMEOUT = 1.0
STATUS_TIMEOUT = 1.0
READ_TIMEOUT = 600.0


class OpenAIBackend(Backend):
    name = "openai"
    exact_token_count = False
    serves_concurrently = True

    def __init__(self):
        self._n_ctx: dict[tuple[str, str], int] = {}
        self._tokenize_ok: dict[str, bool] = {}     # base URL -> has a vLLM-style /tokenize endpoint

    # ---- plumbing -------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return (get_settings().openai_base_url or "").strip().rstrip("/")

    def _require_base(self) -> str:
        base = self.base_url
        if not base:
            raise BackendUnavailable("No OpenAI-compatible server configured: set OPENAI_BASE_URL "
                                     "(e.g. http://127.0.0.1:8000/v1 for vLLM or `python -m llama_cpp.server`).")
        if not base.startswith(("http://", "https://")):
            raise BackendUnavailable(f"OPENAI_BASE_URL={base!r} must start with http:// or https://.")
        return base

    def _headers(self) -> dict:
        key = get_settings().openai_api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _client(self, read_timeout: float = READ_TIMEOUT):
        import httpx
        return httpx.Client(base_url=self._require_base(), headers=self._headers(),
                            timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT))

    def _map(self, exc: Exception, streaming: bool = False) -> Exception:
        import httpx
        if isinstance(exc, (BackendError, InvalidParams)):
            return exc
        if streaming and isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return BackendUnavailable(f"The connection to {self.base_url} was cut mid-answer ({type(exc).__name__}: "
                                      f"{exc}); the answer is incomplete. Check that the server is still running, "
                                      f"then retry.")
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return BackendUnavailable(f"No OpenAI-compatible server answers at {self.base_url} ({exc}): start it "
                                      f"or fix OPENAI_BASE_URL.")
        if isinstance(exc, httpx.TimeoutException):
            return BackendUnavailable(f"The server at {self.base_url} did not answer in time ({type(exc).__name__}).")
        if isinstance(exc, (httpx.HTTPError, OSError, ValueError)):
            return BackendError(f"Talking to {self.base_url} failed: {type(exc).__name__}: {exc}")
        return exc

    def _http_error(self, status: int, body: str, model: str) -> Exception:
        try:
            detail = loads(body)
            detail = detail.get("error", detail) if isinstance(detail, dict) else detail
            if isinstance(detail, dict):
                detail = detail.get("message", detail)
        except ValueError:
            detail = body[:500]
        text = str(detail)
        if status in (401, 403):
            return BackendUnavailable(f"The server at {self.base_url} refused the request (HTTP {status}): set "
                                      f"OPENAI_API_KEY to a valid key.")
        if status == 404 or ("model" in text.lower() and "not" in text.lower() and "found" in text.lower()):
            return ModelNotFound(f"The server at {self.base_url} has no model {model!r} ({text}). Pick one of "
                                 f"`python -m core backends` or set WORKBENCH_OPENAI_MODEL.")
        if status in (400, 422):
            return InvalidParams(f"The server rejected the request (HTTP {status}): {text}")
        return BackendError(f"The server at {self.base_url} failed (HTTP {status}): {text}")

    # ---- Backend protocol -----------------------------------------------------------------------------------
    def default_model(self) -> str:
        s = get_settings()
        if s.openai_model:
            return s.openai_model
        if s.backend == self.name and s.model:
            return s.model
        models = self.list_models()
        if not models:
            raise ModelNotFound(f"The server at {self.base_url} lists no models: set WORKBENCH_OPENAI_MODEL.")
        return models[0].id

    def status(self) -> BackendStatus:
        try:
            t0 = time.perf_counter()
            down = connect_error(self._require_base(), STATUS_TIMEOUT)
            if down is not None:
                return BackendStatus(self.name, False, f"No OpenAI-compatible server answers at {self.base_url} "
                                     f"({type(down).__name__}: {down}): start it or fix OPENAI_BASE_URL.", [],
                                     {"base_url": self.base_url})
            models = self._list(STATUS_TIMEOUT)
            return BackendStatus(self.name, True, f"OpenAI-compatible server at {self.base_url}", models,
                                 {"base_url": self.base_url, "auth": bool(get_settings().openai_api_key),
                                  "probe_ms": round((time.perf_counter() - t0) * 1000, 1)})
        except Exception as exc:  # noqa: BLE001 - status never raises
            err = exc if isinstance(exc, (BackendError, InvalidParams)) else self._map(exc)   # no httpx import
            return BackendStatus(self.name, False, str(err), [], {"base_url": self.base_url})

    def _list(self, timeout: float) -> list[ModelInfo]:
        with self._client(read_timeout=timeout) as client:
            r = client.get("/models")
            if r.status_code != 200:
                raise self._http_error(r.status_code, r.text, "")
            data = r.json().get("data") or []
        out = []
        for m in data:
            n_ctx = int(m.get("max_model_len") or (m.get("meta") or {}).get("n_ctx_train") or 0)   # vLLM / llama.cpp
            out.append(ModelInfo(id=str(m.get("id", "")), backend=self.name, description=str(m.get("owned_by", "")),
                                 n_ctx=n_ctx))
            if n_ctx:
                self._n_ctx[(self.base_url, str(m.get("id", "")))] = n_ctx
        return out

    def list_models(self) -> list[ModelInfo]:
        try:
            return self._list(10)
        except Exception as exc:  # noqa: BLE001
            raise self._map(exc) from exc

    def context_window(self, model: str | None = None, params: GenParams | None = None) -> int:
        """What the server reports (vLLM max_model_len, llama.cpp n_ctx_train), else WORKBENCH_N_CTX."""
        key = (self.base_url, model or "")
        if key not in self._n_ctx and model:
            try:
                self.list_models()
            except BackendError:
                pass
        return self._n_ctx.get(key) or get_settings().n_ctx

    def count_tokens(self, messages: list[Message], model: str | None = None) -> int:
        """vLLM's /tokenize counts chat messages with the model's template; elsewhere an estimate."""
        base = self.base_url
        if base and self._tokenize_ok.get(base, True):
            root = base[:-3] if base.endswith("/v1") else base
            try:
                import httpx
                r = httpx.post(f"{root}/tokenize", headers=self._headers(), timeout=httpx.Timeout(5, connect=1),
                               json={"model": model or "", "messages": [{"role": m["role"], "content": m.get("content") or ""}
                                                                        for m in messages]})
                if r.status_code == 200 and isinstance(r.json().get("count"), int):
                    self._tokenize_ok[base] = True
                    return int(r.json()["count"])
                self._tokenize_ok[base] = False
            except Exception:  # noqa: BLE001 - no tokenizer endpoint: estimate
                self._tokenize_ok[base] = False
        return estimate_tokens(messages)

    def _body(self, messages, params: GenParams, model: str, schema_style: str) -> dict:
        body = {"model": model, "messages": [{"role": m["role"], "content": m.get("content") or ""} for m in messages],
                "stream": True, "stream_options": {"include_usage": True},
                "temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if params.json_schema is not None:
            if schema_style == "json_schema":       # OpenAI / vLLM / LM Studio / llama.cpp server
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": "output", "schema": params.json_schema}}
            else:                                   # llama-cpp-python's server: json_object + schema
                body["response_format"] = {"type": "json_object", "schema": params.json_schema}
        return body

    def resolve(self, model: str | None = None) -> str:
        self._require_base()            # "no server configured" beats "no models" as the reason
        return super().resolve(model)

    def digest(self, model: str | None = None) -> str:
        return ""                       # OpenAI-compatible servers publish no model hash

    def _stream(self, messages: list[Message], params: GenParams, model: str, report: ContextReport) -> ChatStream:
        n_ctx, prompt_est = report.n_ctx, report.prompt_tokens
        usage = Usage(backend=self.name, model=model, prompt_tokens=prompt_est, n_ctx=n_ctx)
        timer = Timer()
        client = self._client()
        response = None
        try:
            for style in ("json_schema", "json_object"):
                req = client.build_request("POST", "/chat/completions", json=self._body(messages, params, model, style))
                response = client.send(req, stream=True)
                if response.status_code == 200:
                    break
                response.read()
                err = self._http_error(response.status_code, response.text, model)
                response.close()
                # some servers (llama-cpp-python's) only know response_format json_object + schema: retry that way
                if not (params.json_schema is not None and style == "json_schema"
                        and "json_schema" in str(err) and response.status_code in (400, 422, 500)):
                    raise err
        except Exception as exc:  # noqa: BLE001
            client.close()
            raise self._map(exc) from exc
        state = {"chunks": 0, "usage": None}

        def deltas():
            done = False
            try:
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        break
                    try:
                        chunk = loads(data)
                    except ValueError as exc:       # not JSON, or nested too deeply to read (NotJSON)
                        raise BackendError(f"The server at {self.base_url} sent an unreadable stream chunk "
                                           f"({exc}); the answer is incomplete.") from None
                    if not isinstance(chunk, dict):
                        raise BackendError(f"The server at {self.base_url} sent a stream chunk that is not a "
                                           "JSON object; the answer is incomplete.")
                    if chunk.get("error"):
                        raise BackendError(f"The server at {self.base_url} failed mid-stream: {chunk['error']}")
                    if chunk.get("usage"):
                        state["usage"] = chunk["usage"]
                    for choice in chunk.get("choices") or []:
                        if choice.get("finish_reason"):
                            usage.finish_reason = choice["finish_reason"]
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            timer.mark_token()
                            state["chunks"] += 1
                            yield text
                if not done:
                    # the body ended without the closing `data: [DONE]`: the connection was cut (server killed,
                    # proxy timeout, network). What arrived is not the whole answer: never pass it off as one.
                    raise BackendUnavailable(
                        f"The stream from {self.base_url} ended without `data: [DONE]` after {state['chunks']} "
                        f"chunk(s): the connection was cut mid-answer and the answer is incomplete. Check that the "
                        f"server is still running, then retry.")
            except Exception as exc:  # noqa: BLE001
                raise self._map(exc, streaming=True) from exc
            finally:
                timer.stop()
                response.close()
                client.close()

        def finish() -> Usage:
            u = state["usage"] or {}
            usage.prompt_tokens = int(u.get("prompt_tokens") or usage.prompt_tokens)
            usage.completion_tokens = int(u.get("completion_tokens") or state["chunks"])  # ~1 chunk per token
            return timer.fill(usage)

        return ChatStream(deltas(), finish)
