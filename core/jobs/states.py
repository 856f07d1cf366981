"""The one vocabulary of job states and the transitions between them.

    queued ──> running ──> succeeded | failed | cancelled | interrupted
       └────────────────> cancelled | failed | interrupted        (never ran, or died while waiting)
    failed | cancelled | interrupted ──> queued                     (resume, for kinds that can resume)
    succeeded ──> queued                                            (resume, e.g. a comparison to retry errors)

"interrupted" is never written by the job itself: it is what a reader records when the job's worker no longer
holds the run lock (killed, out of memory, machine restarted) although the status still says it was working.
"""
from __future__ import annotations

from core.errors import JobError

QUEUED, RUNNING = "queued", "running"
SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = "succeeded", "failed", "cancelled", "interrupted"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
ACTIVE = (QUEUED, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)

_ALLOWED = {
    QUEUED: {RUNNING, CANCELLED, FAILED, INTERRUPTED},
    RUNNING: {SUCCEEDED, FAILED, CANCELLED, INTERRUPTED},
    SUCCEEDED: {QUEUED},
    FAILED: {QUEUED},
    CANCELLED: {QUEUED},
    INTERRUPTED: {QUEUED},
}

# State names written by the job systems this layer replaced (run folders from before still read correctly).
LEGACY = {"done": SUCCEEDED, "stopped": CANCELLED, "created": QUEUED, "stopping": RUNNING}


def normalise(state: str | None) -> str:
    """A state read from disk in today's vocabulary (unknown or missing -> queued)."""
    s = LEGACY.get(state or "", state or QUEUED)
    return s if s in STATES else FAILED


def check(old: str, new: str) -> None:
    """Raise JobError unless old -> new is a transition of the state machine (same state is allowed)."""
    old, new = normalise(old), normalise(new)
    if old != new and new not in _ALLOWED[old]:
        raise JobError(f"A job cannot go from {old!r} to {new!r}.")


ICONS = {QUEUED: "⏳", RUNNING: "🏃", SUCCEEDED: "✅", FAILED: "❌", CANCELLED: "⛔", INTERRUPTED: "⚠️"}
