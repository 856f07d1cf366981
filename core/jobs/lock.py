"""Liveness: a job's worker is alive exactly while it holds the run's lock (an flock on <run>/.lock).

The OS drops an flock when the holding process dies, however it dies, so a crash, a SIGKILL, an out-of-memory
kill or a reboot can never leave a job looking alive, and a recycled pid can never make a dead job look alive.
The process that starts a worker takes the lock first and hands the locked descriptor down to the child, so
the lock is held without a gap from before the process exists until it exits.

A pid is only used to deliver the SIGKILL of a cancel that was not honoured, and only after checking that the
lock is still held and that the process with that pid is the one that was started (same start time, same boot).
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


def try_acquire(path: Path, wait_s: float = 1.0) -> int | None:
    """The run lock as an open descriptor, or None when a live process holds it. Retries for `wait_s`, since a
    reader may hold it for a few microseconds while it checks liveness."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def release(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)           # closing the last descriptor of the open file releases the flock
        except OSError:
            pass


def is_held(path: Path) -> bool:
    """True while some process holds the lock (a non-blocking test; never creates the run folder)."""
    if not Path(path).parent.is_dir():
        return False
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


# --- which process a pid is ----------------------------------------------------------------------------------
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> int | None:
    """Start time of the process in clock ticks after boot (field 22 of /proc/<pid>/stat), None without /proc."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def identity(pid: int) -> dict:
    """What identifies a process beyond its pid: {pid, start, boot}."""
    return {"pid": int(pid), "start": _start_ticks(pid), "boot": _boot_id()}


def same_process(info: dict) -> bool:
    """Is the process recorded in `info` (see identity) still the one running under that pid?"""
    pid = info.get("pid")
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False                  # another user's process: never ours
    now = identity(int(pid))
    if info.get("boot") and now["boot"] and info["boot"] != now["boot"]:
        return False
    if info.get("start") is not None and now["start"] is not None:
        return info["start"] == now["start"]
    return now["start"] is None       # no /proc here: the lock test alone decides


def is_zombie_or_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(int(pid), 0)
            return False
        except OSError:
            return True
