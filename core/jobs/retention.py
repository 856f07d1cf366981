"""Retention: a bounded number of finished job folders per kind (Settings.jobs_keep, WORKBENCH_JOBS_KEEP).

Finished jobs keep their results (their uploaded input copies are deleted when they end, see runtime). When a
kind has more finished jobs than the bound, the oldest go -- except a job that is queued or running, a job whose
lock a process holds, and a job that something still references (a kind's `protect` hook: e.g. a fine-tuning
run or a baseline that a comparison points to). If the references cannot be read, nothing is deleted.
"""
from __future__ import annotations

import shutil
import time

from core.config import get_settings
from core.jobs import lock, states
from core.jobs.control import _scan, protected_ids, root
from core.jobs.registry import get_kind

STALE_TMP_S = 3600


def cleanup(kind: str, keep: int | None = None, keep_ids: set[str] | frozenset = frozenset()) -> list[str]:
    """Delete the oldest finished jobs of `kind` beyond `keep`. Returns the deleted ids."""
    k = get_kind(kind)
    keep = get_settings().jobs_keep if keep is None else int(keep)
    r = root(k)
    if not r.is_dir() or keep < 0:
        return []
    for tmp in r.glob(".*.tmp"):                  # a creation that crashed half-way
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TMP_S:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass
    finished = sorted(((f, st) for f, st in _scan(k) if st.get("state") in states.TERMINAL),
                      key=lambda x: (x[1].get("created") or 0, x[0].id), reverse=True)
    if len(finished) <= keep:
        return []
    protected = protected_ids(k.name)
    if protected is None:
        return []
    deleted = []
    for f, _ in finished[keep:]:
        if f.id in protected or f.id in keep_ids:
            continue
        fd = lock.try_acquire(f.lock_path, wait_s=0)
        if fd is None:                             # someone runs or resumes it right now
            continue
        try:
            if f.read_status().get("state") in states.TERMINAL:
                shutil.rmtree(f.path, ignore_errors=True)
                deleted.append(f.id)
        finally:
            lock.release(fd)
    return deleted
