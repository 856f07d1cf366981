"""`python -m core.finetune.worker RUN_DIR`: runs one fine-tuning job in its own process.

Started by core.finetune.runner (stdout/stderr -> RUN_DIR/train.log). Writes status.json and metrics.jsonl as it
goes; on success saves the PEFT adapter, exports a GGUF LoRA and registers it as `ft:<run_id>` for the embedded
llama.cpp backend. When it ends (whatever the outcome) it starts the next queued job.
"""
from __future__ import annotations

import os

os.environ["UNSLOTH_AUTO_INSTALL"] = "0"          # before anything can import unsloth
os.environ["UNSLOTH_LLAMA_CPP_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from core.config import get_settings  # noqa: E402
from core.errors import WorkbenchError  # noqa: E402
from core.finetune import runner  # noqa: E402
from core.finetune.datasets import read_jsonl  # noqa: E402
from core.finetune.spec import JobSpec  # noqa: E402

_CANCEL = {"flag": False}


class Cancelled(Exception):
    pass


def _on_sigterm(signum, frame):
    # Only set a flag: raising here could land inside an import (torch's C init) and corrupt it. The worker checks
    # the flag between phases and the training callback checks it every step.
    _CANCEL["flag"] = True


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def finish_adapter(run_dir: Path, spec: JobSpec, result, base_dir: Path) -> dict:
    """GGUF LoRA export + registration for the embedded backend. Returns what goes into status['final']."""
    from core.finetune.convert import resolve_base_model  # noqa: F401
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
        info = register_adapter(
            run_dir.name, Path(exp.path), base_model=spec.base_model, run_id=run_dir.name, peft_dir=str(adapter_dir),
            train_seconds=result.train_seconds, device=result.device,
            extra={"spec": spec.to_dict(), "metrics": result.to_dict(), "adapter_sha256": final["adapter_sha256"],
                   "name": spec.name or run_dir.name})
        final["adapter_name"] = info.name
        final["model_id"] = info.model_id
        log(f"Registered adapter {info.model_id} for the embedded llama.cpp backend.")
    return final


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m core.finetune.worker RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0]).resolve()
    settings = get_settings()
    signal.signal(signal.SIGTERM, _on_sigterm)
    runner.update_status(run_dir, state="running", pid=os.getpid(), started=runner.read_json(
        run_dir / "status.json", {}).get("started") or time.time(), note="loading")
    code = 1
    try:
        spec = JobSpec.from_dict({k: v for k, v in runner.read_json(run_dir / "spec.json", {}).items()
                                  if k != "data_summary"}).validate()
        train_rows = read_jsonl(run_dir / "data" / "train.jsonl")
        val_rows = read_jsonl(run_dir / "data" / "val.jsonl") if (run_dir / "data" / "val.jsonl").exists() else []
        log(f"Run {run_dir.name}: {len(train_rows)} train / {len(val_rows)} validation rows, base {spec.base_model}")

        def check_cancel():
            if _CANCEL["flag"] or (run_dir / "cancel").exists():
                raise Cancelled()

        from core.finetune.convert import resolve_base_model
        runner.update_status(run_dir, note="preparing the base model")
        base_dir = resolve_base_model(spec.base_model, settings)
        check_cancel()

        from core.finetune.trainers import TrainContext, pick_trainer
        trainer, note = pick_trainer(spec.trainer)
        check_cancel()
        if spec.load_in_4bit and trainer.device() != "cuda":
            raise WorkbenchError("4-bit (QLoRA) needs a CUDA GPU and none was found: untick 4-bit or use the "
                                 "'quick' preset on this machine.")
        log(note)
        runner.update_status(run_dir, trainer=trainer.name, note=note, device=trainer.device())
        ctx = TrainContext(run_dir=run_dir, spec=spec, log=log,
                           cancelled=lambda: _CANCEL["flag"] or (run_dir / "cancel").exists(),
                           status=lambda **kw: runner.update_status(run_dir, **kw))
        result = trainer.train(ctx, base_dir, train_rows, val_rows)
        if result.cancelled or ctx.cancelled():
            raise Cancelled()
        log(f"Trained {result.steps} steps in {result.train_seconds:.1f} s ({result.seconds_per_step:.2f} s/step); "
            f"loss {result.first_loss} -> {result.last_loss}, eval loss {result.eval_loss}")
        runner.update_status(run_dir, note="exporting the adapter")
        final = {**result.to_dict(), **finish_adapter(run_dir, spec, result, base_dir)}
        runner.write_json_atomic(run_dir / "result.json", final)
        runner.update_status(run_dir, state="succeeded", finished=time.time(), eta_s=0, final=final,
                             step=result.steps, note=note, log_tail=runner.log_tail(run_dir, 12))
        code = 0
    except (Cancelled, KeyboardInterrupt):
        log("Cancelled.")
        runner.update_status(run_dir, state="cancelled", finished=time.time(), eta_s=None,
                             log_tail=runner.log_tail(run_dir, 12))
        code = 0
    except WorkbenchError as exc:
        log(f"ERROR: {exc}")
        runner.update_status(run_dir, state="failed", finished=time.time(), eta_s=None, error=str(exc),
                             log_tail=runner.log_tail(run_dir, 12))
    except BaseException as exc:  # noqa: BLE001 - any crash is recorded, never left 'running'
        traceback.print_exc()
        sys.stdout.flush()
        runner.update_status(run_dir, state="failed", finished=time.time(), eta_s=None,
                             error=f"{type(exc).__name__}: {exc}", log_tail=runner.log_tail(run_dir, 12))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            runner.start_next(settings)
        except Exception as exc:  # noqa: BLE001
            log(f"Could not start the next queued job: {exc}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
