"""Exports of a trained adapter, all offline (no script fetched at run time):

- peft:        the PEFT adapter folder (adapter_config.json + adapter_model.safetensors + tokenizer files).
- gguf-lora:   a llama.cpp LoRA adapter GGUF, written with the `gguf` package the way llama.cpp's
               convert_lora_to_gguf.py does (general.type=adapter, adapter.type=lora, adapter.lora.alpha, tensors
               blk.N.<name>.weight.lora_a / .lora_b, llama q/k rows permuted like the base GGUF's).
- gguf-merged: the base GGUF with the LoRA delta merged in, written at Q8_0 or F16 (never re-quantised to the base's
               Q4_1, which erases the fine-tune). A full fine-tune (no adapter) goes through the same writer with
               every tensor taken from its saved model: its only export, a standalone GGUF.
- ollama:      a Modelfile (FROM base GGUF, ADAPTER adapter GGUF, TEMPLATE translated from the chat template,
               PARAMETER stop from the EOS) and `ollama create` when a server answers.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import ExportError

FORMATS = ("peft", "gguf-lora", "gguf-merged", "ollama")
LLAMA_LIKE = {"llama", "mistral"}          # architectures whose GGUF tensors use the llama layout (q/k permuted)


@dataclass
class ExportResult:
    format: str
    path: str
    files: list[str] = field(default_factory=list)
    size_bytes: int = 0
    sha256: str = ""
    seconds: float = 0.0
    note: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# --- shared helpers -------------------------------------------------------------------------------------------
def _check_peft_dir(peft_dir: Path) -> dict:
    cfg_path = Path(peft_dir) / "adapter_config.json"
    if not cfg_path.is_file() or not (Path(peft_dir) / "adapter_model.safetensors").is_file():
        raise ExportError(f"{peft_dir} is not a PEFT adapter folder (adapter_config.json + adapter_model.safetensors "
                          "expected): pick a finished run.")
    return json.loads(cfg_path.read_text(encoding="utf-8"))


def _base_config(peft_cfg: dict, base_dir: Path | None) -> dict:
    folder = Path(base_dir) if base_dir else Path(peft_cfg.get("base_model_name_or_path") or "")
    path = folder / "config.json"
    if not path.is_file():
        raise ExportError(f"The base model config {path} is missing: re-run the GGUF conversion (train once) or pass "
                          "the base model folder.")
    return json.loads(path.read_text(encoding="utf-8"))


def _permute(w, n_head: int):
    """llama.cpp's q/k row order (rotary pairs interleaved per head) from Hugging Face's."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def lora_pairs(peft_dir: Path, base_cfg: dict, peft_cfg: dict) -> tuple[dict[str, tuple], float]:
    """{gguf_tensor_name: (A (r,in), B (out,r) permuted for q/k)} as float32 numpy, and the effective alpha for
    llama.cpp (which scales by alpha / r)."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    model_type = base_cfg.get("model_type", "")
    if model_type not in LLAMA_LIKE:
        raise ExportError(f"GGUF export supports llama-architecture models ({', '.join(sorted(LLAMA_LIKE))}); this "
                          f"base is {model_type!r}. Use the PEFT export instead.")
    n_layers = int(base_cfg["num_hidden_layers"])
    n_head = int(base_cfg["num_attention_heads"])
    n_kv = int(base_cfg.get("num_key_value_heads") or n_head)
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    tensors = load_file(str(Path(peft_dir) / "adapter_model.safetensors"))
    pairs: dict[str, dict] = {}
    for key, arr in tensors.items():
        if ".lora_A." in key or ".lora_B." in key:
            base = key.replace("base_model.model.", "", 1)
            base = re.sub(r"\.lora_[AB](\.default)?\.weight$", ".weight", base)
            name = tmap.get_name(base, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise ExportError(f"No GGUF tensor for adapter weight {key!r}: that module cannot be exported.")
            pairs.setdefault(name, {})["A" if ".lora_A." in key else "B"] = arr.astype(np.float32)
        elif "modules_to_save" in key or "embed_tokens" in key or "lm_head" in key:
            raise ExportError(f"The adapter trains full module {key!r} (modules_to_save): llama.cpp LoRA files cannot "
                              "carry it. Train with LoRA target modules only.")
    out = {}
    for name, ab in pairs.items():
        if "A" not in ab or "B" not in ab:
            raise ExportError(f"Adapter weight {name} has only one of lora_A / lora_B.")
        a, b = ab["A"], ab["B"]
        if name.endswith("attn_q.weight"):
            b = _permute(b, n_head)
        elif name.endswith("attn_k.weight"):
            b = _permute(b, n_kv)
        out[name] = (np.ascontiguousarray(a), np.ascontiguousarray(b))
    r = int(peft_cfg.get("r") or next(iter(out.values()))[0].shape[0])
    alpha = float(peft_cfg.get("lora_alpha") or r)
    if peft_cfg.get("use_rslora"):
        alpha = alpha * math.sqrt(r)            # PEFT scales by alpha/sqrt(r); llama.cpp by alpha/r
    if peft_cfg.get("rank_pattern") or peft_cfg.get("alpha_pattern"):
        raise ExportError("Per-module rank/alpha patterns cannot be expressed in a GGUF LoRA; use one r and alpha.")
    return out, alpha


def _finish(tmp: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)


# --- PEFT -----------------------------------------------------------------------------------------------------
def export_peft(peft_dir: Path, out_dir: Path) -> ExportResult:
    _check_peft_dir(peft_dir)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(peft_dir, tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    _finish(tmp, out_dir)
    files = sorted(p.name for p in out_dir.iterdir())
    return ExportResult("peft", str(out_dir), files, sum(p.stat().st_size for p in out_dir.iterdir()),
                        note="Load with peft.PeftModel.from_pretrained(base_model, path).")


# --- GGUF LoRA ------------------------------------------------------------------------------------------------
def export_gguf_lora(peft_dir: Path, out_file: Path, base_dir: Path | None = None) -> ExportResult:
    import gguf

    from core.llm.models import file_sha256

    peft_cfg = _check_peft_dir(peft_dir)
    base_cfg = _base_config(peft_cfg, base_dir)
    pairs, alpha = lora_pairs(peft_dir, base_cfg, peft_cfg)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    writer.add_name(f"LoRA r={peft_cfg.get('r')} of {base_cfg.get('_name_or_path') or 'base model'}")
    for name in sorted(pairs):
        a, b = pairs[name]
        writer.add_tensor(name + ".lora_a", a)
        writer.add_tensor(name + ".lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    _finish(tmp, out_file)
    return ExportResult("gguf-lora", str(out_file), [out_file.name], out_file.stat().st_size, file_sha256(out_file),
                        note=f"{len(pairs)} LoRA tensor pairs, alpha {alpha:g}. Load with "
                             f"Llama(model_path=BASE.gguf, lora_path={out_file.name}).")


# --- merged GGUF (a LoRA merged into the base, or a fully fine-tuned model: the same writer) -------------------
def _check_qtype(qtype: str) -> str:
    qtype = str(qtype).upper()
    if qtype not in ("Q8_0", "F16"):
        raise ExportError(f"Merged GGUF is written at Q8_0 or F16 (got {qtype}); re-quantising to the base's Q4_1 "
                          "erases the fine-tune.")
    return qtype


def _write_like_base(base_gguf: Path, out_file: Path, qtype: str, tensor_for, progress=None) -> int:
    """Write a standalone GGUF with the base GGUF's metadata (tokenizer, chat template, hyper-parameters) copied as
    is and, for every base tensor, `tensor_for(name, base_fp32_data) -> fp32 data`, at Q8_0 or F16 (norms and other
    1-D tensors stay F32). Returns how many tensors tensor_for changed (it returns the base array unchanged else)."""
    import gguf
    import numpy as np

    qtype = _check_qtype(qtype)
    reader = gguf.GGUFReader(str(base_gguf))
    arch = reader.fields["general.architecture"].contents()
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    target_type = gguf.GGMLQuantizationType.Q8_0 if qtype == "Q8_0" else gguf.GGMLQuantizationType.F16
    file_type = gguf.LlamaFileType.MOSTLY_Q8_0 if qtype == "Q8_0" else gguf.LlamaFileType.MOSTLY_F16
    for name, fld in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == "general.file_type":
            writer.add_file_type(int(file_type))
            continue
        vtype = fld.types[0]
        sub = fld.types[-1] if vtype == gguf.GGUFValueType.ARRAY and len(fld.types) > 1 else None
        writer.add_key_value(name, fld.contents(), vtype, sub_type=sub)
    changed = 0
    tensors = list(reader.tensors)
    for i, t in enumerate(tensors):
        base = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        data = tensor_for(t.name, base)
        if data is not base:
            if data.shape != base.shape:
                raise ExportError(f"Tensor {t.name}: shape {tuple(data.shape)} does not match the base GGUF's "
                                  f"{tuple(base.shape)}: wrong base model?")
            changed += 1
        data = np.ascontiguousarray(data, dtype=np.float32)
        if data.ndim < 2 or data.shape[-1] % 32:
            writer.add_tensor(t.name, data)
        elif target_type == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(t.name, data.astype(np.float16))
        else:
            q = gguf.quants.quantize(data, target_type)
            writer.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=target_type)
        if progress:
            progress((i + 1) / len(tensors), t.name)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    _finish(tmp, out_file)
    return changed


def export_gguf_merged(peft_dir: Path, out_file: Path, base_gguf: Path, base_dir: Path | None = None,
                       qtype: str = "Q8_0", progress=None) -> ExportResult:
    """Dequantise every base tensor, add scale * B @ A where the adapter has one, write at Q8_0 or F16
    (norms stay F32). The base GGUF's metadata (tokenizer, chat template) is copied as is."""
    from core.llm.models import file_sha256

    peft_cfg = _check_peft_dir(peft_dir)
    base_cfg = _base_config(peft_cfg, base_dir)
    pairs, alpha = lora_pairs(peft_dir, base_cfg, peft_cfg)
    _check_qtype(qtype)

    def merged(name, data):
        if name not in pairs:
            return data
        a, b = pairs[name]
        return data + (alpha / a.shape[0]) * (b @ a)

    n = _write_like_base(base_gguf, out_file, qtype, merged, progress)
    if n != len(pairs):
        Path(out_file).unlink(missing_ok=True)
        raise ExportError(f"Only {n} of {len(pairs)} adapter tensors matched the base GGUF: wrong base model?")
    out_file = Path(out_file)
    return ExportResult("gguf-merged", str(out_file), [out_file.name], out_file.stat().st_size,
                        file_sha256(out_file, limit=64 << 20),
                        note=f"{n} tensors merged, written at {qtype.upper()}. A standalone model: "
                             f"Llama(model_path={out_file.name}).")


