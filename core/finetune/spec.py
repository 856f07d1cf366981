"""One job spec for every trainer, its presets, validation and the equivalent CLI line."""
from __future__ import annotations

import math
import os
import shlex
import sys
from dataclasses import asdict, dataclass, field, fields

from core.errors import InvalidParams, NeedsGPU
from core.llm.models import DEFAULT_MODEL

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TRAINERS = ("auto", "unsloth", "peft+trl")
DATA_VARIANTS = ("plain", "raft")                  # core/finetune/raft.py builds the "raft" rows
# RAFT rows carry the retrieved context in the prompt: the transcripts' 256 tokens become 300-450
MIN_SEQ_LEN = {"raft": 512}
METHODS = ("lora", "full", "qlora")                # LoRA adapter | every weight trained | LoRA on a 4-bit base (CUDA)
LORA_SETTINGS = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")   # meaningless for a full fine-tune
LORA_LEARNING_RATE = 2e-3
# A full fine-tune moves every weight, not a small zero-initialised low-rank delta: at LoRA's 2e-3 AdamW rewrites
# the pretrained weights in a few steps (loss spikes, the chat format and English fluency go first). 5e-5 is the
# usual full-SFT rate for small causal LMs and still lowers the loss within ~10 steps on the transcripts.
FULL_LEARNING_RATE = 5e-5
METHOD_LEARNING_RATE = {"lora": LORA_LEARNING_RATE, "qlora": LORA_LEARNING_RATE, "full": FULL_LEARNING_RATE}


