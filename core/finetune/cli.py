"""CLI: `finetune`, `export` (jobs of every kind: `python -m core jobs list|show|cancel`, core/jobs/cli.py).

    python -m core finetune --data FILE [--preset quick] [--method lora|full] [--max-steps N] [spec options]
                            [--detach] [--json]
    python -m core finetune show RUN [--json]      the run card: method, trainable params, peak memory, s/step,
                                                   artifact size, llama.cpp load time, held-out loss
    python -m core export ADAPTER --format peft|gguf-lora|gguf-merged|ollama [--out DIR] [--check] [--json]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from core.cli import emit_json
from core.finetune.spec import PRESETS, JobSpec


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def register(sub) -> None:
    p = sub.add_parser("finetune", help="Start a fine-tuning job, LoRA or full (waits and streams progress; --detach "
                                        "returns); `finetune show RUN` prints a run's card.",
                       description="Validate the data, then train a LoRA adapter (--method lora) or every weight "
                                   "(--method full) in its own process. Spec options override the preset. "
                                   "`finetune show RUN` prints the measured card of a run.")
    p.add_argument("action", nargs="?", choices=["show"], help="show: print the card of run RUN")
    p.add_argument("run", nargs="?", help="run id (with show)")
    p.add_argument("--data", default=None, help="JSONL or CSV file (chat messages, Alpaca or ShareGPT rows)")
    p.add_argument("--preset", default="quick", choices=list(PRESETS),
                   help="quick = the CPU demo (SmolLM2-135M, 60 steps); default: quick")
    for f in fields(JobSpec):
        if f.name == "data":
            continue
        opt = "--" + f.name.replace("_", "-")
        default = getattr(JobSpec(), f.name)
        if isinstance(default, bool):
            p.add_argument(opt, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(default, list):
            p.add_argument(opt, dest=f.name, default=None, help="comma-separated, e.g. q_proj,v_proj")
        elif f.name == "method":
            from core.finetune.spec import METHODS
            p.add_argument(opt, dest=f.name, choices=METHODS, default=None,
                           help="lora (adapter, default) | full (every weight; lr defaults to 5e-5) | qlora (CUDA)")
        else:
            p.add_argument(opt, dest=f.name, type=type(default), default=None)
    p.add_argument("--detach", action="store_true", help="queue the job and print its id without waiting")
    p.add_argument("--json", action="store_true", help="print one JSON object (the run) at the end")
    p.set_defaults(func=cmd_finetune)

    e = sub.add_parser("export", help="Export a trained adapter (PEFT, GGUF LoRA, merged GGUF, Ollama Modelfile).")
    e.add_argument("adapter", help="run id, adapter name (ft:<name>) or PEFT folder")
    e.add_argument("--format", required=True, choices=["peft", "gguf-lora", "gguf-merged", "ollama"])
    e.add_argument("--out", type=Path, default=None, help="output folder (default: <run>/export)")
    e.add_argument("--qtype", default="Q8_0", choices=["Q8_0", "F16"], help="merged GGUF type (default Q8_0)")
    e.add_argument("--no-create", action="store_true", help="ollama: only write the Modelfile")
    e.add_argument("--check", action="store_true",
                   help="gguf-lora / gguf-merged: run the parity check on 3 held-out prompts afterwards")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_export)


def _spec_from_args(args) -> JobSpec:
    from core.finetune.spec import preset_spec
    from core.finetune.spec import MIN_SEQ_LEN
    changes = {f.name: getattr(args, f.name) for f in fields(JobSpec) if f.name != "data"
               and getattr(args, f.name, None) is not None}
    spec = preset_spec(args.preset).replace(data=str(args.data), **changes)
    if "max_seq_len" not in changes and spec.max_seq_len < MIN_SEQ_LEN.get(spec.data_variant, 0):
        spec = spec.replace(max_seq_len=MIN_SEQ_LEN[spec.data_variant])   # the preset's length fits plain rows only
    return spec.validate()


def _print_problems(ds) -> None:
    for p in ds.problems[:50]:
        _err(f"  {p.severity}: {p}")
    if len(ds.problems) > 50:
        _err(f"  ... and {len(ds.problems) - 50} more")


def cmd_finetune(args) -> int:
    from core.config import get_settings
    from core.finetune import runner
    from core.finetune.datasets import load_file, prepare

    if args.action == "show":
        return cmd_show(args)
    if not args.data:
        _err("finetune: --data FILE is required (or `finetune show RUN`).")
        return 2
    s = get_settings()
    spec = _spec_from_args(args)
    ds = load_file(args.data, max_mb=s.max_upload_mb)
    if ds.rows and not ds.errors:
        from core.finetune.raft import apply_data_variant      # drops rows that leak the evaluation set; RAFT rows
        ds, _ = apply_data_variant(ds, spec.data_variant)
        prepare(ds, spec.base_model, spec.max_seq_len, s)
    if ds.problems and not args.json:
        _err(f"{args.data}: {ds.summary()['rows']} usable rows, format {ds.format or '?'}; problems:")
        _print_problems(ds)
    ds.raise_for_problems()
    run = runner.submit(spec, ds, s)
    if not args.json:
        _err(f"Run {run.run_id}: {run.state} ({ds.summary()['rows']} rows, {ds.format}); "
             f"equivalent: {spec.cli_line(preset=args.preset)}")
    if args.detach:
        if args.json:
            emit_json({"run_id": run.run_id, "state": run.state, "dir": str(run.dir)})
        else:
            print(run.run_id)
        return 0

    def progress(r, rows):
        if args.json:
            return
        for m in rows:
            parts = [f"step {m['step']:>4}/{r.status.get('max_steps')}"]
            if m.get("loss") is not None:
                parts.append(f"loss {m['loss']:.4f}")
            if m.get("eval_loss") is not None:
                parts.append(f"eval_loss {m['eval_loss']:.4f}")
            if m.get("tokens_per_s"):
                parts.append(f"{m['tokens_per_s']:.0f} tok/s")
            if r.status.get("eta_s") is not None and m.get("loss") is not None:
                parts.append(f"ETA {r.status['eta_s']:.0f}s")
            _err("  " + "  ".join(parts))

    try:
        run = runner.wait(run.run_id, s, poll=1.0, on_update=progress)
    except KeyboardInterrupt:
        _err(f"Interrupted: cancelling {run.run_id} ...")
        runner.cancel(run.run_id, s)
        raise
    return _report_run(run, args.json)


def cmd_show(args) -> int:
    from core.finetune import runner, views
    if not args.run:
        _err("finetune show: give a run id (python -m core jobs list).")
        return 2
    run = runner.load_run(args.run)
    final = run.status.get("final") or {}
    card = views.run_card(final, run.spec.get("method")) if final else []
    if args.json:
        emit_json({**run.to_dict(), "card": card})
        return 0
    st = run.status
    print(f"{run.run_id}: {st.get('state')}  method={run.spec.get('method') or 'lora'}  trainer={st.get('trainer')}  "
          f"device={st.get('device')}")
    if st.get("note"):
        print(f"  {st['note']}")
    if run.spec.get("ignored_settings"):
        print(f"  not used by a full fine-tune (recorded): {run.spec['ignored_settings']}")
    width = max((len(r["measure"]) for r in card), default=0)
    for r in card:
        print(f"  {r['measure']:<{width}}  {r['value']:<28} {r['how']}")
    if final.get("model_id"):
        print(f"  use it: python -m core generate --model {final['model_id']} \"your question\"")
    if st.get("error"):
        print(f"  error: {st['error']}")
    return 0


def _report_run(run, as_json: bool) -> int:
    st = run.status
    if as_json:
        emit_json(run.to_dict())
    else:
        final = st.get("final") or {}
        print(f"{run.run_id}: {st.get('state')}  trainer={st.get('trainer')}  device={st.get('device')}")
        if st.get("note"):
            print(f"  {st['note']}")
        if final:
            print(f"  steps {final.get('steps')}  {final.get('train_seconds')} s  "
                  f"loss {_f(final.get('first_loss'))} -> {_f(final.get('last_loss'))}  "
                  f"eval_loss {_f(final.get('eval_loss'))}  peak RSS {final.get('peak_rss_mb')} MB")
            what = "model" if final.get("method") == "full" else "adapter"
            print(f"  {what} {final.get('adapter_dir')} (sha256 {str(final.get('adapter_sha256'))[:16]}...)  "
                  f"trainable {final.get('trainable_params'):,} of {final.get('total_params'):,} params  "
                  f"held-out loss {_f(final.get('heldout_loss'))}")
            if final.get("model_id"):
                print(f"  use it: python -m core generate --model {final['model_id']} \"your question\"")
        if st.get("error"):
            print(f"  error: {st['error']}")
    return 0 if st.get("state") == "succeeded" else 1


def _f(x) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "-"


def cmd_export(args) -> int:
    from core.finetune.export import export_adapter
    res = export_adapter(args.adapter, args.format, args.out, qtype=args.qtype, create=not args.no_create)
    out = res.to_dict()
    if args.check and args.format in ("gguf-lora", "gguf-merged"):
        from core.finetune.parity import run_parity
        out["parity"] = run_parity(args.adapter, args.format, Path(res.path)).to_dict()
    if args.json:
        out.get("extra", {}).pop("modelfile", None)
        emit_json(out)
        return 0 if out.get("parity", {}).get("passed", True) else 1
    print(f"{res.format}: {res.path} ({res.size_bytes / 1e6:.2f} MB, {res.seconds} s)")
    if res.note:
        print(f"  {res.note}")
    if "parity" in out:
        print(f"  {out['parity']['verdict']}")
        return 0 if out["parity"]["passed"] else 1
    return 0
