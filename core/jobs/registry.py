"""Job kinds: what a kind is called, where its run folders live and which function runs it.

A kind names its run function by dotted path ("package.module:function"); nothing is imported until a worker
runs a job of that kind, so reading or listing jobs never imports torch. Kinds registered at run time (tests,
plugins) are handed to the worker processes this process starts through WORKBENCH_JOB_KINDS.
"""
from __future__ import annotations

import importlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from core.errors import JobError

ENV_KINDS = "WORKBENCH_JOB_KINDS"


@dataclass(frozen=True)
class Kind:
    name: str                       # "ingest", "finetune", ...
    run: str                        # "module:function"; function(spec: dict, report: Reporter) -> dict | None
    title: str = ""                 # "ingest", "training", ... (for messages)
    prefix: str = ""                # id prefix ("ft" -> ft-20260101-120000-a1b2c3); default: the name
    root: str = ""                  # Settings attribute holding the kind's folder; default <data>/jobs/<name>
    serial: bool = False            # at most one job of the kind runs; the others wait queued, with no process
    resource: str = ""              # spec field: one job per value runs at a time (the others wait, queued)
    waiting: str = "waiting for another job on {resource} to finish"   # message while waiting for the resource
    resumable: bool = False         # a finished job may be queued again on the same folder (skips done work)
    cancel_grace_s: float = 10.0    # after a cancel request, SIGKILL the worker's process group after this long
    nice: int = 0                   # os.nice() increment of the worker (keeps the app responsive)
    env: tuple = ()                 # environment forced on the worker: ((name, value), ...)
    env_defaults: tuple = ()        # environment of the worker unless the caller set it
    interrupted_hint: str = ""      # appended to the "worker stopped" reason; {field} = status fields
    protect: str = ""               # "module:function"(kind_name) -> ids that cleanup must keep (still referenced)

    @property
    def id_prefix(self) -> str:
        return self.prefix or self.name

    def root_dir(self, settings=None) -> Path:
        from core.config import get_settings

        s = settings or get_settings()
        return Path(getattr(s, self.root)) if self.root else s.data_dir / "jobs" / self.name

    def load(self) -> Callable:
        return load_callable(self.run)


def load_callable(path: str) -> Callable:
    mod, _, attr = path.partition(":")
    if not mod or not attr:
        raise JobError(f"{path!r} is not a 'module:function' path.")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise JobError(f"Cannot load {path}: {exc}") from exc


_BUILTIN = {k.name: k for k in (
    Kind("ingest", "core.rag.jobs:run", title="ingest", resource="collection",
         waiting="waiting for another ingest into “{resource}” to finish", cancel_grace_s=5.0, nice=5,
         interrupted_hint="Files finished before that are in the index; ingest the batch again for the rest."),
    Kind("finetune", "core.finetune.runner:run", title="training", prefix="ft", root="runs_dir", serial=True,
         cancel_grace_s=20.0, protect="core.compare.runner:referenced_jobs",
         env=(("UNSLOTH_AUTO_INSTALL", "0"), ("UNSLOTH_LLAMA_CPP_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1"),
              ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")),
         # on a shared, busy CPU, spinning OpenMP threads wait on each other for seconds per step
         env_defaults=(("OMP_WAIT_POLICY", "PASSIVE"),),
         interrupted_hint="Start the job again to retrain."),
    Kind("compare", "core.compare.runner:run", title="comparison", prefix="cmp", root="compare_dir", resumable=True,
         cancel_grace_s=30.0, protect="core.compare.runner:referenced_jobs",
         interrupted_hint="{done}/{total} answers kept; resume to finish."),
    Kind("parity", "core.finetune.parity:run_job", title="parity check", resource="ref", cancel_grace_s=5.0,
         env=(("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"))),
    Kind("drill", "core.drill:run_job", title="knowledge-update drill", serial=True, cancel_grace_s=20.0,
         env=(("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")),
         interrupted_hint="Start the drill again: it re-indexes only what changed."),
    Kind("export", "core.finetune.export:run_job", title="export", resource="ref", cancel_grace_s=5.0,
         env=(("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"))),
    # one generation per use case at a time (each merges into the use case's candidates.jsonl)
    Kind("usecase_questions", "core.usecase.questions:run", title="question generation", prefix="ucq",
         resource="usecase", waiting="waiting for another question generation on “{resource}” to finish",
         cancel_grace_s=10.0, nice=5,
         env=(("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")),
         interrupted_hint="Candidates are saved when a generation ends; start it again."),
)}
_EXTRA: dict[str, Kind] = {}


def _from_env() -> dict[str, Kind]:
    raw = os.environ.get(ENV_KINDS)
    if not raw:
        return {}
    try:
        return {d["name"]: Kind(**{**d, "env": tuple(tuple(x) for x in d.get("env", ())),
                                   "env_defaults": tuple(tuple(x) for x in d.get("env_defaults", ()))})
                for d in json.loads(raw)}
    except (ValueError, TypeError, KeyError) as exc:
        raise JobError(f"{ENV_KINDS} is not a valid list of job kinds: {exc}") from exc


def register(kind: Kind) -> Kind:
    """Add (or replace) a kind at run time. Built-in kinds cannot be replaced."""
    if kind.name in _BUILTIN:
        raise JobError(f"{kind.name!r} is a built-in job kind.")
    _EXTRA[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _EXTRA.pop(name, None)


def kinds() -> dict[str, Kind]:
    return {**_BUILTIN, **_from_env(), **_EXTRA}


def get_kind(name: str) -> Kind:
    k = kinds().get(name)
    if k is None:
        raise JobError(f"Unknown job kind {name!r}; known: {', '.join(sorted(kinds()))}.")
    return k


def extra_kinds_env() -> str | None:
    """The run-time kinds as JSON, for the environment of a worker process."""
    extra = {**_from_env(), **_EXTRA}
    return json.dumps([asdict(k) for k in extra.values()]) if extra else None


