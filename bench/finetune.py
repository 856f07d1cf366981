"""Fine-tune bench: seconds per step and peak memory of a job started through our runner (own process, status/metrics
files, callbacks) vs a bare Unsloth loop and a bare PEFT+TRL loop with the same spec on the same data.

    .venv/bin/python bench/finetune.py [--rounds 3] [--steps 6] [--rows 40] [--threads 0] [--preset quick]
    .venv/bin/python bench/finetune.py --method both|full|lora [--rounds 2] [--steps 10]

--method: full fine-tune vs LoRA through our runner (the same JobSpec except `method` and its default learning
rate), interleaved LoRA, full, LoRA, full, ...; per method the median s/step, trainable parameters, peak RSS
(getrusage high-water of the training process), artifact on disk (PEFT adapter vs whole model, safetensors), the
GGUF the embedded backend loads (GGUF LoRA vs standalone Q8_0), its llama.cpp load time and the held-out loss,
and the ratio full / LoRA of each. The first round of each method doubles as warm-up for the page cache: the table
uses the median of all rounds and prints the spread.

Every setting comes from ONE JobSpec (the preset, with max_steps/threads from the flags, no evaluation, all rows
for training), passed as a dict to the bare loops: LoRA r/alpha/dropout/targets, batch, grad accumulation, lr,
warmup, sequence length, seed, logging steps, completion-only loss, threads. What the spec does not hold is derived
the way the runner derives it (linear schedule, bf16 where the CPU has it natively, no gradient checkpointing on
CPU). Rounds are interleaved (A B C, A B C, ...; each variant in a fresh process, since Unsloth patches
transformers/TRL globally on import), so load drift on a shared machine hits every variant alike; the table gives
the median per variant with its min-max spread. s/step is the training loop only (model loading excluded,
measured the same way in all three); "wall" includes process start and loading. Target: runner <= 1.1x bare
Unsloth. Default run ~5-6 min on a quiet 2-core CPU; raise --rounds / --steps for tighter figures.
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
S = cfg["spec"]                      # every training setting comes from the job spec
t_start = time.perf_counter()
if cfg["kind"] == "unsloth":
    import unsloth  # noqa: F401
    from unsloth import FastLanguageModel
import torch
torch.set_num_threads(S["threads"] or os.cpu_count() or 1)      # as the runner does on CPU
from datasets import Dataset
from trl import SFTConfig, SFTTrainer
rows = [json.loads(l) for l in open(cfg["data"], encoding="utf-8") if l.strip()]
if S["completion_only"]:
    ds = Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows])
else:
    ds = Dataset.from_list([{"messages": r["messages"]} for r in rows])
torch.manual_seed(S["seed"])
if cfg["kind"] == "unsloth":
    model, tok = FastLanguageModel.from_pretrained(model_name=cfg["base"], max_seq_length=S["max_seq_len"], dtype=None,
                                                   load_in_4bit=bool(S["load_in_4bit"]), local_files_only=True)
    model = FastLanguageModel.get_peft_model(model, r=S["lora_r"], lora_alpha=S["lora_alpha"],
                                             lora_dropout=S["lora_dropout"], target_modules=S["target_modules"],
                                             bias="none", use_gradient_checkpointing=False, random_state=S["seed"],
                                             max_seq_length=S["max_seq_len"])
else:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(cfg["base"], local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(cfg["base"], dtype=torch.float32, local_files_only=True)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=S["lora_r"], lora_alpha=S["lora_alpha"], lora_dropout=S["lora_dropout"],
                                             target_modules=S["target_modules"], bias="none", task_type="CAUSAL_LM"))
common = dict(output_dir=cfg["out"], per_device_train_batch_size=S["batch_size"],
              gradient_accumulation_steps=S["grad_accum"], learning_rate=S["learning_rate"],
              max_steps=S["max_steps"], warmup_steps=S["warmup_steps"], lr_scheduler_type="linear",
              logging_steps=S["logging_steps"], save_strategy="no", report_to="none", seed=S["seed"],
              data_seed=S["seed"], bf16=cfg["bf16"], gradient_checkpointing=False, dataloader_num_workers=0,
              disable_tqdm=True, use_cpu=True)
from trl.trainer import utils as trl_utils
if cfg["kind"] == "unsloth" or trl_utils._ChunkedLogProbFunction is not None:
    args = SFTConfig(**common, max_length=S["max_seq_len"], packing=False, completion_only_loss=S["completion_only"])
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
else:
    # TRL 1.x's SFT loss needs Triton kernels (CUDA torch): the bare CPU loop is transformers.Trainer on the same
    # chat-template tokens with answer-only labels.
    from transformers import Trainer, TrainingArguments
    def ids(x):
        return list(x["input_ids"] if isinstance(x, dict) or hasattr(x, "input_ids") else x)
    feats = []
    for r in rows:
        full = ids(tok.apply_chat_template(r["messages"], tokenize=True))
        if S["completion_only"]:
            p = ids(tok.apply_chat_template(r["messages"][:-1], tokenize=True, add_generation_prompt=True))
            labels = [-100] * len(p) + full[len(p):]
        else:
            labels = list(full)
        full, labels = full[:S["max_seq_len"]], labels[:S["max_seq_len"]]
        feats.append({"input_ids": full, "attention_mask": [1] * len(full), "labels": labels})
    def collate(b):
        n = max(len(x["input_ids"]) for x in b)
        pad = lambda k, v: torch.tensor([x[k] + [v] * (n - len(x[k])) for x in b])
        return {"input_ids": pad("input_ids", tok.pad_token_id), "attention_mask": pad("attention_mask", 0),
                "labels": pad("labels", -100)}
    trainer = Trainer(model=model, args=TrainingArguments(**common, remove_unused_columns=False), train_dataset=feats,
                      data_collator=collate, processing_class=tok)
t0 = time.perf_counter()
out = trainer.train()
dt = time.perf_counter() - t0
losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
print("RESULT " + json.dumps({"seconds_per_step": dt / trainer.state.global_step, "train_seconds": dt,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "first_loss": losses[0],
      "last_loss": losses[-1], "load_seconds": t0 - t_start, "steps": trainer.state.global_step}))
''')


def bf16_native() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


def run_bare(kind: str, data: Path, base: Path, spec: dict, tmp: Path) -> dict:
    cfg = {"kind": kind, "data": str(data), "base": str(base), "spec": spec, "out": str(tmp / f"out-{kind}"),
           "bf16": bf16_native()}
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


def run_runner(data: Path, spec, tmp: Path) -> dict:
    from core.finetune import runner
    from core.finetune.datasets import load_file
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


METHOD_COLS = [("trainable params", "trainable_params", "{:,.0f}"), ("s/step", "seconds_per_step", "{:.2f}"),
               ("peak RSS MB", "peak_rss_mb", "{:,.0f}"), ("artifact MB", "artifact_mb", "{:,.1f}"),
               ("GGUF MB", "gguf_mb", "{:,.1f}"), ("llama.cpp load s", "load_seconds", "{:.2f}"),
               ("held-out loss", "heldout_loss", "{:.3f}"), ("voice checks", "voice_passed", "{:.0f}"),
               ("train s", "train_seconds", "{:.1f}")]


def run_method(data: Path, spec) -> dict:
    from core.finetune import runner
    from core.finetune.datasets import load_file
    t0 = time.perf_counter()
    run = runner.wait(runner.submit(spec, load_file(data)).run_id, poll=0.5)
    if run.state != "succeeded":
        raise SystemExit(f"{spec.method} job {run.state}: {run.status.get('error')}")
    f = run.status["final"]
    return {**{k: f.get(k) for _, k, _ in METHOD_COLS if k in f}, "artifact_mb": f["artifact_bytes"] / 1e6,
            "gguf_mb": (f.get("gguf_bytes") or 0) / 1e6, "wall": time.perf_counter() - t0,
            "voice_total": f.get("voice_total"), "library": f.get("library"), "first_loss": f.get("first_loss"), "last_loss": f.get("last_loss")}


def methods_main(args) -> None:
    import statistics
    methods = ["lora", "full"] if args.method == "both" else [args.method]
    with tempfile.TemporaryDirectory(prefix="bench-ft-") as td:
        tmp = Path(td)
        os.environ["WORKBENCH_DATA"] = str(tmp / "data")
        from core.finetune.convert import ensure_hf_model
        from core.finetune.spec import preset_spec
        ensure_hf_model()
        src = ROOT / "sample_docs" / "finetune" / "train.chat.jsonl"
        data = tmp / "train.jsonl"
        data.write_text("\n".join(src.read_text(encoding="utf-8").splitlines()[:args.rows]) + "\n", encoding="utf-8")
        base = preset_spec(args.preset).replace(max_steps=args.steps, eval_steps=0, val_fraction=0.0,
                                                threads=args.threads, data=str(data))
        specs = {m: base.replace(method=m).validate() for m in methods}   # method switch = its default lr
        S = base.to_dict()
        print(f"Same data and spec (preset {args.preset}) except method + its default lr: "
              + ", ".join(f"{m} lr {specs[m].learning_rate:g}" for m in methods)
              + f"; batch {S['batch_size']}x{S['grad_accum']}, seq {S['max_seq_len']}, {args.steps} steps, {args.rows} "
              f"rows, LoRA r={S['lora_r']} on {len(S['target_modules'])} modules, cores={os.cpu_count()}, threads="
              f"{args.threads or 'all'}, load avg {os.getloadavg()[0]:.1f}", flush=True)
        results: dict[str, list[dict]] = {m: [] for m in methods}
        for r in range(args.rounds):
            for m in methods:
                results[m].append(run_method(data, specs[m]))
                print(f"round {r + 1}/{args.rounds} {m}: {results[m][-1]['seconds_per_step']:.2f} s/step "
                      f"({results[m][-1]['library']})", file=sys.stderr, flush=True)
    def median(rs, k):
        vals = [x[k] for x in rs if x.get(k) is not None]
        return statistics.median(vals) if vals else float("nan")
    med = {m: {k: median(rs, k) for _, k, _ in METHOD_COLS} for m, rs in results.items()}
    head = f"{'measure':<18}" + "".join(f"{m:>16}" for m in methods) + (f"{'full / lora':>14}" if len(methods) == 2 else "")
    print("\n" + head)
    for label, k, fmt in METHOD_COLS:
        line = f"{label:<18}" + "".join(f"{fmt.format(med[m][k]):>16}" for m in methods)
        if len(methods) == 2 and med["lora"][k]:
            line += f"{med['full'][k] / med['lora'][k]:>13.1f}x"
        print(line)
    for m in methods:
        print(f"{m}: voice checks per round {[x.get('voice_passed') for x in results[m]]} of "
              f"{results[m][-1].get('voice_total')} (brand-voice regexes on {4} held-out answers in llama.cpp)")
    for m in methods:
        sp = [x["seconds_per_step"] for x in results[m]]
        print(f"{m}: s/step min-max {min(sp):.2f}-{max(sp):.2f} over {len(sp)} rounds; loss "
              f"{results[m][-1]['first_loss']:.3f} -> {results[m][-1]['last_loss']:.3f}; {results[m][-1]['library']}")
    print(f"load avg at the end: {os.getloadavg()[0]:.1f} (timings on a shared CPU are noisy)")


def main() -> None:
    import statistics
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (A B C per round)")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--method", choices=["both", "full", "lora"], default=None,
                    help="compare the methods through the runner instead of runner vs bare loops")
    args = ap.parse_args()
    if args.method:
        return methods_main(args)

    with tempfile.TemporaryDirectory(prefix="bench-ft-") as td:
        tmp = Path(td)
        os.environ["WORKBENCH_DATA"] = str(tmp / "data")        # one data folder: the runner's and the bare loops'
        from core.finetune.convert import ensure_hf_model
        from core.finetune.spec import preset_spec
        spec = preset_spec(args.preset).replace(max_steps=args.steps, eval_steps=0, val_fraction=0.0,
                                                threads=args.threads, trainer="unsloth").validate()
        base = ensure_hf_model()
        src = ROOT / "sample_docs" / "finetune" / "train.chat.jsonl"
        data = tmp / "train.jsonl"
        data.write_text("\n".join(src.read_text(encoding="utf-8").splitlines()[:args.rows]) + "\n", encoding="utf-8")
        spec = spec.replace(data=str(data))
        S = spec.to_dict()
        print(f"One spec for all (preset {args.preset}): LoRA r={S['lora_r']} alpha={S['lora_alpha']} dropout="
              f"{S['lora_dropout']} on {','.join(S['target_modules'])}, batch {S['batch_size']}x{S['grad_accum']}, "
              f"seq {S['max_seq_len']}, lr {S['learning_rate']}, warmup {S['warmup_steps']}, {S['max_steps']} steps, "
              f"seed {S['seed']}, completion-only={S['completion_only']}, {args.rows} rows, bf16={bf16_native()}, "
              f"cores={os.cpu_count()}, load avg {os.getloadavg()[0]:.1f}", flush=True)
        variants = {"bare Unsloth (CPU path)": lambda: run_bare("unsloth", data, base, S, tmp),
                    "bare PEFT (+TRL/Trainer)": lambda: run_bare("peft", data, base, S, tmp),
                    "our runner (Unsloth)": lambda: run_runner(data, spec, tmp)}
        results: dict[str, list[dict]] = {k: [] for k in variants}
        for r in range(args.rounds):
            for name, fn in variants.items():
                results[name].append(fn())
                print(f"round {r + 1}/{args.rounds} {name}: {results[name][-1]['seconds_per_step']:.2f} s/step",
                      file=sys.stderr, flush=True)
    med = {k: statistics.median(x["seconds_per_step"] for x in v) for k, v in results.items()}
    ref = med["bare Unsloth (CPU path)"]
    print(f"\n{'variant':<26} {'s/step median':>13} {'min-max':>12} {'x bare Unsloth':>15} {'peak RSS MB':>12} "
          f"{'loss first->last':>18} {'wall s':>8}")
    for name, rs in results.items():
        sp = [x["seconds_per_step"] for x in rs]
        print(f"{name:<26} {med[name]:>13.2f} {min(sp):>5.2f}-{max(sp):<6.2f} {med[name] / ref:>15.2f} "
              f"{statistics.median(x['peak_rss_mb'] for x in rs):>12.0f} "
              f"{rs[-1]['first_loss']:>8.3f} -> {rs[-1]['last_loss']:<7.3f} {statistics.median(x['wall'] for x in rs):>8.1f}")
    ratio = med["our runner (Unsloth)"] / ref
    print(f"\nrunner / bare Unsloth = {ratio:.2f} (median of {args.rounds} interleaved rounds; target <= 1.10): "
          f"{'OK' if ratio <= 1.1 else 'ABOVE TARGET'}")
    print(f"load avg at the end: {os.getloadavg()[0]:.1f} (timings on a shared CPU are noisy)")


if __name__ == "__main__":
    main()
