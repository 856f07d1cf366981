"""What llama.cpp build this environment runs, so a bug report carries the CPU features it was compiled for.

`make setup` (scripts/setup_llama.py) builds llama-cpp-python for this machine's CPU with AMX switched off, proves it
with a smoke generation in a subprocess, and records the result in `<venv>/llama-build.json`. Reading that record is
a file read (no llama_cpp import), so the home page can show it on every run; `live_system_info()` asks the loaded
library itself (`llama_print_system_info()`), which the CLI does.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

RECORD_NAME = "llama-build.json"


def record_path() -> Path:
    return Path(sys.prefix) / RECORD_NAME


def build_record() -> dict:
    """The recorded build ({} when set-up did not record one, e.g. llama-cpp-python installed by hand)."""
    try:
        data = json.loads(record_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def live_system_info() -> str:
    """llama.cpp's own system-info line (imports llama_cpp; '' when it is not installed)."""
    try:
        import llama_cpp
    except Exception:  # noqa: BLE001 - not installed or broken: the record still tells what set-up saw
        return ""
    return llama_cpp.llama_print_system_info().decode(errors="replace").strip()


def build_summary(live: bool = False) -> dict:
    """One dict for status cards and `backends --json`: profile, flags, verified time and the system-info line."""
    rec = build_record()
    out = {"profile": rec.get("profile", "unrecorded"), "cmake_args": rec.get("cmake_args", ""),
           "verified_at": rec.get("verified_at", ""), "smoke_ok": bool(rec.get("ok")),
           "amx_advertised": rec.get("amx_advertised"),
           "system_info": rec.get("system_info", "")}
    if live or "llama_cpp" in sys.modules:
        out["system_info"] = live_system_info() or out["system_info"]
    return out
