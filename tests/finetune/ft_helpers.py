"""Helpers for the fine-tune tests: one GGUF->HF conversion shared by every test (and test session)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "sample_docs" / "finetune" / "train.chat.jsonl"
HELDOUT = ROOT / "sample_docs" / "finetune" / "heldout.chat.jsonl"
BAD = ROOT / "tests" / "fixtures" / "bad"


def model_cache() -> Path:
    """WORKBENCH_MODEL_CACHE if set, else a per-machine temp folder: the 33 s conversion happens once."""
    return Path(os.environ.get("WORKBENCH_MODEL_CACHE") or Path(tempfile.gettempdir()) / "workbench-model-cache")


def converted_model() -> Path:
    """Convert the packaged GGUF once into the shared cache and return the folder."""
    cache = model_cache()
    os.environ["WORKBENCH_MODEL_CACHE"] = str(cache)
    from core.finetune.convert import ensure_hf_model
    return ensure_hf_model("smollm2-135m-instruct", log=lambda m: None)


def link_model_into(data_dir: Path) -> None:
    """Make a data folder see the shared converted model (for a server started without WORKBENCH_MODEL_CACHE)."""
    src = converted_model()
    dst = Path(data_dir) / "models" / "hf" / "smollm2-135m-instruct"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        dst.symlink_to(src, target_is_directory=True)


def small_train_file(tmp: Path, n: int = 12) -> Path:
    """The first n transcripts: enough for a real few-step run whose loss clearly drops."""
    lines = TRAIN.read_text(encoding="utf-8").splitlines()[:n]
    p = Path(tmp) / "small.chat.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p