def full_model_tensors(model_dir: Path) -> dict:
    """{gguf tensor name: fp32 numpy} of a fully fine-tuned Hugging Face folder (safetensors), with llama.cpp's
    q/k row order. Tied weights: the LM head is the token embedding (the base GGUF has no output.weight)."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    model_dir = Path(model_dir)
    cfg_path = model_dir / "config.json"
    files = sorted(model_dir.glob("*.safetensors"))
    if not cfg_path.is_file() or not files:
        raise ExportError(f"{model_dir} is not a saved model folder (config.json + *.safetensors expected): pick a "
                          "finished full fine-tune run.")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if cfg.get("model_type") not in LLAMA_LIKE:
        raise ExportError(f"GGUF export supports llama-architecture models ({', '.join(sorted(LLAMA_LIKE))}); this "
                          f"model is {cfg.get('model_type')!r}.")
    n_head = int(cfg["num_attention_heads"])
    n_kv = int(cfg.get("num_key_value_heads") or n_head)
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(cfg["num_hidden_layers"]))
    out = {}
    for f in files:
        for key, arr in load_file(str(f)).items():
            name = tmap.get_name(key, try_suffixes=(".weight", ".bias"))
            if name is None:
                if key.endswith("rotary_emb.inv_freq"):
                    continue
                raise ExportError(f"No GGUF tensor for model weight {key!r}: that model cannot be exported.")
            arr = arr.astype(np.float32)
            if name.endswith("attn_q.weight"):
                arr = _permute(arr, n_head)
            elif name.endswith("attn_k.weight"):
                arr = _permute(arr, n_kv)
            out[name] = arr
    return out


def export_gguf_full(model_dir: Path, out_file: Path, base_gguf: Path, qtype: str = "Q8_0",
                     progress=None) -> ExportResult:
    """A fully fine-tuned model as a standalone GGUF: written like a merged model (the base GGUF's metadata and
    tensor list), with every tensor taken from the trained weights instead of base + delta."""
    from core.llm.models import file_sha256

    _check_qtype(qtype)
    trained = full_model_tensors(model_dir)
    used: set[str] = set()

    def take(name, data):
        if name not in trained:
            return data
        used.add(name)
        return trained[name]

    n = _write_like_base(base_gguf, out_file, qtype, take, progress)
    extra = sorted(set(trained) - used - {"output.weight"})     # output.weight: tied, absent from the base GGUF
    if extra or not n:
        Path(out_file).unlink(missing_ok=True)
        raise ExportError(f"{len(extra)} trained tensors have no place in the base GGUF ({', '.join(extra[:4])}): "
                          "wrong base model?")
    out_file = Path(out_file)
    return ExportResult("gguf-merged", str(out_file), [out_file.name], out_file.stat().st_size,
                        file_sha256(out_file, limit=64 << 20),
                        note=f"Full fine-tune: {n} trained tensors written at {qtype.upper()}. A standalone model: "
                             f"Llama(model_path={out_file.name}).", extra={"method": "full"})


# --- Ollama ---------------------------------------------------------------------------------------------------
_DEFAULT_SYSTEM_RE = re.compile(r"messages\[0\]\['role'\] != 'system' %\}\{\{ '<\|im_start\|>system\\n(.*?)<\|im_end\|>")


def ollama_template(chat_template: str) -> tuple[str, str | None]:
    """Go-template TEMPLATE for Ollama from a Hugging Face chat template, plus the template's default system
    prompt (SmolLM2 adds one when the conversation has none). ChatML templates only; others raise."""
    if "<|im_start|>" not in (chat_template or ""):
        raise ExportError("Only ChatML chat templates (<|im_start|> ... <|im_end|>) are translated to Ollama's "
                          "TEMPLATE; write the TEMPLATE line by hand for this model.")
    m = _DEFAULT_SYSTEM_RE.search(chat_template)
    default_system = m.group(1) if m else None
    tmpl = (
        '{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n'
        + ('{{ else }}<|im_start|>system\n' + default_system + '<|im_end|>\n' if default_system else '')
        + '{{ end }}'
        '{{- range .Messages }}{{ if ne .Role "system" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
        '{{ end }}{{ end }}<|im_start|>assistant\n'
    )
    return tmpl, default_system


def _quote(text: str) -> str:
    if '"""' in text:
        raise ExportError('The text contains """ and cannot be put in a Modelfile string.')
    return f'"""{text}"""'


