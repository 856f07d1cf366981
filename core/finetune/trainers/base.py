"""What every trainer shares: the TRL SFT loop, metrics/status callbacks, cancel and early stopping, the held-out
loss, the saved artifact and its measurements, for both methods.

A trainer only says how to load the model (with LoRA: `load`; every weight trainable: `load_full`) and which
SFTTrainer/SFTConfig classes to use (Unsloth patches TRL's; plain PEFT+TRL uses them as they are). A LoRA run saves
the PEFT adapter in <run>/adapter/, a full run the whole model (safetensors + tokenizer) in <run>/model/.
Runs inside the worker process only.
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from core.finetune.runner import append_metrics
from core.finetune.spec import JobSpec


@dataclass
class TrainContext:
    run_dir: Path
    spec: JobSpec
    log: Callable[[str], None] = print
    cancelled: Callable[[], bool] = lambda: False
    status: Callable[..., None] = lambda **kw: None     # update status.json
    heldout_rows: list[dict] = field(default_factory=list)   # scenario transcripts never trained on (held-out loss)


@dataclass
class TrainResult:
    adapter_dir: str                         # the artifact folder: PEFT adapter (lora) or the whole model (full)
    trainer: str
    device: str
    method: str = "lora"
    library: str = ""                        # what actually trained it, with versions
    trainable_params: int = 0
    total_params: int = 0
    artifact_bytes: int = 0                  # the saved safetensors folder on disk
    heldout_loss: float | None = None        # answer-token loss on the held-out transcripts, after training
    heldout_rows: int = 0
    steps: int = 0
    train_seconds: float = 0.0
    seconds_per_step: float = 0.0
    first_loss: float | None = None
    last_loss: float | None = None
    train_loss: float | None = None          # mean over the run (TRL's training_loss)
    eval_loss: float | None = None
    best_eval_loss: float | None = None
    stopped_early: bool = False
    cancelled: bool = False
    peak_rss_mb: float = 0.0
    tokens_per_s: float = 0.0
    train_rows: int = 0
    val_rows: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    try:
        import psutil
        return psutil.Process().memory_info().rss / 1e6
    except Exception:  # noqa: BLE001
        return peak_rss_mb()


def to_sft_rows(rows: list[dict], completion_only: bool) -> list[dict]:
    """Chat rows -> TRL conversational rows: prompt/completion (loss on the last assistant answer only) or messages."""
    out = []
    for r in rows:
        msgs = r["messages"]
        if completion_only:
            out.append({"prompt": msgs[:-1], "completion": msgs[-1:]})
        else:
            out.append({"messages": msgs})
    return out


def trl_sft_usable() -> bool:
    """TRL 1.x's SFTTrainer computes the loss with a fused LM head whose kernels need Triton (CUDA builds of torch).
    On a CPU-only torch it fails at the first step unless Unsloth has patched it."""
    try:
        from trl.trainer import utils as trl_utils
    except Exception:  # noqa: BLE001
        return False
    return getattr(trl_utils, "_ChunkedLogProbFunction", None) is not None


def tokenize_rows(rows: list[dict], tokenizer, max_len: int, completion_only: bool) -> list[dict]:
    """input_ids / attention_mask / labels with the chat template; prompt tokens masked (-100) when completion_only."""
    def ids(x):
        return list(x["input_ids"] if isinstance(x, dict) or hasattr(x, "input_ids") else x)
    out = []
    for r in rows:
        msgs = r["messages"]
        full = ids(tokenizer.apply_chat_template(msgs, tokenize=True))
        if completion_only:
            prompt = ids(tokenizer.apply_chat_template(msgs[:-1], tokenize=True, add_generation_prompt=True))
            labels = [-100] * len(prompt) + full[len(prompt):]
        else:
            labels = list(full)
        full, labels = full[:max_len], labels[:max_len]
        out.append({"input_ids": full, "attention_mask": [1] * len(full), "labels": labels})
    return out


def pad_collator(pad_id: int):
    import torch

    def collate(batch: list[dict]) -> dict:
        n = max(len(b["input_ids"]) for b in batch)
        def pad(key, val):
            return torch.tensor([b[key] + [val] * (n - len(b[key])) for b in batch])
        return {"input_ids": pad("input_ids", pad_id), "attention_mask": pad("attention_mask", 0),
                "labels": pad("labels", -100)}
    return collate


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def count_params(model) -> tuple[int, int]:
    """(trainable, total) parameters; tied weights (SmolLM2's embeddings = LM head) counted once."""
    seen, total, train = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        train += p.numel() if p.requires_grad else 0
    return train, total


def heldout_loss(model, tokenizer, rows: list[dict], max_len: int, completion_only: bool, batch_size: int = 4
                 ) -> float | None:
    """Mean cross-entropy over the answer tokens (all tokens when not completion_only) of rows the job never saw,
    in eval mode without gradients: the same number for a LoRA and a full fine-tune."""
    import torch

    if not rows:
        return None
    feats = [f for f in tokenize_rows(rows, tokenizer, max_len, completion_only) if any(x != -100 for x in f["labels"][1:])]
    if not feats:
        return None
    collate = pad_collator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for i in range(0, len(feats), batch_size):
                b = {k: v.to(device) for k, v in collate(feats[i:i + batch_size]).items()}
                logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.float()
                labels = b["labels"][:, 1:]
                loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                         labels.reshape(-1), ignore_index=-100, reduction="sum")
                total += float(loss)
                count += int((labels != -100).sum())
    finally:
        model.train(was_training)
    return round(total / count, 4) if count else None


