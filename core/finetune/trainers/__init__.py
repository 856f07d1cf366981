"""Trainer registry: "unsloth" (preferred) and "peft+trl" (fallback, same spec). Worker process only.

Registered by dotted path (core.registry): naming a trainer imports nothing until it is used.
"""
from __future__ import annotations

from core.errors import UnknownTrainer
from core.finetune.trainers.base import BaseTrainer, TrainContext, TrainResult  # noqa: F401
from core.registry import Registry

TRAINERS: Registry[type[BaseTrainer]] = Registry("trainer", UnknownTrainer)
TRAINERS.register("unsloth", "core.finetune.trainers.unsloth:UnslothTrainer",
                  "Unsloth (GPU, or its CPU path when no GPU is found).")
TRAINERS.register("peft+trl", "core.finetune.trainers.peft_trl:PeftTrlTrainer", "Plain PEFT LoRA + TRL SFTTrainer.")


def get_trainer(name: str) -> BaseTrainer:
    return TRAINERS.create(name)


def pick_trainer(requested: str = "auto") -> tuple[BaseTrainer, str]:
    """(trainer, note). "auto" and "unsloth" try Unsloth first; if it cannot import, PEFT+TRL runs the same spec
    and the note says why."""
    if requested == "peft+trl":
        return get_trainer("peft+trl"), "PEFT + TRL (chosen in the spec)."
    trainer = get_trainer("unsloth")
    ok, why = trainer.available()
    if ok:
        return trainer, "Unsloth " + ("GPU path." if trainer.device() == "cuda" else "CPU path (no GPU found).")
    return get_trainer("peft+trl"), f"Unsloth could not be imported ({why}); fell back to plain PEFT + TRL."
