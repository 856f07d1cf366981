"""The trainable Hugging Face copy of the packaged GGUF base model, converted once and cached.

transformers 5 loads a GGUF with `from_pretrained(folder, gguf_file=name)` (dequantised to fp32, with the llama q/k
permutation undone) but marks the model as "quantized with gguf": not trainable, not saveable. So we build a clean
model from the config (without `quantization_config`), copy the state dict and `save_pretrained` it, with the
tokenizer, into a temp folder that is renamed into place (a crash never leaves a half-written cache).

Cache location: `$WORKBENCH_MODEL_CACHE/<model_id>` when that variable is set (tests and several data folders can
share one conversion), else `<data>/models/hf/<model_id>`.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from core.config import Settings, get_settings
from core.errors import JobError
from core.fileio import file_lock
from core.llm.models import PACKAGED_MODELS, packaged_gguf_path

MARKER = "workbench_convert.json"


def hf_cache_root(settings: Settings | None = None) -> Path:
    env = os.environ.get("WORKBENCH_MODEL_CACHE")
    return Path(env).expanduser() if env else (settings or get_settings()).models_dir / "hf"


def hf_model_dir(model_id: str, settings: Settings | None = None) -> Path:
    return hf_cache_root(settings) / model_id


def is_converted(model_id: str, settings: Settings | None = None) -> bool:
    return (hf_model_dir(model_id, settings) / MARKER).is_file()


def resolve_base_model(base_model: str, settings: Settings | None = None, convert: bool = True) -> Path:
    """A local Hugging Face folder for `base_model`: the packaged model (converted on first use) or a folder path."""
    if base_model in PACKAGED_MODELS:
        return ensure_hf_model(base_model, settings) if convert else hf_model_dir(base_model, settings)
    p = Path(base_model).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return p
    raise JobError(f"Base model {base_model!r} is neither a packaged model ({', '.join(PACKAGED_MODELS)}) nor a local "
                   "Hugging Face folder with a config.json. This machine is offline: download the model beforehand "
                   "(e.g. `huggingface-cli download NAME --local-dir DIR`) and give the folder.")


def ensure_hf_model(model_id: str = "smollm2-135m-instruct", settings: Settings | None = None,
                    log=print) -> Path:
    """Convert the packaged GGUF to a Hugging Face folder once (process-safe with a file lock); return the folder."""
    target = hf_model_dir(model_id, settings)
    if (target / MARKER).is_file():
        return target
    with file_lock(target.parent / f".{model_id}.lock"):
        if (target / MARKER).is_file():          # another process finished it while we waited
            return target
        t0 = time.time()
        gguf_path = packaged_gguf_path(model_id)
        log(f"Converting {gguf_path.name} to a trainable Hugging Face folder (once; cached in {target}) ...")
        tmp = target.parent / f".{model_id}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _convert(gguf_path, tmp)
            (tmp / MARKER).write_text(json.dumps({"source": str(gguf_path), "model_id": model_id,
                                                  "seconds": round(time.time() - t0, 1)}), encoding="utf-8")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"Converted in {time.time() - t0:.1f} s.")
    return target


def _convert(gguf_path: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    cfg_dict = loaded.config.to_dict()
    cfg_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**{k: v for k, v in cfg_dict.items() if k != "model_type"},
                                  model_type=cfg_dict["model_type"])
    config.dtype = torch.float32
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = clean.load_state_dict(loaded.state_dict(), strict=False)
    missing = [m for m in missing if m != "lm_head.weight"]           # tied to the embeddings
    if missing or unexpected:
        raise JobError(f"GGUF conversion mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}.")
    if getattr(config, "tie_word_embeddings", False):
        clean.tie_weights()
    _fix_special_tokens(tok, gguf_path)
    tok.clean_up_tokenization_spaces = False      # destructive for BPE (strips spaces before punctuation)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    del loaded, clean


def _fix_special_tokens(tok, gguf_path: Path) -> None:
    """transformers' GGUF tokenizer import sets eos/pad to the wrong token (SmolLM2: <|im_start|> instead of
    <|im_end|>): take the ids from the GGUF metadata, so training ends every answer with the real EOS."""
    import gguf

    reader = gguf.GGUFReader(str(gguf_path))
    for key, attr in (("tokenizer.ggml.bos_token_id", "bos_token"), ("tokenizer.ggml.eos_token_id", "eos_token"),
                      ("tokenizer.ggml.padding_token_id", "pad_token"), ("tokenizer.ggml.unknown_token_id", "unk_token")):
        field = reader.fields.get(key)
        if field is not None:
            setattr(tok, attr, tok.convert_ids_to_tokens(int(field.contents())))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
