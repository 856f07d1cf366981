"""The `method` of a job spec: allowed values, full-FT defaults and ignored LoRA settings, QLoRA refused on CPU with
a typed error (before any job starts), the CLI's --method, and what a full run does not export."""
from __future__ import annotations

import shlex

import pytest

from core.cli import build_parser
from core.errors import ExportError, InvalidParams, NeedsGPU
from core.finetune import spec as spec_mod
from core.finetune.cli import _spec_from_args
from core.finetune.spec import FULL_LEARNING_RATE, LORA_LEARNING_RATE, METHODS, JobSpec, preset_spec


def test_method_values():
    assert METHODS == ("lora", "full", "qlora")
    assert JobSpec().method == "lora"                      # today's behaviour by default
    for m in METHODS:
        JobSpec().replace(method=m).validate()
    with pytest.raises(InvalidParams, match="method must be one of lora, full, qlora"):
        JobSpec().replace(method="adapter").validate()
    with pytest.raises(InvalidParams, match="full fine-tune trains every weight"):
        JobSpec(method="full", load_in_4bit=True).validate()


def test_full_switches_to_its_lower_learning_rate_unless_one_is_given():
    full = preset_spec("quick").replace(method="full")
    assert full.learning_rate == FULL_LEARNING_RATE < LORA_LEARNING_RATE
    assert preset_spec("quick").replace(method="full", learning_rate=1e-4).learning_rate == 1e-4
    assert full.replace(method="lora").learning_rate == LORA_LEARNING_RATE
    assert preset_spec("full-cpu").method == "full" and preset_spec("full-cpu").learning_rate == FULL_LEARNING_RATE
    assert JobSpec(method="full").learning_rate == FULL_LEARNING_RATE and JobSpec().learning_rate == LORA_LEARNING_RATE
    assert JobSpec(method="full", learning_rate=1e-3).learning_rate == 1e-3            # an explicit rate is kept
    stored = JobSpec(method="full", learning_rate=2e-3).to_dict()                      # a stored spec round-trips
    assert JobSpec.from_dict(stored).learning_rate == 2e-3


def test_full_records_the_lora_settings_it_ignores():
    full = JobSpec(method="full", lora_r=64, target_modules=["q_proj"])
    full.validate()                                          # LoRA settings do not make a full spec invalid
    assert full.ignored_settings() == {"lora_r": 64, "lora_alpha": 32, "lora_dropout": 0.0,
                                       "target_modules": ["q_proj"]}
    assert JobSpec().ignored_settings() == {}


@pytest.mark.parametrize("changes", [{"method": "qlora"}, {"load_in_4bit": True}])
def test_qlora_on_cpu_is_refused_with_a_typed_error(monkeypatch, changes):
    monkeypatch.setattr(spec_mod, "cuda_present", lambda: False)
    s = JobSpec().replace(**changes).validate()              # a valid spec ...
    with pytest.raises(NeedsGPU, match="needs a CUDA GPU"):  # ... that cannot run on this machine
        s.check_device()
    assert issubclass(NeedsGPU, InvalidParams)
    JobSpec(method="full").check_device()                    # full and lora run on CPU
    JobSpec().check_device()


def test_qlora_submit_refuses_before_writing_a_run(monkeypatch, data_dir):
    from core.finetune import runner
    from core.finetune.datasets import load_file
    from tests.finetune.ft_helpers import small_train_file

    monkeypatch.setattr(spec_mod, "cuda_present", lambda: False)
    ds = load_file(small_train_file(data_dir, 4))
    with pytest.raises(NeedsGPU):
        runner.submit(JobSpec(method="qlora", max_steps=1), ds)
    assert runner.list_runs() == []                          # nothing half-written


def test_cli_method_full_round_trips():
    args = build_parser().parse_args(["finetune", "--data", "x.jsonl", "--method", "full", "--max-steps", "4"])
    s = _spec_from_args(args)
    assert s.method == "full" and s.learning_rate == FULL_LEARNING_RATE and s.max_steps == 4
    line = s.cli_line(data="x.jsonl", preset="quick")
    assert "--method full" in line
    assert _spec_from_args(build_parser().parse_args(shlex.split(line)[3:])) == s
    with pytest.raises(SystemExit):
        build_parser().parse_args(["finetune", "--data", "x.jsonl", "--method", "adapter"])
    show = build_parser().parse_args(["finetune", "show", "ft-123"])
    assert show.action == "show" and show.run == "ft-123"


def test_run_card_rows_for_both_methods():
    from core.finetune.views import run_card
    final = {"method": "full", "trainable_params": 134_515_008, "total_params": 134_515_008, "peak_rss_mb": 3100.0,
             "seconds_per_step": 4.2, "steps": 10, "train_seconds": 42.0, "artifact_bytes": 538_000_000,
             "gguf_bytes": 144_800_000, "load_seconds": 0.31, "heldout_loss": 2.5, "heldout_rows": 27}
    card = {r["measure"]: r["value"] for r in run_card(final)}
    assert card["trainable parameters"] == "134,515,008 of 134,515,008 (100.00%)"
    assert card["artifact on disk"] == "538.0 MB" and card["load time (llama.cpp)"] == "0.31 s"
    assert card["held-out loss"] == "2.500" and card["method"].startswith("full")
    lora = {r["measure"]: r["value"] for r in run_card({"trainable_params": 10, "total_params": 1000})}
    assert lora["method"] == "lora" and lora["trainable parameters"].endswith("(1.00%)") and lora["peak memory"] == "–"


def test_a_full_run_has_only_the_standalone_gguf_export(data_dir):
    import json

    from core.finetune.export import export_adapter, resolve_adapter
    run = data_dir / "runs" / "ft-full-1"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    (run / "status.json").write_text(json.dumps({"state": "succeeded"}))
    (run / "spec.json").write_text(json.dumps({"method": "full", "base_model": "smollm2-135m-instruct"}))
    ref = resolve_adapter("ft-full-1")
    assert ref.is_full and ref.peft_dir == run / "model"
    for fmt in ("peft", "gguf-lora", "ollama"):
        with pytest.raises(ExportError, match="full fine-tune"):
            export_adapter("ft-full-1", fmt)


def test_cost_model_counts_a_full_fine_tune_with_its_training_seconds():
    from core.compare.cost import ApproachUsage, CostModel, approach_cost, maintenance
    full = ApproachUsage("full-ft", n=3, llm_seconds=0.5, fine_tuned=True, train_seconds=120.0, train_device="cpu",
                         ft_method="full")
    lora = ApproachUsage("lora-ft", n=3, llm_seconds=0.5, fine_tuned=True, train_seconds=60.0, ft_method="lora")
    m = CostModel()
    assert approach_cost(full, m).one_off_training == pytest.approx(120.0 * m.train_per_hour / 3600)
    rows = {r.name: r for r in maintenance([full, lora], {})}
    assert "full fine-tune" in rows["full-ft"].model_change and "~2 min" in rows["full-ft"].model_change
    assert rows["full-ft"].model_redo_s == 120.0
    assert "retrain the adapter" in rows["lora-ft"].model_change
