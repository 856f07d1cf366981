"""Pick a backend by name (default: settings.backend). The UI and the other packages only ever see `Backend`.

One instance per process and name; backends read their settings (host, base URL, n_ctx) on every call, so a
changed environment is picked up without a restart.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from core.config import get_settings
from core.errors import UnknownBackend
from core.llm.base import Backend, BackendStatus
from core.registry import Registry

BACKENDS: Registry[type[Backend]] = Registry("backend", UnknownBackend, hint="--backend or WORKBENCH_BACKEND")
BACKENDS.register("embedded", "core.llm.embedded:EmbeddedBackend",
                  "llama.cpp in-process on the packaged SmolLM2-135M-Instruct (and your LoRA fine-tunes).")
BACKENDS.register("ollama", "core.llm.ollama_backend:OllamaBackend", "A local Ollama server at OLLAMA_HOST.")
BACKENDS.register("openai", "core.llm.openai_backend:OpenAIBackend",
                  "Any OpenAI-compatible server at OPENAI_BASE_URL (vLLM, llama.cpp server, LM Studio).")
DESCRIPTIONS = BACKENDS.descriptions()
_INSTANCES: dict[str, Backend] = {}
_LOCK = threading.Lock()


def backend_names() -> list[str]:
    return BACKENDS.names()


def get_backend(name: str | None = None) -> Backend:
    name = (name or get_settings().backend or "embedded").strip().lower()
    BACKENDS.entry(name)            # UnknownBackend listing the known names
    with _LOCK:
        if name not in _INSTANCES:
            _INSTANCES[name] = BACKENDS.create(name)
        return _INSTANCES[name]


def resolve_model(backend: Backend, model: str | None = None) -> str:
    """The model id a request will use: the given one, else the backend's default."""
    return backend.resolve(model)


def all_statuses() -> list[BackendStatus]:
    """Every backend's status, probed in parallel (each answers within ~1 s and never raises)."""
    names = backend_names()

    def probe(n: str) -> BackendStatus:
        try:
            return get_backend(n).status()
        except Exception as exc:  # noqa: BLE001 - a status list must always come back
            return BackendStatus(n, False, f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return list(pool.map(probe, names))
