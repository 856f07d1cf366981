"""One job layer for every long task: ingest, fine-tuning, batch comparisons, parity checks, exports.

    from core import jobs
    job = jobs.create("ingest", spec)          # a run folder, queued, then started in its own process
    jobs.read(job.id).state                    # queued | running | succeeded | failed | cancelled | interrupted
    jobs.cancel(job.id)                        # cooperative, then SIGKILL of the worker's process group
    jobs.wait(job.id, timeout=600)

Modules: states (the vocabulary), folder (the run folder layout, ids), registry (kinds and their run functions),
lock (liveness = holding the run lock), control (create/start/read/list/cancel/wait), runtime (the state machine
around a kind's run(spec, report)), worker (the one worker process), retention (bounded folders per kind),
cli (`python -m core jobs list|show|cancel`). Nothing here imports torch.
"""
from __future__ import annotations

from core.jobs.control import (Job, NewJob, cancel, create, creating, delete, dispatch, is_alive, list_jobs,  # noqa: F401
                               queued_waiting, read, reconcile, resource_lock_path, root, run_inline, start, wait)
from core.jobs.folder import RunFolder, append_jsonl, log_tail, new_id, read_jsonl, validate_id  # noqa: F401
from core.jobs.registry import Kind, get_kind, kinds, register, unregister  # noqa: F401
from core.jobs.retention import cleanup  # noqa: F401
from core.jobs.runtime import Cancelled, JobFailed, Reporter  # noqa: F401
from core.jobs.states import ACTIVE, STATES, TERMINAL  # noqa: F401
