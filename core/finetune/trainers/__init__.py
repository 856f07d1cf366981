"""Trainer registry: "unsloth" (preferred) and "peft+trl" (fallback, same spec). Worker process only."""
from __future__ import annotations

from core.errors import JobError
from core.finetune.trainers.base import BaseTrainer, TrainContext, TrainResult  # noqa: F401


def get_trainer(name: str) -> BaseTrainer:
    if name == "unsloth":
        from core.finetune.trainers.unsloth import UnslothTrainer
        return UnslothTrainer()
    if name == "peft+trl":
        from core.finetune.trainers.peft_trl import PeftTrlTrainer
        return PeftTrlTrainer()
    raise JobError(f"Unknown trainer {name!r}: use unsloth or peft+trl.")


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
