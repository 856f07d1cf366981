"""Job spec: validation messages, presets, the equivalent CLI line."""
from __future__ import annotations

import shlex

import pytest

from core.cli import build_parser
from core.errors import InvalidParams
from core.finetune.cli import _spec_from_args
from core.finetune.spec import PRESETS, JobSpec, preset_spec


@pytest.mark.parametrize("field,value,needle", [
    ("lora_r", 0, "lora_r must be a whole number between 1 and 512"),
    ("learning_rate", 5.0, "learning_rate must be a number between"),
    ("lora_dropout", 1.5, "lora_dropout"),
    ("batch_size", 2.5, "batch_size must be a whole number"),
    ("max_seq_len", 8, "max_seq_len"),
    ("val_fraction", 0.9, "val_fraction"),
    ("trainer", "deepspeed", "trainer must be one of"),
    ("target_modules", [], "target_modules"),
    ("target_modules", ["q_proj; rm -rf"], "target_modules"),
])
def test_out_of_range_values_are_named(field, value, needle):
    with pytest.raises(InvalidParams, match=needle.replace("(", r"\(")):
        JobSpec().replace(**{field: value}).validate()


def test_no_training_and_early_stopping_without_eval():
    with pytest.raises(InvalidParams, match="would not train"):
        JobSpec(max_steps=0, epochs=0).validate()
    with pytest.raises(InvalidParams, match="Early stopping needs an evaluation"):
        JobSpec(early_stopping_patience=2, eval_steps=0).validate()
    with pytest.raises(InvalidParams, match="Unknown job setting"):
        JobSpec.from_dict({"lr": 1})


def test_presets_are_valid_and_quick_is_the_cpu_demo():
    for name in PRESETS:
        preset_spec(name).validate()
    q = preset_spec("quick")
    assert q.base_model == "smollm2-135m-instruct" and not q.load_in_4bit and 0 < q.max_steps <= 60
    assert preset_spec("qlora-7b-24gb").load_in_4bit
    with pytest.raises(InvalidParams, match="Unknown preset"):
        preset_spec("nope")


def test_cli_line_round_trips_through_the_parser():
    spec = preset_spec("quick").replace(max_steps=12, lora_r=4, target_modules=["q_proj", "k_proj", "v_proj"],
                                        completion_only=False, name="my run")
    line = spec.cli_line(data="data.jsonl", preset="quick")
    assert line.startswith("python -m core finetune --data data.jsonl --preset quick")
    args = build_parser().parse_args(shlex.split(line)[3:])
    back = _spec_from_args(args)
    assert back.replace(data="") == spec.replace(data="")