def modelfile_text(base_gguf: Path, adapter_gguf: Path, chat_template: str, stop: list[str],
                   system: str | None = None, params: dict | None = None) -> str:
    template, default_system = ollama_template(chat_template)
    lines = ["# Modelfile written by Approach Workbench: base model + runtime LoRA adapter",
             f"FROM {Path(base_gguf).resolve()}", f"ADAPTER {Path(adapter_gguf).resolve()}",
             f"TEMPLATE {_quote(template)}"]
    if system:
        lines.append(f"SYSTEM {_quote(system)}")
    for s in dict.fromkeys(stop):
        lines.append(f'PARAMETER stop "{s}"')
    for k, v in (params or {"temperature": 0.2}).items():
        lines.append(f"PARAMETER {k} {v}")
    return "\n".join(lines) + "\n"


def export_ollama(adapter_gguf: Path, base_gguf: Path, tokenizer_dir: Path, out_dir: Path, name: str,
                  system: str | None = None, create: bool = True, host: str | None = None) -> ExportResult:
    """Write <out_dir>/Modelfile (+ copies nothing: paths are absolute). Run `ollama create` through the client
    when a server answers within 2 s; otherwise say how to create it."""
    tok_cfg = json.loads((Path(tokenizer_dir) / "tokenizer_config.json").read_text(encoding="utf-8"))
    tmpl_file = Path(tokenizer_dir) / "chat_template.jinja"
    chat_template = tmpl_file.read_text(encoding="utf-8") if tmpl_file.is_file() else tok_cfg.get("chat_template", "")
    eos = tok_cfg.get("eos_token") or "<|im_end|>"
    eos = eos.get("content") if isinstance(eos, dict) else eos
    stop = [eos, "<|im_start|>"] if "<|im_start|>" in chat_template else [eos]
    text = modelfile_text(base_gguf, adapter_gguf, chat_template, stop, system=system)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mf = out_dir / "Modelfile"
    tmp = out_dir / ".Modelfile.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, mf)
    model_name = re.sub(r"[^a-z0-9._-]", "-", name.lower())
    res = ExportResult("ollama", str(mf), [mf.name], mf.stat().st_size,
                       extra={"ollama_model": model_name, "modelfile": text, "created": False})
    if not create:
        res.note = f"Create it with: ollama create {model_name} -f {mf}"
        return res
    try:
        import ollama

        from core.config import get_settings
        client = ollama.Client(host=host or get_settings().ollama_host, timeout=2)
        client.list()
    except Exception as exc:  # noqa: BLE001 - no server: the files are still useful
        res.note = (f"No Ollama server answered ({type(exc).__name__}); the Modelfile is written. Create the model "
                    f"with: ollama create {model_name} -f {mf}")
        return res
    try:
        client = ollama.Client(host=host or get_settings().ollama_host, timeout=600)
        base_digest = client.create_blob(str(base_gguf))
        adapter_digest = client.create_blob(str(adapter_gguf))
        template, _ = ollama_template(chat_template)
        client.create(model=model_name, files={Path(base_gguf).name: base_digest},
                      adapters={Path(adapter_gguf).name: adapter_digest}, template=template, system=system,
                      parameters={"stop": stop, "temperature": 0.2}, stream=False)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"ollama create failed: {exc}. The Modelfile is at {mf}; try `ollama create {model_name} "
                          f"-f {mf}`.") from exc
    res.extra["created"] = True
    res.note = f"Created Ollama model {model_name!r}: ollama run {model_name}"
    return res