def cuda_present() -> bool:
    """A CUDA GPU is usable, checked without importing torch (the UI process never imports it): torch's answer if
    torch is already loaded, else the NVIDIA driver's /proc entry."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            return bool(torch.cuda.is_available())
        except Exception:  # noqa: BLE001
            return False
    return os.path.exists("/proc/driver/nvidia/version") and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != ""


@dataclass
class JobSpec:
    data: str = ""                                  # path of the JSONL/CSV file (copied into the run folder)
    base_model: str = DEFAULT_MODEL                 # packaged id, or a local Hugging Face model folder
    name: str = ""                                  # optional label shown in the runs list
    method: str = "lora"                            # lora | full (every weight) | qlora (4-bit base, CUDA only)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(ALL_LINEAR))
    learning_rate: float = None  # type: ignore[assignment]  # None = the method's default (METHOD_LEARNING_RATE)
    epochs: float = 1.0
    max_steps: int = 60                             # > 0 overrides epochs
    batch_size: int = 4
    grad_accum: int = 1
    max_seq_len: int = 256
    warmup_steps: int = 3
    load_in_4bit: bool = False                      # QLoRA, CUDA only
    seed: int = 42
    val_fraction: float = 0.1
    eval_steps: int = 20                            # 0 = no evaluation during training
    early_stopping_patience: int = 0                # evaluations without eval-loss improvement before stopping; 0=off
    logging_steps: int = 1
    trainer: str = "auto"                           # auto (Unsloth, else PEFT+TRL) | unsloth | peft+trl
    threads: int = 0                                # torch threads on CPU; 0 = all cores
    completion_only: bool = True                    # learn only the assistant answer (prompt tokens masked)
    data_variant: str = "plain"                     # plain transcripts | raft: retrieval-augmented (core/finetune/raft.py)

    def __post_init__(self):
        if self.learning_rate is None:
            self.learning_rate = METHOD_LEARNING_RATE.get(self.method, LORA_LEARNING_RATE)

    # ---------------------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict | None) -> "JobSpec":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidParams(f"Unknown job setting(s): {', '.join(sorted(unknown))}. Known: {', '.join(sorted(known))}.")
        spec = cls(**data)
        if isinstance(spec.target_modules, str):
            spec.target_modules = [m.strip() for m in spec.target_modules.split(",") if m.strip()]
        return spec

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "JobSpec":
        """A copy with these settings changed. Switching `method` without an explicit learning_rate also switches
        to that method's default learning rate (FULL_LEARNING_RATE for "full")."""
        changes = {k: v for k, v in changes.items() if v is not None}
        method = changes.get("method")
        if method and method != self.method and "learning_rate" not in changes and method in METHOD_LEARNING_RATE:
            changes["learning_rate"] = METHOD_LEARNING_RATE[method]
        return JobSpec.from_dict({**self.to_dict(), **changes})

    @property
    def is_full(self) -> bool:
        return self.method == "full"

    @property
    def is_qlora(self) -> bool:
        return self.method == "qlora" or (self.method == "lora" and bool(self.load_in_4bit))

    def ignored_settings(self) -> dict:
        """Settings this method does not use, with their values (recorded in the run, listed on its card)."""
        return {k: getattr(self, k) for k in LORA_SETTINGS} if self.is_full else {}

    def check_device(self) -> "JobSpec":
        """NeedsGPU when the spec asks for QLoRA (a 4-bit base through bitsandbytes, CUDA only) on a machine without
        a CUDA GPU. Separate from validate(): a QLoRA spec is valid, it just cannot run here."""
        if self.is_qlora and not cuda_present():
            raise NeedsGPU("QLoRA (method qlora / a 4-bit base) needs a CUDA GPU and this machine has none: "
                           "bitsandbytes' 4-bit kernels do not run on CPU. Choose method 'lora' (same adapter on "
                           "the full-precision base) or 'full', or run this spec on a GPU machine.")
        return self

    def validate(self) -> "JobSpec":
        """InvalidParams naming the field and its allowed range, before any job starts."""
        def rng(name, lo, hi, integer=False):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, float)) or (integer and not float(val).is_integer()) \
                    or math.isnan(float(val)) or not lo <= val <= hi:
                kind = "a whole number" if integer else "a number"
                raise InvalidParams(f"{name} must be {kind} between {lo} and {hi} (got {val!r}).")
        rng("lora_r", 1, 512, True)
        rng("lora_alpha", 1, 4096, True)
        rng("lora_dropout", 0.0, 0.9)
        rng("learning_rate", 1e-7, 1e-1)
        rng("epochs", 0.0, 100.0)
        rng("max_steps", 0, 1_000_000, True)
        rng("batch_size", 1, 1024, True)
        rng("grad_accum", 1, 1024, True)
        rng("max_seq_len", 32, 131072, True)
        rng("warmup_steps", 0, 100_000, True)
        rng("seed", 0, 2**31 - 1, True)
        rng("val_fraction", 0.0, 0.5)
        rng("eval_steps", 0, 1_000_000, True)
        rng("early_stopping_patience", 0, 1000, True)
        rng("logging_steps", 1, 10_000, True)
        rng("threads", 0, 1024, True)
        if self.max_steps == 0 and self.epochs <= 0:
            raise InvalidParams("Set max_steps > 0 or epochs > 0: the job would not train at all.")
        if not self.target_modules or not all(isinstance(m, str) and m.isidentifier() for m in self.target_modules):
            raise InvalidParams(f"target_modules must be a non-empty list of module names such as q_proj, v_proj "
                                f"(got {self.target_modules!r}).")
        if self.method not in METHODS:
            raise InvalidParams(f"method must be one of {', '.join(METHODS)} (got {self.method!r}): lora = a small "
                                f"adapter, full = every weight of the model, qlora = LoRA on a 4-bit base (CUDA).")
        if self.is_full and self.load_in_4bit:
            raise InvalidParams("A full fine-tune trains every weight in full precision: a 4-bit base is QLoRA. "
                                "Untick 4-bit, or choose method 'qlora' on a GPU machine.")
        if self.data_variant not in DATA_VARIANTS:
            raise InvalidParams(f"data_variant must be one of {', '.join(DATA_VARIANTS)} (got {self.data_variant!r}): "
                                f"plain = the transcripts, raft = retrieval-augmented examples.")
        if self.trainer not in TRAINERS:
            raise InvalidParams(f"trainer must be one of {', '.join(TRAINERS)} (got {self.trainer!r}).")
        if self.early_stopping_patience and (not self.eval_steps or not self.val_fraction):
            raise InvalidParams("Early stopping needs an evaluation: set eval_steps > 0 and val_fraction > 0.")
        if not self.base_model:
            raise InvalidParams("base_model is empty: pick the packaged model or a local Hugging Face folder.")
        return self

    def cli_line(self, data: str | None = None, preset: str | None = None) -> str:
        """The `python -m core finetune` line that starts the same job (only settings that differ from the preset)."""
        base = PRESETS[preset].spec if preset in PRESETS else JobSpec()
        parts = ["python", "-m", "core", "finetune", "--data", data or self.data or "FILE"]
        if preset in PRESETS:
            parts += ["--preset", preset]
        for f in fields(self):
            if f.name in ("data",):
                continue
            val, ref = getattr(self, f.name), getattr(base, f.name)
            if val == ref:
                continue
            opt = "--" + f.name.replace("_", "-")
            if isinstance(val, bool):
                parts.append(opt if val else "--no-" + f.name.replace("_", "-"))
            elif isinstance(val, list):
                parts += [opt, ",".join(val)]
            else:
                parts += [opt, str(val)]
        return shlex.join(parts)


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    spec: JobSpec


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "quick", "Quick demo on CPU",
        "SmolLM2-135M-Instruct, LoRA r=16 on all linear layers, 60 steps of 4 examples at 256 tokens, lr 2e-3: "
        "~4 minutes on a quiet 2-core CPU (3.8 s/step), less with more cores; held-out answers pass all three "
        "brand-voice checks.",
        JobSpec(),
    ),
    "cpu-thorough": Preset(
        "cpu-thorough", "Thorough on CPU",
        "All linear layers, r=16, lr 5e-4, 3 epochs with evaluation every 10 steps and early stopping: ~10-20 minutes on a "
        "laptop CPU.",
        JobSpec(learning_rate=5e-4, epochs=3.0, max_steps=0, eval_steps=10, early_stopping_patience=3,
                val_fraction=0.15),
    ),
    "full-cpu": Preset(
        "full-cpu", "Full fine-tune on CPU",
        "Every weight of SmolLM2-135M-Instruct (134.5 M parameters, no adapter), 30 steps of 4 examples at 256 "
        "tokens, lr 5e-5 (full fine-tuning moves pretrained weights: a LoRA rate would wreck them). The artifact is "
        "a whole model (safetensors + a Q8_0 GGUF), not a small adapter.",
        JobSpec(method="full", max_steps=30),
    ),
    "qlora-7b-24gb": Preset(
        "qlora-7b-24gb", "7B QLoRA on a 24 GB GPU",
        "4-bit base (Unsloth bnb-4bit checkpoint in a local folder), LoRA r=16 on all linear layers, 2048 tokens, "
        "effective batch 16. Needs CUDA and the base model downloaded beforehand.",
        JobSpec(base_model="unsloth/Qwen2.5-7B-Instruct-bnb-4bit", method="qlora", lora_r=16, lora_alpha=16,
                target_modules=list(ALL_LINEAR), learning_rate=2e-4, epochs=1.0, max_steps=0, batch_size=2,
                grad_accum=8, max_seq_len=2048, warmup_steps=10, load_in_4bit=True, eval_steps=50,
                early_stopping_patience=3, val_fraction=0.05, logging_steps=5),
    ),
}


def preset_spec(name: str) -> JobSpec:
    if name not in PRESETS:
        raise InvalidParams(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return JobSpec.from_dict(PRESETS[name].spec.to_dict())
