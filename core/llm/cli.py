"""`python -m core backends|generate|pull` — the LLM layer from the command line.

`generate` is built from small functions so other packages can extend it (prompt library, adapters):
`add_generate_arguments(parser)` declares options, `build_generate_messages(args)` turns args into chat messages,
`build_generate_params(args)` into GenParams, `run_generate(args)` streams and prints.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import emit_json
from core.errors import InvalidParams
from core.jsonout import loads
from core.llm.base import GenParams, Message


def register(sub) -> None:
    p = sub.add_parser("backends", help="Each LLM backend: reachable or not, why, and its models.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_backends)

    p = sub.add_parser("generate", help="Stream a reply from a backend.")
    add_generate_arguments(p)
    p.set_defaults(func=run_generate)

    p = sub.add_parser("pull", help="Pull a model on the Ollama server (with progress).")
    p.add_argument("model", help="e.g. llama3.2:1b")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(func=cmd_pull)


# ---- backends ---------------------------------------------------------------------------------------------------
def cmd_backends(args) -> int:
    from core.llm.registry import all_statuses
    statuses = all_statuses()
    from core.llm.buildinfo import build_summary
    build = build_summary(live=True)
    if args.json:
        emit_json({"backends": [s.to_dict() for s in statuses], "llama_cpp_build": build})
        return 0
    for s in statuses:
        mark = "OK  " if s.reachable else "DOWN"
        print(f"[{mark}] {s.name}: {s.reason}")
        if s.name == "embedded":
            print(f"         llama.cpp build: {build['profile']} ({build['system_info'] or 'no system info'})")
        for m in s.models:
            print(f"         - {m.id}" + (f"  ({m.description})" if m.description else ""))
    return 0


# ---- generate ---------------------------------------------------------------------------------------------------
class AdapterAction(argparse.Action):
    """--adapter NAME is a model id on the embedded backend: ft:NAME (its base model is in adapter.json)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from core.llm.models import ADAPTER_PREFIX
        name = str(values).strip()
        if not name:
            parser.error("--adapter needs an adapter name")
        setattr(namespace, self.dest, name if name.startswith(ADAPTER_PREFIX) else ADAPTER_PREFIX + name)


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="?", default="", help="the user message")
    p.add_argument("--system", default="", help="system prompt")
    p.add_argument("--backend", default=None, help="embedded | ollama | openai (default: WORKBENCH_BACKEND)")
    p.add_argument("--model", default=None, help="model id (default: the backend's default)")
    p.add_argument("--adapter", action=AdapterAction, dest="model", metavar="ADAPTER",
                   help="a fine-tuned LoRA adapter (name or ft:<name>, see the Fine-Tune page) on the embedded "
                        "backend; the same as --model ft:<name>")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", dest="top_p", type=float, default=None)
    p.add_argument("--max-tokens", dest="max_tokens", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=None, help="stop sequence (repeatable)")
    p.add_argument("--schema", default=None, help="JSON schema file: the reply must match it")
    p.add_argument("--num-ctx", dest="num_ctx", type=int, default=None, help="context window (Ollama num_ctx)")
    p.add_argument("--json", action="store_true", help="print one JSON object with text and usage")


def build_generate_messages(args) -> list[Message]:
    """Chat messages from --system and the positional prompt (extension point for prompt specs)."""
    messages: list[Message] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.prompt or ""})
    return messages


def build_generate_params(args, base: GenParams | None = None) -> GenParams:
    """GenParams from the command line on top of `base` (e.g. a prompt spec's params)."""
    params = GenParams.from_dict((base or GenParams()).to_dict())
    for name in ("temperature", "top_p", "max_tokens", "seed", "num_ctx"):
        val = getattr(args, name, None)
        if val is not None:
            setattr(params, name, val)
    if getattr(args, "stop", None):
        params.stop = list(args.stop)
    if getattr(args, "schema", None):
        params.json_schema = load_schema(args.schema)
    return params.validate()


def load_schema(path: str) -> dict:
    p = Path(path)
    try:
        data = loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidParams(f"Cannot read the schema file {path}: {exc.strerror or exc}.") from exc
    except ValueError as exc:
        raise InvalidParams(f"The schema file {path} is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise InvalidParams(f"The schema file {path} must hold a JSON object.")
    return data


def run_generate(args, messages: list[Message] | None = None, params: GenParams | None = None) -> int:
    from core.llm.registry import get_backend
    params = params or build_generate_params(args)
    messages = messages if messages is not None else build_generate_messages(args)
    backend = get_backend(args.backend)
    stream = backend.chat_stream(messages, params, args.model)
    if args.json:
        result = stream.result()
        out = {"text": result.text, "usage": result.usage.to_dict(), "backend": backend.name}
        if params.json_schema is not None:
            try:
                out["parsed"] = loads(result.text)
            except ValueError:
                out["parsed"] = None
        emit_json(out)
        return 0
    for delta in stream:
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    u = stream.usage
    print(f"[{u.backend}:{u.model}] prompt {u.prompt_tokens} tok, output {u.completion_tokens} tok, "
          f"TTFT {u.ttft_s * 1000:.0f} ms, {u.tokens_per_s:.1f} tok/s, latency {u.latency_s:.2f} s",
          file=sys.stderr)
    return 0


# ---- pull -------------------------------------------------------------------------------------------------------
def cmd_pull(args) -> int:
    from core.llm.registry import get_backend
    backend = get_backend("ollama")
    last = None
    for p in backend.pull(args.model):
        last = p
        if not args.json:
            pct = f" {p.fraction:6.1%}" if p.total else ""
            print(f"\r{p.status[:60]:<60}{pct}", end="", file=sys.stderr, flush=True)
    if args.json:
        emit_json({"model": args.model, "status": last.status if last else "", "ok": True})
    else:
        print(file=sys.stderr)
    return 0