# --- exports of a run (what the CLI and the page call) ---------------------------------------------------------
@dataclass
class AdapterRef:
    name: str                 # run id (adapter name) or folder name
    peft_dir: Path            # the PEFT adapter folder, or the whole model's folder for a full fine-tune
    run_dir: Path | None
    spec: dict
    method: str = "lora"      # "full": peft_dir is a complete Hugging Face model (safetensors), no adapter

    @property
    def is_full(self) -> bool:
        return self.method == "full"


def merged_file(ref: "AdapterRef", qtype: str = "Q8_0") -> str:
    """File name of the standalone GGUF of a run: model-<q>.gguf (full fine-tune) or merged-<q>.gguf (LoRA)."""
    return f"{'model' if ref.is_full else 'merged'}-{qtype.lower()}.gguf"


def resolve_adapter(ref: str, settings=None) -> AdapterRef:
    """A run id, an adapter name, "ft:<name>" or a PEFT folder path -> the adapter and the spec that made it."""
    from core.config import get_settings
    from core.fileio import read_json

    s = settings or get_settings()
    name = ref.removeprefix("ft:")
    run_dir = s.runs_dir / name
    if name and "/" not in name and (run_dir / "status.json").is_file():
        spec = {k: v for k, v in (read_json(run_dir / "spec.json", {}) or {}).items()}
        if spec.get("method") == "full":
            if not (run_dir / "model" / "config.json").is_file():
                state = (read_json(run_dir / "status.json", {}) or {}).get("state")
                raise ExportError(f"Run {name} has no saved model (state: {state}); only a succeeded run can be "
                                  "exported.")
            return AdapterRef(name, run_dir / "model", run_dir, spec, "full")
        if not (run_dir / "adapter" / "adapter_config.json").is_file():
            state = (read_json(run_dir / "status.json", {}) or {}).get("state")
            raise ExportError(f"Run {name} has no adapter (state: {state}); only a succeeded run can be exported.")
        return AdapterRef(name, run_dir / "adapter", run_dir, spec)
    meta = s.adapters_dir / name / "adapter.json"
    if name and "/" not in name and meta.is_file():
        info = read_json(meta, {}) or {}
        peft_dir = Path(info.get("peft_dir") or "")
        if info.get("method") == "full":
            if not (peft_dir / "config.json").is_file():
                raise ExportError(f"Full fine-tune {name} has no model folder any more ({peft_dir}); it can only be "
                                  "used as is.")
            return AdapterRef(name, peft_dir, None, (info.get("extra") or {}).get("spec") or
                              {"base_model": info.get("base_model"), "method": "full"}, "full")
        if not (peft_dir / "adapter_config.json").is_file():
            raise ExportError(f"Adapter {name} has no PEFT folder any more ({peft_dir}); it can only be used as is.")
        return AdapterRef(name, peft_dir, None, (info.get("extra") or {}).get("spec") or
                          {"base_model": info.get("base_model")})
    p = Path(ref).expanduser()
    if (p / "adapter_config.json").is_file():
        spec = {}
        if (p.parent / "spec.json").is_file():
            spec = read_json(p.parent / "spec.json", {}) or {}
            return AdapterRef(p.parent.name, p, p.parent, spec)
        return AdapterRef(p.name, p, None, spec)
    raise ExportError(f"No adapter {ref!r}: give a run id (python -m core jobs list), an adapter name or a PEFT "
                      "folder.")


