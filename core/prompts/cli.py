"""CLI of the prompt library and prompt runs.

    python -m core prompts list [--json]
    python -m core prompts show NAME[@VERSION|@LABEL] [--json]
    python -m core prompts history NAME [--json]
    python -m core prompts diff REF_A REF_B
    python -m core prompts save FILE.yaml --message "..."      (a PromptSpec YAML/JSON file -> new version)
    python -m core prompts label NAME VERSION LABEL
    python -m core prompts restore REF [--message "..."]
    python -m core generate --prompt NAME[@VERSION] --var key=value ... [--backend B] [--model M]
                            [--temperature T] [--top-p P] [--max-tokens N] [--seed S] [--stop STR] [--json]

`generate` belongs to core/llm/cli.py; this module adds --prompt/--var to it (only the flags it lacks) and handles
the call when --prompt is given, delegating to the original handler otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import PromptError


def _lib():
    from core.prompts.library import PromptLibrary
    lib = PromptLibrary()
    lib.ensure_starter()
    return lib


def _emit(obj) -> None:
    from core.cli import emit_json
    emit_json(obj)


# ---- prompts ... -------------------------------------------------------------------------------------------
def cmd_list(args) -> int:
    lib = _lib()
    rows = []
    for name in lib.names():
        vs = lib.versions(name)
        last = vs[-1]
        rows.append({"name": name, "latest": last.version, "versions": len(vs), "message": last.message,
                     "labels": {lab: v.version for v in vs for lab in v.labels}})
    errors = [{"path": str(p), "message": m} for p, m in lib.errors()]
    if args.json:
        _emit({"prompts": rows, "errors": errors, "root": str(lib.root)})
        return 0
    if not rows:
        print(f"No prompts in {lib.root}.")
    for r in rows:
        labels = ", ".join(f"{k}=@{v}" for k, v in sorted(r["labels"].items()))
        print(f"{r['name']:<24} @{r['latest']:<4} {r['versions']:>3} version(s)  {labels:<20} {r['message']}")
    for e in errors:
        print(f"warning: unreadable {e['path']}: {e['message']}", file=sys.stderr)
    return 0


def cmd_show(args) -> int:
    from core.prompts.library import spec_yaml
    lib = _lib()
    spec, v = lib.resolve(args.ref)
    if args.json:
        _emit({"name": spec.name, "version": v, "variables": spec.variables(), "spec": spec.to_dict()})
    else:
        print(f"# {spec.name}@{v}")
        sys.stdout.write(spec_yaml(spec))
    return 0


def cmd_history(args) -> int:
    lib = _lib()
    vs = lib.versions(args.name)
    if not vs:
        lib.resolve(args.name)       # raises PromptNotFound with the known names
    if args.json:
        _emit({"name": args.name, "versions": [v.to_dict() for v in vs]})
    else:
        for v in vs:
            print(f"@{v.version:<4} {v.created:<26} {','.join(v.labels):<12} {v.message}")
    return 0


def cmd_diff(args) -> int:
    text = _lib().diff(args.ref_a, args.ref_b)
    if args.json:
        _emit({"a": args.ref_a, "b": args.ref_b, "diff": text, "identical": not text})
    else:
        sys.stdout.write(text or "(identical)\n")
    return 0


def cmd_save(args) -> int:
    from core.prompts.library import load_spec_file
    spec = load_spec_file(Path(args.file))
    if args.name:
        spec.name = args.name
    v = _lib().save(spec, args.message)
    if args.json:
        _emit({"name": spec.name, "version": v})
    else:
        print(f"saved {spec.name}@{v}")
    return 0


def cmd_label(args) -> int:
    _lib().label(args.name, args.version, args.label)
    if args.json:
        _emit({"name": args.name, "version": args.version, "label": args.label})
    else:
        print(f"{args.name}@{args.label} -> @{args.version}")
    return 0


def cmd_restore(args) -> int:
    lib = _lib()
    v = lib.restore(args.ref, args.message)
    name = args.ref.partition("@")[0]
    if args.json:
        _emit({"name": name, "version": v, "restored": args.ref})
    else:
        print(f"restored {args.ref} as {name}@{v}")
    return 0


# ---- generate --prompt ... ---------------------------------------------------------------------------------
def parse_vars(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise PromptError(f"--var {item!r} must look like key=value (e.g. --var question='How do I export?').")
        out[key] = value
    return out


def run_prompt(args) -> int:
    """Handle `generate --prompt REF`: render the library prompt, run it, print the reply (or one JSON object)."""
    from core.llm.registry import get_backend
    from core.prompts.run import Variant, prepare, run_prepared

    lib = _lib()
    spec, version = lib.resolve(args.prompt_ref)
    try:   # the foundation's generate: same flags, same override rules (--temperature, --schema, --num-ctx ...)
        from core.llm.cli import build_generate_params
        params = build_generate_params(args, base=spec.gen_params())
    except ImportError:
        params = spec.gen_params()
        for flag in ("temperature", "top_p", "max_tokens", "seed"):
            if getattr(args, flag, None) is not None:
                setattr(params, flag, getattr(args, flag))
        if getattr(args, "stop", None):
            params.stop = list(args.stop)
    spec.json_schema = params.json_schema
    params.json_schema = None
    spec.params = params
    backend_name = getattr(args, "backend", None) or None
    backend = get_backend(backend_name)
    model = getattr(args, "model", None) or ""
    variant = Variant(label=f"{spec.name}@{version}", spec=spec, backend=backend.name, model=model,
                      ref=f"{spec.name}@{version}")
    prepared = prepare(variant, parse_vars(getattr(args, "var", None)), backend)
    if prepared.overflow:
        raise prepared.overflow_error()
    if args.json:
        res = run_prepared(prepared)
        out = {"prompt": spec.name, "version": version, "backend": backend.name, "model": model,
               "messages": prepared.messages, **res.to_dict()}
        _emit(out)
        return 1 if res.error else 0
    if prepared.warning:
        print(f"warning: {prepared.warning}", file=sys.stderr)
    stream = backend.chat_stream(prepared.messages, prepared.params, model=model or None)
    for delta in stream:
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    u = stream.usage
    if u is not None:
        print(f"[{u.model}: {u.prompt_tokens} prompt + {u.completion_tokens} completion tokens, "
              f"ttft {u.ttft_s * 1000:.0f} ms, {u.tokens_per_s:.1f} tok/s, {u.latency_s:.2f} s]", file=sys.stderr)
    if spec.json_schema is not None:
        from core.prompts.run import validate_json_output
        ok, err, _ = validate_json_output(stream.text, spec.json_schema)
        print("[JSON valid]" if ok else f"[JSON invalid: {err}]", file=sys.stderr)
        return 0 if ok else 1
    return 0


def _has(parser: argparse.ArgumentParser, flag: str) -> bool:
    return flag in parser._option_string_actions


def _add_generate_flags(gen: argparse.ArgumentParser) -> None:
    """Add the flags `generate --prompt` needs, skipping any the foundation's parser already defines."""
    gen.add_argument("--prompt", dest="prompt_ref", metavar="NAME[@VERSION]", default=None,
                     help="Run a prompt from the library (NAME, NAME@3 or NAME@baseline) instead of raw text.")
    gen.add_argument("--var", action="append", metavar="KEY=VALUE", default=None,
                     help="Fill a {variable} of the prompt's template; repeat for each variable.")
    optional = [
        ("--backend", dict(default=None, help="embedded | ollama | openai (default: configured backend)")),
        ("--model", dict(default=None, help="Model id of that backend (default: its default model)")),
        ("--temperature", dict(type=float, default=None, help="Override the prompt's temperature")),
        ("--top-p", dict(type=float, default=None, dest="top_p", help="Override top_p")),
        ("--max-tokens", dict(type=int, default=None, dest="max_tokens", help="Override max_tokens")),
        ("--seed", dict(type=int, default=None, help="Override the seed")),
        ("--stop", dict(action="append", default=None, help="Stop sequence (repeatable)")),
        ("--json", dict(action="store_true", help="Print one JSON object with the reply and its usage")),
    ]
    for flag, kw in optional:
        if not _has(gen, flag):
            gen.add_argument(flag, **kw)


