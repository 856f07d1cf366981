"""`python -m core`: the scriptable twin of the UI. Each package adds its sub-commands in its own `cli.py`
through `register(subparsers)`; `--json` output is stable (one JSON object on stdout)."""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from core.errors import WorkbenchError

# Each module exposes register(subparsers) that adds sub-commands whose handler is set with set_defaults(func=...).
# A handler takes the parsed args and returns an exit code.
COMMAND_MODULES = ["core.llm.cli", "core.prompts.cli", "core.rag.cli", "core.finetune.cli", "core.compare.cli",
                   "core.advisor_cli", "core.compare.ratings_cli", "core.jobs.cli", "core.usecase.cli",
                   "core.drill_cli"]


def emit_json(obj) -> None:
    """Print one JSON object (the stable --json contract)."""
    json.dump(obj, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Approach Workbench command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:   # that package has no CLI yet
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        if getattr(args, "json", False):
            emit_json({"error": type(exc).__name__, "message": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`... | head`): no traceback; stdout is pointed at /dev/null so the interpreter's
        # final flush does not raise again (the recipe in Python's signal docs)
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