def export_adapter(ref: str, fmt: str, out: Path | None = None, qtype: str = "Q8_0", create: bool = True,
                   settings=None, progress=None) -> ExportResult:
    """Export one adapter in one format; default output under <run>/export/ (or ./export-<name>/)."""
    import time

    from core.finetune.convert import resolve_base_model
    from core.finetune.datasets import common_system_prompt, read_jsonl
    from core.llm.models import DEFAULT_MODEL, PACKAGED_MODELS, packaged_gguf_path

    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    t0 = time.perf_counter()
    a = resolve_adapter(ref, settings)
    out_dir = Path(out) if out else (a.run_dir / "export" if a.run_dir else Path.cwd() / f"export-{a.name}")
    base_model = a.spec.get("base_model") or DEFAULT_MODEL
    if a.is_full and fmt != "gguf-merged":
        raise ExportError(f"Run {a.name} is a full fine-tune: it has no adapter, so there is no {fmt} export. Its "
                          f"whole model is in {a.peft_dir} (safetensors); export it as a standalone GGUF with format "
                          "gguf-merged (Q8_0 or F16).")
    if fmt == "peft":
        res = export_peft(a.peft_dir, out_dir / "peft")
    else:
        base_dir = resolve_base_model(base_model, settings)
        if fmt == "gguf-lora":
            res = export_gguf_lora(a.peft_dir, out_dir / "adapter.gguf", base_dir)
        else:
            if base_model not in PACKAGED_MODELS:
                raise ExportError(f"{fmt} needs the base model as GGUF; only the packaged models have one here "
                                  f"({', '.join(PACKAGED_MODELS)}).")
            base_gguf = packaged_gguf_path(base_model)
            if fmt == "gguf-merged" and a.is_full:
                res = export_gguf_full(a.peft_dir, out_dir / merged_file(a, qtype), base_gguf, qtype, progress)
            elif fmt == "gguf-merged":
                res = export_gguf_merged(a.peft_dir, out_dir / merged_file(a, qtype), base_gguf, base_dir,
                                         qtype, progress)
            else:
                lora = out_dir / "adapter.gguf"
                if not lora.is_file():
                    export_gguf_lora(a.peft_dir, lora, base_dir)
                system = None
                if a.run_dir and (a.run_dir / "data" / "train.jsonl").is_file():
                    system = common_system_prompt(read_jsonl(a.run_dir / "data" / "train.jsonl"))
                res = export_ollama(lora, base_gguf, base_dir, out_dir, a.name, system=system, create=create)
    res.seconds = round(time.perf_counter() - t0, 2)
    return res