def register(sub) -> None:
    p = sub.add_parser("prompts", help="The versioned prompt library.")
    psub = p.add_subparsers(dest="prompts_command", metavar="ACTION")

    def add(name, func, help_):
        sp = psub.add_parser(name, help=help_)
        sp.add_argument("--json", action="store_true", help="Print one JSON object")
        sp.set_defaults(func=func)
        return sp

    add("list", cmd_list, "List prompts with their latest version and labels.")
    add("show", cmd_show, "Print a prompt version as YAML.").add_argument("ref", metavar="NAME[@VERSION|@LABEL]")
    add("history", cmd_history, "List every version of a prompt.").add_argument("name")
    sp = add("diff", cmd_diff, "Unified diff of two versions.")
    sp.add_argument("ref_a")
    sp.add_argument("ref_b")
    sp = add("save", cmd_save, "Save a PromptSpec YAML/JSON file as a new version.")
    sp.add_argument("file")
    sp.add_argument("--message", "-m", required=True)
    sp.add_argument("--name", default=None, help="Save under this name instead of the file's `name`")
    sp = add("label", cmd_label, "Point a label (e.g. baseline) at a version.")
    sp.add_argument("name")
    sp.add_argument("version", type=int)
    sp.add_argument("label")
    sp = add("restore", cmd_restore, "Save an old version again as the newest.")
    sp.add_argument("ref")
    sp.add_argument("--message", "-m", default=None)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    # extend the foundation's `generate` (registered before us) or create it
    gen = sub.choices.get("generate") if hasattr(sub, "choices") else None
    if gen is None:
        gen = sub.add_parser("generate", help="Run a prompt from the library on a backend.")
        original = None
    else:
        original = gen.get_default("func")
        # a required positional text argument would make `generate --prompt X` fail: make it optional
        for action in gen._actions:
            if not action.option_strings and action.required and action.nargs in (None, 1):
                action.required, action.nargs = False, "?"
    _add_generate_flags(gen)

    def handler(args):
        if getattr(args, "prompt_ref", None):
            return run_prompt(args)
        if original is None:
            raise PromptError("Give --prompt NAME[@VERSION] (see `python -m core prompts list`).")
        return original(args)

    gen.set_defaults(func=handler)
