"""Fine-tune bench: seconds per step and peak memory of a job started through our runner (own process, status/metrics
files, callbacks) vs a bare Unsloth loop and a bare PEFT+TRL loop with the same spec on the same data.

    .venv/bin/python bench/finetune.py [--steps 10] [--rows 40] [--threads 0]

Each variant runs in a fresh process (Unsloth patches transformers/TRL globally on import). s/step is the training
loop only (model loading excluded, measured the same way in all three); "wall" includes process start and loading.
Target: runner <= 1.1x bare Unsloth.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARE = textwrap.dedent(r'''
import json, os, resource, sys, time
os.environ["UNSLOTH_AUTO_INSTALL"] = "0"; os.environ["UNSLOTH_LLAMA_CPP_OFFLINE"] = "1"
cfg = json.loads(sys.argv[1])
S = cfg["spec"]
t_start = time.perf_counter()
if cfg["kind"] == "unsloth":
    import unsloth  # noqa: F401
    from unsloth import FastLanguageModel
import torch
if cfg["threads"]:
    torch.set_num_threads(cfg["threads"])
from datasets import Dataset
from trl import SFTConfig, SFTTrainer
rows = [json.loads(l) for l in open(cfg["data"], encoding="utf-8") if l.strip()]
ds = Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows])
torch.manual_seed(42)
if cfg["kind"] == "unsloth":
    model, tok = FastLanguageModel.from_pretrained(model_name=cfg["base"], max_seq_length=S["max_seq_len"], dtype=None,
                                                   load_in_4bit=False, local_files_only=True)
    model = FastLanguageModel.get_peft_model(model, r=S["lora_r"], lora_alpha=S["lora_alpha"], lora_dropout=0.0,
                                             target_modules=S["target_modules"], bias="none",
                                             use_gradient_checkpointing=False, random_state=42,
                                             max_seq_length=S["max_seq_len"])
else:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(cfg["base"], local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(cfg["base"], dtype=torch.float32, local_files_only=True)
    model = get_peft_model(model, LoraConfig(r=S["lora_r"], lora_alpha=S["lora_alpha"], lora_dropout=0.0,
                                             target_modules=S["target_modules"], bias="none", task_type="CAUSAL_LM"))
args = SFTConfig(output_dir=cfg["out"], per_device_train_batch_size=S["batch_size"], gradient_accumulation_steps=1,
                 learning_rate=S["learning_rate"], max_steps=cfg["steps"], warmup_steps=S["warmup_steps"],
                 lr_scheduler_type="linear", logging_steps=1, save_strategy="no", report_to="none", seed=42,
                 data_seed=42, max_length=S["max_seq_len"],
                 packing=False, completion_only_loss=True, bf16=cfg["bf16"], gradient_checkpointing=False,
                 dataloader_num_workers=0, disable_tqdm=True, use_cpu=True)
from trl.trainer import utils as trl_utils
if cfg["kind"] == "unsloth" or trl_utils._ChunkedLogProbFunction is not None:
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
else:
    # TRL 1.x's SFT loss needs Triton kernels (CUDA torch): the bare CPU loop is transformers.Trainer on the same
    # chat-template tokens with answer-only labels.
    from transformers import Trainer, TrainingArguments
    def ids(x):
        return list(x["input_ids"] if isinstance(x, dict) or hasattr(x, "input_ids") else x)
    feats = []
    for r in rows:
        full = ids(tok.apply_chat_template(r["messages"], tokenize=True))[:S["max_seq_len"]]
        p = ids(tok.apply_chat_template(r["messages"][:-1], tokenize=True, add_generation_prompt=True))
        feats.append({"input_ids": full, "attention_mask": [1] * len(full),
                      "labels": ([-100] * len(p) + full[len(p):])[:len(full)]})
    def collate(b):
        n = max(len(x["input_ids"]) for x in b)
        pad = lambda k, v: torch.tensor([x[k] + [v] * (n - len(x[k])) for x in b])
        return {"input_ids": pad("input_ids", tok.pad_token_id), "attention_mask": pad("attention_mask", 0),
                "labels": pad("labels", -100)}
    targs = TrainingArguments(output_dir=cfg["out"], per_device_train_batch_size=S["batch_size"],
                              learning_rate=S["learning_rate"], max_steps=cfg["steps"], warmup_steps=S["warmup_steps"],
                              lr_scheduler_type="linear", logging_steps=1, save_strategy="no", report_to="none",
                              seed=42, data_seed=42, bf16=cfg["bf16"], gradient_checkpointing=False,
                              dataloader_num_workers=0, disable_tqdm=True, use_cpu=True, remove_unused_columns=False)
    trainer = Trainer(model=model, args=targs, train_dataset=feats, data_collator=collate, processing_class=tok)
t0 = time.perf_counter()
out = trainer.train()
dt = time.perf_counter() - t0
losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
print("RESULT " + json.dumps({"seconds_per_step": dt / trainer.state.global_step, "train_seconds": dt,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "first_loss": losses[0],
      "last_loss": losses[-1], "load_seconds": t0 - t_start}))
''')


def bf16_native() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


def run_bare(kind: str, data: Path, base: Path, steps: int, threads: int, tmp: Path) -> dict:
    from core.finetune.spec import preset_spec
    cfg = {"kind": kind, "data": str(data), "base": str(base), "steps": steps, "threads": threads,
           "spec": preset_spec("quick").to_dict(),
           "out": str(tmp / f"out-{kind}"), "bf16": bf16_native()}
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", BARE, json.dumps(cfg)], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    wall = time.perf_counter() - t0
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode or not line:
        raise SystemExit(f"bare {kind} failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return {**json.loads(line[-1][7:]), "wall": wall}


def run_runner(data: Path, steps: int, threads: int, tmp: Path) -> dict:
    os.environ["WORKBENCH_DATA"] = str(tmp / "data")
    from core.finetune import runner
    from core.finetune.datasets import load_file
    from core.finetune.spec import preset_spec
    spec = preset_spec("quick").replace(max_steps=steps, eval_steps=0, val_fraction=0.0, threads=threads)
    t0 = time.perf_counter()
    run = runner.submit(spec, load_file(data))
    run = runner.wait(run.run_id, poll=0.5)
    wall = time.perf_counter() - t0
    if run.state != "succeeded":
        raise SystemExit(f"runner job {run.state}: {run.status.get('error')}")
    f = run.status["final"]
    return {"seconds_per_step": f["seconds_per_step"], "train_seconds": f["train_seconds"],
            "peak_rss_mb": f["peak_rss_mb"], "first_loss": f["first_loss"], "last_loss": f["last_loss"],
            "wall": wall, "trainer": run.status["trainer"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    args = ap.parse_args()

    from core.finetune.convert import ensure_hf_model
    base = ensure_hf_model()
    src = ROOT / "sample_docs" / "finetune" / "train.chat.jsonl"
    with tempfile.TemporaryDirectory(prefix="bench-ft-") as td:
        tmp = Path(td)
        data = tmp / "train.jsonl"
        data.write_text("\n".join(src.read_text(encoding="utf-8").splitlines()[:args.rows]) + "\n", encoding="utf-8")
        q = __import__("core.finetune.spec", fromlist=["preset_spec"]).preset_spec("quick")
        print(f"Same spec for all (the quick preset): SmolLM2-135M-Instruct, LoRA r={q.lora_r} on "
              f"{','.join(q.target_modules)}, batch {q.batch_size}, seq {q.max_seq_len}, lr {q.learning_rate}, "
              f"{args.steps} steps, "
              f"{args.rows} rows, completion-only loss, bf16={bf16_native()}, cores={os.cpu_count()}, "
              f"load avg {os.getloadavg()[0]:.1f}")
        results = {}
        results["bare Unsloth (CPU path)"] = run_bare("unsloth", data, base, args.steps, args.threads, tmp)
        results["bare PEFT (+TRL/Trainer)"] = run_bare("peft", data, base, args.steps, args.threads, tmp)
        results["our runner (Unsloth)"] = run_runner(data, args.steps, args.threads, tmp)
    ref = results["bare Unsloth (CPU path)"]["seconds_per_step"]
    print(f"\n{'variant':<26} {'s/step':>8} {'x bare Unsloth':>15} {'peak RSS MB':>12} {'loss first->last':>18} "
          f"{'wall s':>8}")
    for name, r in results.items():
        print(f"{name:<26} {r['seconds_per_step']:>8.2f} {r['seconds_per_step'] / ref:>15.2f} {r['peak_rss_mb']:>12.0f} "
              f"{r['first_loss']:>8.3f} -> {r['last_loss']:<7.3f} {r['wall']:>8.1f}")
    ratio = results["our runner (Unsloth)"]["seconds_per_step"] / ref
    print(f"\nrunner / bare Unsloth = {ratio:.2f} (target <= 1.10): {'OK' if ratio <= 1.1 else 'ABOVE TARGET'}")
    print(f"load avg at the end: {os.getloadavg()[0]:.1f} (timings on a shared CPU are noisy)")


if __name__ == "__main__":
    main()
