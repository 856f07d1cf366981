"""Plain PEFT + TRL with the same spec: the fallback when Unsloth cannot import (and the bench's reference)."""
from __future__ import annotations

from pathlib import Path

from core.errors import JobError
from core.finetune.spec import JobSpec
from core.finetune.trainers.base import BaseTrainer, TrainContext


class PeftTrlTrainer(BaseTrainer):
    name = "peft+trl"

    def load(self, spec: JobSpec, base_dir: Path, ctx: TrainContext):
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs = {}
        if spec.is_qlora:
            if not torch.cuda.is_available():
                raise JobError("4-bit (QLoRA) loading needs a CUDA GPU: untick 4-bit or run on a GPU machine.")
            from transformers import BitsAndBytesConfig
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                               bnb_4bit_compute_dtype=torch.bfloat16)
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32, local_files_only=True,
                                                     **kwargs)
        model.config.use_cache = False
        cfg = LoraConfig(r=spec.lora_r, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout,
                         target_modules=list(spec.target_modules), bias="none", task_type="CAUSAL_LM")
        return get_peft_model(model, cfg), tokenizer

    def load_full(self, spec: JobSpec, base_dir: Path, ctx: TrainContext):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32, local_files_only=True)
        model.config.use_cache = False
        for p in model.parameters():
            p.requires_grad_(True)
        return model, tokenizer
