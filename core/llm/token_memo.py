"""Prompt token counts and rendered prompts of the embedded model, remembered on disk.

Why: a page's first render counts tokens (Prompt Lab: each variant's prompt for its context bar; Fine-Tune: every
training row, plus the preview of one) and that needs llama_cpp and the model loaded, ~0.5-0.8 s of a cold start.
The answers are deterministic, so they are kept in <data>/cache/prompt_tokens.jsonl: a page opened again needs
neither. A record is keyed by the model file's digest (its tokenizer and chat template live in the GGUF), the
llama-cpp-python version (it applies the template) and the messages' exact JSON, so any change is a miss, and a
miss is computed and appended. A broken line is skipped; a file past MAX_BYTES is started afresh.
"""
from __future__ import annotations

import functools
import hashlib
import json
import threading
from importlib import metadata
from pathlib import Path
from typing import Callable

from core.config import get_settings

FILE = "prompt_tokens.jsonl"
MAX_BYTES = 8 << 20
KINDS = {"tokens": int, "text": str}
_LOCK = threading.Lock()
_TABLES: dict[str, dict[str, object]] = {}       # memo file -> {key: value}, read once per process


@functools.cache
def _llama_version() -> str:
    """Read once per process: a metadata lookup costs ~0.7 ms, and a Fine-Tune render asks for ~200 keys."""
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return ""


def memo_key(digest: str, kind: str, messages: list[dict]) -> str:
    blob = json.dumps([digest, _llama_version(), kind, messages], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def _path() -> Path:
    return get_settings().cache_dir / FILE


def _table(path: Path) -> dict[str, object]:
    table = _TABLES.get(str(path))
    if table is not None:
        return table
    table = {}
    try:
        if path.stat().st_size > MAX_BYTES:
            path.unlink()
        else:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                    kind, value = rec["kind"], rec["value"]
                    if isinstance(value, KINDS[kind]) and not isinstance(value, bool):
                        table[str(rec["key"])] = value
                except (ValueError, KeyError, TypeError):
                    continue
    except FileNotFoundError:
        pass
    _TABLES[str(path)] = table
    return table


def remembered(digest: str, kind: str, messages: list[dict], compute: Callable[[], object]):
    """The remembered value for (model digest, kind, messages), else compute() -- remembered from then on."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}")
    path, key = _path(), memo_key(digest, kind, messages)
    with _LOCK:
        table = _table(path)
        if key in table:
            return table[key]
    value = compute()
    with _LOCK:
        table[key] = value
        try:            # a cache: no lock or fsync (a Fine-Tune page counts ~200 rows on its first visit); one
            path.parent.mkdir(parents=True, exist_ok=True)      # short O_APPEND write per line, a cut one is skipped
            with path.open("a", encoding="utf-8") as fh:
                fh.write("\n" + json.dumps({"key": key, "kind": kind, "value": value}, ensure_ascii=False) + "\n")
        except OSError:
            pass                    # a read-only data folder only costs the recount next time
    return value


def forget() -> None:
    """Drop what this process has read, so the next lookup reads the file again (tests)."""
    with _LOCK:
        _TABLES.clear()
