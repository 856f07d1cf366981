"""Fine-tuning jobs: the "finetune" kind of the job layer (core.jobs). One job trains at a time (a queue: the
others wait queued, with no process); every job runs in its own worker process.

Run folder `<data>/runs/<run_id>/` (the common layout is in core.jobs.folder), plus:
    data/train.jsonl, data/val.jsonl   the validated chat rows it trains on
    metrics.jsonl   one line per logging step / evaluation: step, loss, eval_loss, learning_rate, tokens_per_s,
                    rss_mb, elapsed
    adapter/        the PEFT adapter (method lora), or model/ the whole trained model (method full, safetensors)
    export/         exported files (a full run: model-q8_0.gguf, written when training ends);  result.json  the final
                    metrics
status.json carries, besides the common fields: step, max_steps, eta_s, seconds_per_step, rss_mb, trainer
(unsloth | peft+trl), device, note and, once it succeeded, final (metrics + adapter paths and hashes).

The UI and the CLI only read these files, so a page refresh, a second tab or an app restart shows the same job.
No torch import here (the run function imports it inside the worker).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core import jobs as joblayer
from core.config import Settings, get_settings
from core.errors import JobError, WorkbenchError
from core.fileio import write_json_atomic
from core.finetune.datasets import Dataset, split, write_jsonl
from core.finetune.spec import JobSpec
from core.jobs import states

KIND = "finetune"
STATES = states.STATES
TERMINAL = states.TERMINAL


def read_metrics(run_dir: Path) -> list[dict]:
    """metrics.jsonl lines (a half-written last line is skipped)."""
    return joblayer.read_jsonl(Path(run_dir) / "metrics.jsonl")


def append_metrics(run_dir: Path, row: dict) -> None:
    joblayer.append_jsonl(Path(run_dir) / "metrics.jsonl", row)


def log_tail(run_dir: Path, n: int = 20) -> list[str]:
    return joblayer.RunFolder(run_dir).log_tail(n)


# --- runs -----------------------------------------------------------------------------------------------------
@dataclass
class Run:
    run_id: str
    dir: Path
    spec: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)

    @property
    def state(self) -> str:
        return self.status.get("state", "failed")

    @property
    def metrics(self) -> list[dict]:
        return read_metrics(self.dir)

    def to_dict(self, with_metrics: bool = False) -> dict:
        d = {"run_id": self.run_id, "dir": str(self.dir), "spec": self.spec, "status": self.status}
        if with_metrics:
            d["metrics"] = self.metrics
        return d


def _run(job: joblayer.Job) -> Run:
    return Run(job.id, job.dir, job.spec, job.status)


def runs_dir(settings: Settings | None = None) -> Path:
    d = (settings or get_settings()).runs_dir
    d.mkdir(parents=True, exist_ok=True)
    return d


def load_run(run_id: str, settings: Settings | None = None) -> Run:
    try:
        return _run(joblayer.read(run_id, KIND))
    except JobError as exc:
        raise JobError(f"No fine-tuning run {run_id!r} under {runs_dir(settings)}: see `python -m core jobs list`."
                       ) from exc


def list_runs(settings: Settings | None = None) -> list[Run]:
    """All runs, newest first."""
    return [_run(j) for j in joblayer.list_jobs(KIND)]


def create_run(spec: JobSpec, dataset: Dataset, settings: Settings | None = None) -> Run:
    """Validate the spec and dataset, write the run folder in the queued state. Nothing starts yet."""
    spec.validate()
    spec.check_device()
    dataset.raise_for_problems()
    if not dataset.variant:
        # every way into training (page, CLI, tests) goes through the variant: rows that leak the evaluation set
        # are dropped, and "raft" rows are built here, then length-checked like any other rows
        from core.finetune.datasets import prepare
        from core.finetune.raft import apply_data_variant

        dataset, _ = apply_data_variant(dataset, spec.data_variant)
        if spec.data_variant != "plain":
            prepare(dataset, spec.base_model, spec.max_seq_len, settings or get_settings())
        dataset.raise_for_problems()
    train, val = split(dataset.rows, spec.val_fraction, spec.seed)
    if len(train) < 1:
        raise JobError("No training rows left after the validation split: add rows or lower val_fraction.")
    with joblayer.creating(KIND, start=False) as new:
        write_jsonl(train, new.path / "data" / "train.jsonl")
        write_jsonl(val, new.path / "data" / "val.jsonl")
        spec_d = spec.to_dict()
        spec_d["data_summary"] = {**dataset.summary(), "train_rows": len(train), "val_rows": len(val)}
        if spec.ignored_settings():
            spec_d["ignored_settings"] = spec.ignored_settings()     # LoRA settings a full fine-tune does not use
        new.spec = spec_d
        new.name = spec.name or new.id
        new.status = {"step": 0, "max_steps": planned_steps(spec, len(train)), "eta_s": None, "log_tail": [],
                      "trainer": None, "note": "", "device": None, "method": spec.method}
    return load_run(new.id, settings)


def planned_steps(spec: JobSpec, n_train: int) -> int:
    if spec.max_steps > 0:
        return spec.max_steps
    per_epoch = max(1, -(-n_train // (spec.batch_size * spec.grad_accum)))
    return max(1, int(round(per_epoch * spec.epochs)))


def reconcile(settings: Settings | None = None, start: bool = True) -> list[str]:
    """Mark runs whose worker is gone as interrupted (with their last log lines); with `start`, start the next
    queued job if none runs. Returns the ids it changed."""
    return joblayer.reconcile(KIND, start=start)


def start_next(settings: Settings | None = None) -> list[str]:
    """Start the oldest queued job when no job is running (process-safe)."""
    return joblayer.dispatch(KIND)


def submit(spec: JobSpec, dataset: Dataset, settings: Settings | None = None) -> Run:
    """Create the run and start it now, or queue it behind the running job."""
    run = create_run(spec, dataset, settings)
    joblayer.start(run.run_id, KIND)
    return load_run(run.run_id, settings)


def cancel(run_id: str, settings: Settings | None = None, timeout: float = 20.0, wait: bool = True) -> Run:
    """Cancel a queued or running job. A running worker stops at its next step and records 'cancelled'; if it
    has not ended after `timeout` seconds its process group is killed."""
    load_run(run_id, settings)
    return _run(joblayer.cancel(run_id, KIND, grace_s=timeout, wait=wait))


def wait(run_id: str, settings: Settings | None = None, poll: float = 1.0, timeout: float | None = None,
         on_update: Callable[[Run, list[dict]], None] | None = None) -> Run:
    """Block until the run reaches a final state; `on_update(run, new_metric_rows)` is called on each poll."""
    seen = [0]

    def update(job: joblayer.Job) -> None:
        if on_update:
            rows = read_metrics(job.dir)
            on_update(_run(job), rows[seen[0]:])
            seen[0] = len(rows)

    return _run(joblayer.wait(run_id, KIND, timeout=timeout, poll=poll, on_update=update))


def delete_run(run_id: str, settings: Settings | None = None) -> None:
    joblayer.delete(run_id, KIND)


# --- the kind's run function (in the worker process) ------------------------------------------------------------
NOT_SPEC = ("data_summary", "ignored_settings")      # keys of spec.json that the runner adds, not JobSpec fields
FULL_GGUF_QTYPE = "Q8_0"                             # a full run's GGUF (F16 on request through the export job)


VOICE_PROMPTS = 4                                    # held-out questions the finished artifact answers in llama.cpp


def measure_gguf(model_path: Path, lora_path: Path | None = None, n_voice: int = VOICE_PROMPTS) -> dict:
    """What the embedded backend will see of the artifact, measured in llama.cpp: the seconds `Llama(...)` takes to
    load it (the model file, plus the LoRA on it for an adapter) and how many of the scenario's brand-voice checks its
    answers to the first `n_voice` held-out questions pass (T=0.2, seed 42, 120 tokens, the GGUF's chat template).
    Empty if llama-cpp-python is missing or the file does not load."""
    import time

    try:
        from llama_cpp import Llama
    except ImportError:
        return {}
    t0 = time.perf_counter()
    try:
        kw = {"lora_path": str(lora_path)} if lora_path else {}
        llm = Llama(model_path=str(model_path), n_ctx=1024, n_threads=1, verbose=False, seed=42, **kw)
    except (ValueError, RuntimeError, OSError):
        return {}
    out: dict = {"load_seconds": round(time.perf_counter() - t0, 3)}
    try:
        from core.compare.scores import voice
        from core.scenario import load_scenario

        checks = load_scenario().voice_checks
        prompts = [r["messages"][:-1] for r in heldout_rows()[:n_voice]]
        passed = total = 0
        for msgs in prompts if checks else []:
            res = llm.create_chat_completion(messages=msgs, temperature=0.2, max_tokens=120, seed=42)
            score = voice(res["choices"][0]["message"]["content"] or "", checks, ("brand_voice",))
            passed += sum(bool(v) for v in (score.detail or {}).values())
            total += len(score.detail or {})
        if total:
            out.update(voice_passed=passed, voice_total=total, voice_prompts=len(prompts))
    except (WorkbenchError, ValueError, RuntimeError) as exc:
        out["voice_error"] = str(exc)
    finally:
        llm.close() if hasattr(llm, "close") else None
    return out


def finish_full(run_dir: Path, spec: JobSpec, result, base_dir: Path, log: Callable[[str], None], progress=None
                ) -> dict:
    """A full run's artifact: the saved model -> a standalone GGUF (the merged-model writer, at FULL_GGUF_QTYPE),
    its llama.cpp load time, and registration as ft:<run id> for the embedded backend."""
    from core.errors import ExportError
    from core.finetune.export import export_gguf_full
    from core.llm.models import PACKAGED_MODELS, packaged_gguf_path, register_adapter

    model_dir = Path(result.adapter_dir)
    final = {"adapter_dir": str(model_dir), "model_dir": str(model_dir),
             "adapter_sha256": _weights_sha256(model_dir)}
    if spec.base_model not in PACKAGED_MODELS:
        final["gguf_error"] = "GGUF export needs the base model's GGUF (tokenizer + metadata): packaged models only."
        log(f"GGUF export skipped: {final['gguf_error']}")
        return final
    import time
    t0 = time.perf_counter()
    try:
        exp = export_gguf_full(model_dir, run_dir / "export" / f"model-{FULL_GGUF_QTYPE.lower()}.gguf",
                               packaged_gguf_path(spec.base_model), FULL_GGUF_QTYPE, progress)
    except (ExportError, WorkbenchError) as exc:
        final["gguf_error"] = str(exc)
        log(f"GGUF export failed: {exc}")
        return final
    final.update(gguf_model=exp.path, gguf_sha256=exp.sha256, gguf_bytes=exp.size_bytes,
                 gguf_seconds=round(time.perf_counter() - t0, 2))
    log(f"GGUF model written: {exp.path} ({exp.size_bytes / 1e6:.1f} MB, {FULL_GGUF_QTYPE})")
    final.update(measure_gguf(Path(exp.path)))
    info = register_adapter(
        run_dir.name, Path(exp.path), base_model=spec.base_model, run_id=run_dir.name, peft_dir=str(model_dir),
        train_seconds=result.train_seconds, device=result.device, method="full",
        extra={"spec": spec.to_dict(), "metrics": result.to_dict(), "adapter_sha256": final["adapter_sha256"],
               "name": spec.name or run_dir.name, "qtype": FULL_GGUF_QTYPE})
    final["adapter_name"] = info.name
    final["model_id"] = info.model_id
    log(f"Registered full fine-tune {info.model_id} for the embedded llama.cpp backend.")
    return final


def _weights_sha256(folder: Path) -> str:
    from core.llm.models import file_sha256
    files = sorted(Path(folder).glob("*.safetensors"))
    return file_sha256(files[0]) if len(files) == 1 else ""


def finish_adapter(run_dir: Path, spec: JobSpec, result, base_dir: Path, log: Callable[[str], None]) -> dict:
    """GGUF LoRA export + registration for the embedded backend. Returns what goes into status['final']."""
    from core.finetune.export import export_gguf_lora
    from core.llm.models import PACKAGED_MODELS, file_sha256, register_adapter

    adapter_dir = Path(result.adapter_dir)
    final = {"adapter_dir": str(adapter_dir),
             "adapter_sha256": file_sha256(adapter_dir / "adapter_model.safetensors")}
    try:
        exp = export_gguf_lora(adapter_dir, run_dir / "export" / "adapter.gguf", base_dir)
        final["gguf_lora"] = exp.path
        final["gguf_sha256"] = exp.sha256
        log(f"GGUF LoRA written: {exp.path} ({exp.size_bytes / 1e6:.1f} MB)")
    except WorkbenchError as exc:
        final["gguf_error"] = str(exc)
        log(f"GGUF LoRA export skipped: {exc}")
        return final
    if spec.base_model in PACKAGED_MODELS:
        from core.llm.models import packaged_gguf_path
        final["gguf_bytes"] = exp.size_bytes
        final.update(measure_gguf(packaged_gguf_path(spec.base_model), Path(exp.path)))
        info = register_adapter(
            run_dir.name, Path(exp.path), base_model=spec.base_model, run_id=run_dir.name, peft_dir=str(adapter_dir),
            train_seconds=result.train_seconds, device=result.device,
            extra={"spec": spec.to_dict(), "metrics": result.to_dict(), "adapter_sha256": final["adapter_sha256"],
                   "name": spec.name or run_dir.name})
        final["adapter_name"] = info.name
        final["model_id"] = info.model_id
        log(f"Registered adapter {info.model_id} for the embedded llama.cpp backend.")
    return final


def heldout_rows() -> list[dict]:
    """The scenario's held-out transcripts (the evaluation set the leakage check keeps out of training)."""
    from core.config import SAMPLE_DOCS
    from core.finetune.datasets import read_jsonl

    path = SAMPLE_DOCS / "finetune" / "heldout.chat.jsonl"
    try:
        return read_jsonl(path) if path.is_file() else []
    except (WorkbenchError, OSError, ValueError):
        return []


def run(spec_d: dict, report) -> None:
    """Train one LoRA adapter (base model -> trainer -> adapter -> GGUF LoRA) or, with method "full", every weight
    (-> whole model -> standalone GGUF); either is registered as ft:<run id>."""
    from core.finetune.convert import resolve_base_model
    from core.finetune.datasets import read_jsonl
    from core.finetune.trainers import TrainContext, pick_trainer

    run_dir = report.dir
    spec = JobSpec.from_dict({k: v for k, v in spec_d.items() if k not in NOT_SPEC}).validate()
    train_rows = read_jsonl(run_dir / "data" / "train.jsonl")
    val_rows = read_jsonl(run_dir / "data" / "val.jsonl") if (run_dir / "data" / "val.jsonl").exists() else []
    report.log(f"Run {run_dir.name}: {len(train_rows)} train / {len(val_rows)} validation rows, base {spec.base_model}")
    report(note="preparing the base model", message="preparing the base model")
    base_dir = resolve_base_model(spec.base_model, get_settings())
    report.check()
    trainer, note = pick_trainer(spec.trainer)
    report.check()
    if spec.is_qlora and trainer.device() != "cuda":
        from core.errors import NeedsGPU
        raise NeedsGPU("4-bit (QLoRA) needs a CUDA GPU and none was found: choose method 'lora' or 'full', or use "
                       "the 'quick' preset on this machine.")
    if spec.is_full:
        note += " Full fine-tune: every weight trained" + (" (Unsloth full_finetuning=True)."
                                                         if trainer.name == "unsloth" else " (plain transformers).")
    report.log(note)
    report(trainer=trainer.name, note=note, device=trainer.device(), method=spec.method, message="training")

    def status(**kw) -> None:
        if kw.get("max_steps") and kw.get("step") is not None:
            kw["progress"] = round(min(1.0, kw["step"] / kw["max_steps"]), 4)
        report(check=False, **kw)

    ctx = TrainContext(run_dir=run_dir, spec=spec, log=report.log, cancelled=report.cancel_requested, status=status,
                       heldout_rows=heldout_rows())
    result = trainer.train(ctx, base_dir, train_rows, val_rows)
    if result.cancelled or report.cancel_requested():
        report.log("Cancelled.")
        raise joblayer.Cancelled()
    report.log(f"Trained {result.steps} steps in {result.train_seconds:.1f} s ({result.seconds_per_step:.2f} s/step); "
               f"loss {result.first_loss} -> {result.last_loss}, eval loss {result.eval_loss}")
    if spec.is_full:
        report(note="exporting the full model to GGUF", message="exporting the full model to GGUF")
        done = finish_full(run_dir, spec, result, base_dir, report.log,
                           progress=lambda f, what: report(check=False, note=f"GGUF export {f:.0%}"))
    else:
        report(note="exporting the adapter", message="exporting the adapter")
        done = finish_adapter(run_dir, spec, result, base_dir, report.log)
    final = {**result.to_dict(), **done}
    write_json_atomic(run_dir / "result.json", final)
    report(final=final, eta_s=0, step=result.steps, note=note, progress=1.0,
           message=f"finished: {result.steps} steps", check=False)