def library_versions(*names: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for n in names:
        try:
            out.append(f"{n} {version(n)}")
        except PackageNotFoundError:
            continue
    return ", ".join(out)


def make_callback(ctx: TrainContext, total_steps: int, result: TrainResult):
    from transformers import TrainerCallback

    class WorkbenchCallback(TrainerCallback):
        """Writes metrics.jsonl and status.json; stops on cancel or when the eval loss stops improving."""

        def __init__(self):
            self.t0 = time.perf_counter()
            self.t_first_step: float | None = None
            self.last_tokens = 0
            self.last_t = self.t0
            self.best = None
            self.bad_evals = 0

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = self.last_t = time.perf_counter()
            ctx.status(note="training", step=0, max_steps=state.max_steps or total_steps)

        def on_step_end(self, args, state, control, **kw):
            now = time.perf_counter()
            if self.t_first_step is None:
                self.t_first_step = now
            done = state.global_step
            total = state.max_steps or total_steps
            per_step = (now - self.t0) / max(done, 1)
            ctx.status(step=done, max_steps=total, eta_s=round(per_step * max(total - done, 0), 1),
                       seconds_per_step=round(per_step, 3), rss_mb=round(rss_mb(), 1))
            if ctx.cancelled():
                result.cancelled = True
                control.should_training_stop = True

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" not in logs and "eval_loss" not in logs:
                return
            now = time.perf_counter()
            tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            tps = (tokens - self.last_tokens) / (now - self.last_t) if now > self.last_t and tokens else None
            row = {"step": state.global_step, "loss": logs.get("loss"), "eval_loss": logs.get("eval_loss"),
                   "learning_rate": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
                   "tokens_per_s": round(tps, 1) if tps and "loss" in logs else None,
                   "rss_mb": round(rss_mb(), 1), "elapsed": round(now - self.t0, 2), "epoch": logs.get("epoch")}
            if "loss" in logs:
                self.last_tokens, self.last_t = tokens, now
                if result.first_loss is None:
                    result.first_loss = float(logs["loss"])
                result.last_loss = float(logs["loss"])
            if "eval_loss" in logs:
                result.eval_loss = float(logs["eval_loss"])
            append_metrics(ctx.run_dir, {k: (float(v) if isinstance(v, (int, float)) and k != "step" else v)
                                         for k, v in row.items()})

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            loss = (metrics or {}).get("eval_loss")
            if loss is None:
                return
            if self.best is None or loss < self.best - 1e-4:
                self.best, self.bad_evals = loss, 0
            else:
                self.bad_evals += 1
            result.best_eval_loss = self.best
            patience = ctx.spec.early_stopping_patience
            if patience and self.bad_evals >= patience:
                ctx.log(f"Early stopping: eval loss has not improved for {patience} evaluation(s) (best {self.best:.4f}).")
                result.stopped_early = True
                control.should_training_stop = True

    return WorkbenchCallback()


class BaseTrainer:
    name = "base"

    def available(self) -> tuple[bool, str]:
        return True, ""

    def device(self) -> str:
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"

    def load(self, spec: JobSpec, base_dir: Path, ctx: TrainContext):
        """(peft_model, tokenizer) ready to train."""
        raise NotImplementedError

    def load_full(self, spec: JobSpec, base_dir: Path, ctx: TrainContext):
        """(model with every weight trainable, tokenizer), fp32 weights (bf16 only as autocast: AdamW updates of a
        full fine-tune at 5e-5 are below bf16's resolution for most weights and would be rounded away)."""
        raise NotImplementedError

    def library(self, spec: JobSpec, use_trl: bool) -> str:
        """Which library trained the run (recorded in the result and shown on the run card)."""
        loop = "TRL SFTTrainer" if use_trl else "transformers.Trainer"
        return f"{'transformers' if spec.is_full else 'PEFT LoRA'} + {loop} (" + \
            library_versions("transformers", "peft", "trl", "torch") + ")"

    def sft_classes(self):
        from trl import SFTConfig, SFTTrainer
        return SFTTrainer, SFTConfig

    def bf16(self) -> bool:
        """bf16 autocast where the hardware does it natively (CUDA, or a CPU with AVX512-BF16/AMX)."""
        import torch
        if torch.cuda.is_available():
            return torch.cuda.is_bf16_supported()
        try:
            flags = Path("/proc/cpuinfo").read_text()
            return "avx512_bf16" in flags or "amx_bf16" in flags
        except OSError:
            return False

    def train(self, ctx: TrainContext, base_dir: Path, train_rows: list[dict], val_rows: list[dict]) -> TrainResult:
        import torch
        from datasets import Dataset as HFDataset

        spec = ctx.spec
        device = self.device()
        if device == "cpu":
            torch.set_num_threads(spec.threads or os.cpu_count() or 1)
        torch.manual_seed(spec.seed)
        t_load = time.perf_counter()
        model, tokenizer = (self.load_full if spec.is_full else self.load)(spec, base_dir, ctx)
        ctx.log(f"[{self.name}] model{' (full fine-tune)' if spec.is_full else ' + LoRA'} ready in "
                f"{time.perf_counter() - t_load:.1f} s on {device} ({torch.get_num_threads()} threads); trainable "
                f"params: {_trainable(model)}")
        if spec.ignored_settings():
            ctx.log(f"Full fine-tune: LoRA settings not used (recorded only): {spec.ignored_settings()}")
        use_trl = self.name == "unsloth" or trl_sft_usable()
        if use_trl:
            SFTTrainer, SFTConfig = self.sft_classes()
        else:
            from transformers import Trainer as SFTTrainer, TrainingArguments as SFTConfig
            ctx.log("TRL's SFTTrainer needs Triton kernels that this torch build lacks: training with "
                    "transformers.Trainer on the same chat-template tokens and answer-only labels.")
            ctx.status(note="PEFT + transformers.Trainer (TRL's fused loss needs Triton on this torch)")
        if ctx.cancelled():
            return TrainResult(adapter_dir="", trainer=self.name, device=device, cancelled=True)
        has_eval = bool(val_rows) and spec.eval_steps > 0
        adapter_dir = ctx.run_dir / ("model" if spec.is_full else "adapter")
        trainable, total_params = count_params(model)
        result = TrainResult(adapter_dir=str(adapter_dir), trainer=self.name, device=device, method=spec.method,
                             library=self.library(spec, use_trl), trainable_params=trainable,
                             total_params=total_params, train_rows=len(train_rows), val_rows=len(val_rows))
        ctx.status(method=spec.method, trainable_params=trainable, total_params=total_params)
        sft_only = dict(max_length=spec.max_seq_len, packing=False, completion_only_loss=spec.completion_only,
                        dataset_num_proc=None) if use_trl else dict(remove_unused_columns=False)
        cfg = SFTConfig(
            **sft_only,
            output_dir=str(ctx.run_dir / "checkpoints"),
            per_device_train_batch_size=spec.batch_size,
            per_device_eval_batch_size=spec.batch_size,
            gradient_accumulation_steps=spec.grad_accum,
            learning_rate=spec.learning_rate,
            num_train_epochs=spec.epochs if spec.max_steps <= 0 else 1,
            max_steps=spec.max_steps if spec.max_steps > 0 else -1,
            warmup_steps=spec.warmup_steps,
            lr_scheduler_type="linear",
            logging_steps=spec.logging_steps,
            eval_strategy="steps" if has_eval else "no",
            eval_steps=spec.eval_steps if has_eval else None,
            save_strategy="no",
            report_to="none",
            seed=spec.seed,
            data_seed=spec.seed,
            bf16=self.bf16(),
            gradient_checkpointing=device != "cpu",      # on CPU: memory is plenty, recomputation only costs time
            dataloader_num_workers=0,
            include_num_input_tokens_seen="non_padding",
            disable_tqdm=True,
            use_cpu=device == "cpu",
        )
        if use_trl:
            train_ds = HFDataset.from_list(to_sft_rows(train_rows, spec.completion_only))
            eval_ds = HFDataset.from_list(to_sft_rows(val_rows, spec.completion_only)) if has_eval else None
            trainer = SFTTrainer(model=model, args=cfg, train_dataset=train_ds, eval_dataset=eval_ds,
                                 processing_class=tokenizer)
        else:
            train_ds = tokenize_rows(train_rows, tokenizer, spec.max_seq_len, spec.completion_only)
            eval_ds = tokenize_rows(val_rows, tokenizer, spec.max_seq_len, spec.completion_only) if has_eval else None
            trainer = SFTTrainer(model=model, args=cfg, train_dataset=train_ds, eval_dataset=eval_ds,
                                 data_collator=pad_collator(tokenizer.pad_token_id), processing_class=tokenizer)
        total = trainer.args.max_steps if trainer.args.max_steps > 0 else None
        trainer.add_callback(make_callback(ctx, total or 0, result))
        t0 = time.perf_counter()
        if ctx.cancelled():
            result.cancelled = True
            return result
        out = trainer.train()
        result.train_seconds = round(time.perf_counter() - t0, 2)
        result.steps = int(trainer.state.global_step)
        result.seconds_per_step = round(result.train_seconds / max(result.steps, 1), 3)
        result.train_loss = float(out.training_loss) if out.training_loss is not None else None
        tokens = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)
        result.tokens_per_s = round(tokens / result.train_seconds, 1) if result.train_seconds else 0.0
        if result.cancelled:
            result.peak_rss_mb = round(peak_rss_mb(), 1)
            return result
        if has_eval and (result.eval_loss is None or result.steps % spec.eval_steps):
            ctx.status(note="final evaluation")
            metrics = trainer.evaluate()
            result.eval_loss = float(metrics.get("eval_loss")) if metrics.get("eval_loss") is not None else None
        if ctx.heldout_rows:
            ctx.status(note="held-out loss")
            result.heldout_loss = heldout_loss(model, tokenizer, ctx.heldout_rows, spec.max_seq_len,
                                               spec.completion_only, spec.batch_size)
            result.heldout_rows = len(ctx.heldout_rows)
        ctx.status(note="saving the full model" if spec.is_full else "saving the adapter")
        model.save_pretrained(str(adapter_dir), safe_serialization=True)
        tokenizer.save_pretrained(str(adapter_dir))
        result.artifact_bytes = folder_bytes(adapter_dir)
        result.peak_rss_mb = round(peak_rss_mb(), 1)
        return result


def _trainable(model) -> str:
    train, total = count_params(model)
    return f"{train:,} of {total:,} ({100 * train / max(total, 1):.2f}%)"
