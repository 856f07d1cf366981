"""Unsloth: its CUDA path when a GPU is there, its CPU path (stock transformers + PEFT + TRL with Unsloth's CPU
defaults: fused AdamW, chunked cross-entropy, bf16 autocast where native) otherwise.

Imported in the worker process only (Unsloth patches transformers/TRL globally on import)."""
from __future__ import annotations

import os
from pathlib import Path

from core.finetune.spec import JobSpec
from core.finetune.trainers.base import BaseTrainer, TrainContext


def import_unsloth():
    os.environ["UNSLOTH_AUTO_INSTALL"] = "0"          # never apt-get / git clone
    os.environ["UNSLOTH_LLAMA_CPP_OFFLINE"] = "1"
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
    import unsloth  # noqa: F401  (must come before transformers/trl/peft imports to patch them)
    from unsloth import FastLanguageModel
    return FastLanguageModel


class UnslothTrainer(BaseTrainer):
    name = "unsloth"

    def available(self) -> tuple[bool, str]:
        try:
            import_unsloth()
            return True, ""
        except Exception as exc:  # noqa: BLE001 - any import failure means: fall back
            return False, f"{type(exc).__name__}: {exc}"

    def load(self, spec: JobSpec, base_dir: Path, ctx: TrainContext):
        FastLanguageModel = import_unsloth()
        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=str(base_dir), max_seq_length=spec.max_seq_len, dtype=None,
            load_in_4bit=spec.is_qlora, local_files_only=True,
        )
        model = FastLanguageModel.get_peft_model(
            model, r=spec.lora_r, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout,
            target_modules=list(spec.target_modules), bias="none",
            use_gradient_checkpointing="unsloth" if self.device() == "cuda" else False,
            random_state=spec.seed, max_seq_length=spec.max_seq_len,
        )
        return model, tokenizer

    def load_full(self, spec: JobSpec, base_dir: Path, ctx: TrainContext):
        """Unsloth's full fine-tuning mode (full_finetuning=True), which its CPU path supports ("text LoRA / full
        finetuning with SFTTrainer"). dtype float32: with dtype=None Unsloth loads bf16 *weights* on a bf16 CPU, and
        pure-bf16 AdamW at 5e-5 rounds most updates away; bf16 stays on as autocast (SFTConfig bf16)."""
        import torch
        FastLanguageModel = import_unsloth()
        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=str(base_dir), max_seq_length=spec.max_seq_len, dtype=torch.float32, load_in_4bit=False,
            full_finetuning=True, local_files_only=True,
            use_gradient_checkpointing="unsloth" if self.device() == "cuda" else False,
        )
        model.config.use_cache = False
        return model, tokenizer

    def library(self, spec: JobSpec, use_trl: bool) -> str:
        from core.finetune.trainers.base import library_versions
        mode = "full_finetuning=True" if spec.is_full else "LoRA"
        path = "GPU" if self.device() == "cuda" else "CPU path"
        return f"Unsloth {mode}, {path} + TRL SFTTrainer ({library_versions('unsloth', 'transformers', 'trl', 'torch')})"

    def sft_classes(self):
        import_unsloth()
        from trl import SFTConfig, SFTTrainer   # Unsloth's patched classes once unsloth is imported
        return SFTTrainer, SFTConfig