# --- the "export" job kind: exports run in a job process, never in the Streamlit process -----------------------
def start_job(ref: str, fmt: str, qtype: str = "Q8_0", create: bool = True) -> str:
    """Start an export in its own worker process (the merged GGUF loads the full fp32 model). Returns the job id;
    its result (an ExportResult dict) is in the job's status once it succeeded."""
    from core import jobs

    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    return jobs.create("export", {"ref": ref, "format": fmt, "qtype": qtype, "create": create},
                       name=f"{fmt} export of {ref}", message=f"exporting {fmt}").id


def run_job(spec: dict, report) -> dict:
    fmt = spec["format"]
    report(message=f"exporting {fmt}", progress=0.0, force=True)

    def progress(fraction: float, what: str) -> None:
        report(progress=round(0.05 + 0.9 * fraction, 4), message=f"{fmt}: {what}")

    res = export_adapter(spec["ref"], fmt, qtype=spec.get("qtype") or "Q8_0", create=bool(spec.get("create", True)),
                         progress=progress)
    report(progress=1.0, message=f"{fmt}: {res.path} ({res.size_bytes / 1e6:.2f} MB, {res.seconds} s)", check=False)
    report.log(f"{fmt} export written: {res.path}")
    return res.to_dict()


def latest_export(ref: str, fmt: str) -> dict | None:
    """The newest export job of this adapter and format (any state), as a dict: state, result, error, id."""
    from core import jobs

    for job in jobs.list_jobs("export", where=lambda j: j.spec.get("ref") == ref and j.spec.get("format") == fmt,
                              limit=1):
        return {"id": job.id, "state": job.state, "result": job.result, "error": job.error, "active": job.active}
    return None

