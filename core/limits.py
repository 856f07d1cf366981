"""A per-file time and memory limit for document parsing: the parse sandbox.

Parsers of untrusted files (pypdf, python-docx, BeautifulSoup) can be made to run for minutes or to allocate
gigabytes by a small hostile file. `ParseSandbox` runs the loaders of `core.rag.loaders` in ONE long-lived child
process (`python -m core.limits`) whose address space is capped with RLIMIT_AS; each file gets a deadline. A file
that runs past it, or makes the child run out of memory or crash, becomes a per-file typed error
(ParseTimeout / ParseMemoryExceeded / IngestError); the child is then replaced and the batch goes on.

The child is started with subprocess (no fork of a process that holds torch threads, no multiprocessing
re-import of `__main__`), lazily on the first file, and reused for every file of a batch (~0.1 s once).
Messages are length-prefixed JSON (plus raw bytes for an in-memory upload): nothing is unpickled.

`ingest._run` opens a sandbox for every batch (`active_sandbox()`), so the ingest worker, the CLI's foreground
ingest and the in-process sample build all get the limits. `WORKBENCH_PARSE_TIMEOUT_S=0` parses in-process
(no limits), e.g. to debug a loader.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.config import PROJECT_ROOT, get_settings
from core.errors import IngestError, ParseMemoryExceeded, ParseTimeout

_LEN = struct.Struct(">Q")
_ACTIVE: contextvars.ContextVar["ParseSandbox | None"] = contextvars.ContextVar("parse_sandbox", default=None)
MB = 1024 * 1024


def _error_classes() -> dict[str, type]:
    from core import errors
    from core.rag import loaders
    out = {n: c for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, errors.WorkbenchError)}
    out["EncryptedDocument"] = loaders.EncryptedDocument
    return out


def _doc_to_dict(doc) -> dict:
    return {"doc_id": doc.doc_id, "display_name": doc.display_name, "kind": doc.kind, "text": doc.text,
            "content_hash": doc.content_hash, "size_bytes": doc.size_bytes, "meta": doc.meta}


def _doc_from_dict(d: dict):
    from core.rag.loaders import Document
    return Document(**d)


class ParseSandbox:
    """Loads documents in a child process with a per-file deadline and an address-space limit. Thread-safe
    (one file at a time); use as a context manager or call close()."""

    def __init__(self, timeout_s: float = 120, memory_mb: int = 2048):
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.restarts = 0

    @classmethod
    def from_settings(cls, settings=None) -> "ParseSandbox":
        s = settings or get_settings()
        return cls(s.parse_timeout_s, s.parse_memory_mb)

    # ---- the child -------------------------------------------------------------------------------------------
    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen([sys.executable, "-m", "core.limits", str(self.memory_mb)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                      cwd=str(PROJECT_ROOT), env=env, close_fds=True)
        return self._proc

    def _kill(self) -> int | None:
        p, self._proc = self._proc, None
        if p is None:
            return None
        with contextlib.suppress(OSError):
            p.kill()
        with contextlib.suppress(OSError, ValueError):
            p.stdin.close()
        with contextlib.suppress(OSError, ValueError):
            p.stdout.close()
        try:
            return p.wait(timeout=10)
        except subprocess.TimeoutExpired:   # pragma: no cover - SIGKILL does not take this long
            return None

    def close(self) -> None:
        with self._lock:
            p = self._proc
            if p is not None and p.poll() is None:
                with contextlib.suppress(OSError, ValueError):
                    p.stdin.close()      # EOF: the child leaves its loop
                try:
                    p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
            self._kill()

    def __enter__(self) -> "ParseSandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read_exact(self, fd: int, n: int, deadline: float) -> bytes | None:
        """n bytes from fd, or None at EOF; raises TimeoutError past the deadline."""
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(fd, min(n - len(buf), 1 << 20))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _call(self, name: str, op: str, args: dict, payload: bytes = b"") -> dict:
        with self._lock:
            proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
            header = json.dumps({"op": op, "args": args, "payload": len(payload)}).encode("utf-8")
            try:
                proc.stdin.write(_LEN.pack(len(header)) + header + payload)
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                rc = self._kill()
                self.restarts += 1
                raise IngestError(f"{name}: the parser process stopped unexpectedly (exit code {rc}); try again.")
            deadline = time.monotonic() + self.timeout_s
            fd = proc.stdout.fileno()
            try:
                head = self._read_exact(fd, _LEN.size, deadline)
                body = self._read_exact(fd, _LEN.unpack(head)[0], deadline) if head else None
            except TimeoutError:
                self._kill()
                self.restarts += 1
                raise ParseTimeout(f"{name}: reading the file took longer than {self.timeout_s:g} s and was stopped "
                                   "(a very large or malformed document). Split or re-export it, or raise "
                                   "WORKBENCH_PARSE_TIMEOUT_S.") from None
            if body is None:
                rc = self._kill()
                self.restarts += 1
                if rc is not None and rc in (-signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT, 137, 134):
                    raise ParseMemoryExceeded(
                        f"{name}: the parser ran out of memory or crashed (limit {self.memory_mb} MB, signal "
                        f"{-rc if rc < 0 else rc}); the file was skipped. Split it, or raise "
                        "WORKBENCH_PARSE_MEMORY_MB.")
                raise IngestError(f"{name}: the parser process stopped unexpectedly (exit code {rc}); the file "
                                  "was skipped.")
            reply = json.loads(body)
            if reply.get("fatal"):          # e.g. MemoryError: the child exits after answering
                self._kill()
                self.restarts += 1
            return reply

    def _result(self, name: str, reply: dict):
        if reply.get("ok"):
            return _doc_from_dict(reply["doc"])
        cls = _error_classes().get(reply.get("type") or "", IngestError)
        if not issubclass(cls, IngestError):
            cls = IngestError
        raise cls(reply.get("message") or f"{name}: the file could not be read.")

    # ---- the loaders ------------------------------------------------------------------------------------------
    def load_path(self, path: Path, max_mb: int | None = None, doc_id: str | None = None,
                  display: str | None = None):
        """loaders.load_path in the child."""
        name = display or Path(path).name
        args = {"path": str(Path(path).absolute()), "max_mb": max_mb, "doc_id": doc_id, "display": display}
        return self._result(name, self._call(name, "load_path", args))

    def load_bytes(self, data: bytes, name: str, max_mb: int | None = None, doc_id: str | None = None):
        """loaders.load_bytes in the child (the bytes are sent through the pipe)."""
        args = {"name": str(name), "max_mb": max_mb, "doc_id": doc_id}
        return self._result(str(name), self._call(str(name), "load_bytes", args, bytes(data)))


# ---- what ingest calls ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def active_sandbox(settings=None):
    """Make loads in this context go through one ParseSandbox (none when WORKBENCH_PARSE_TIMEOUT_S=0, or when
    an outer context already opened one). Yields the sandbox or None."""
    if _ACTIVE.get() is not None:
        yield _ACTIVE.get()
        return
    s = settings or get_settings()
    if s.parse_timeout_s <= 0:
        yield None
        return
    box = ParseSandbox.from_settings(s)
    token = _ACTIVE.set(box)
    try:
        yield box
    finally:
        _ACTIVE.reset(token)
        box.close()


def load_path(path: Path, max_mb: int | None = None, doc_id: str | None = None, display: str | None = None):
    """loaders.load_path through the active sandbox (or in-process when there is none)."""
    box = _ACTIVE.get()
    if box is None:
        from core.rag import loaders
        return loaders.load_path(path, max_mb=max_mb, doc_id=doc_id, display=display)
    return box.load_path(path, max_mb=max_mb, doc_id=doc_id, display=display)


def load_bytes(data: bytes, name: str, max_mb: int | None = None, doc_id: str | None = None):
    box = _ACTIVE.get()
    if box is None:
        from core.rag import loaders
        return loaders.load_bytes(data, name, max_mb=max_mb, doc_id=doc_id)
    return box.load_bytes(data, name, max_mb=max_mb, doc_id=doc_id)


# ---- the child process ----------------------------------------------------------------------------------------
def _serve(memory_mb: int) -> int:
    import resource

    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                      # anything a library prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    proto_in = sys.stdin.buffer
    if memory_mb > 0:
        limit = memory_mb * MB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from core.errors import WorkbenchError
    from core.rag import loaders

    def send(obj: dict) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        proto_out.write(_LEN.pack(len(body)) + body)
        proto_out.flush()

    def read_exact(n: int) -> bytes | None:
        buf = proto_in.read(n)
        return buf if buf is not None and len(buf) == n else None

    while True:
        head = read_exact(_LEN.size)
        if head is None:
            return 0
        header = read_exact(_LEN.unpack(head)[0])
        if header is None:
            return 0
        msg = json.loads(header)
        payload = read_exact(msg.get("payload") or 0) if msg.get("payload") else b""
        if payload is None:
            return 0
        a = msg.get("args") or {}
        name = a.get("display") or a.get("name") or Path(a.get("path") or "document").name
        try:
            if msg["op"] == "load_path":
                doc = loaders.load_path(Path(a["path"]), max_mb=a.get("max_mb"), doc_id=a.get("doc_id"),
                                        display=a.get("display"))
            elif msg["op"] == "load_bytes":
                doc = loaders.load_bytes(payload, a["name"], max_mb=a.get("max_mb"), doc_id=a.get("doc_id"))
            else:
                send({"ok": False, "type": "IngestError", "message": f"unknown operation {msg['op']!r}"})
                continue
            del payload
            send({"ok": True, "doc": _doc_to_dict(doc)})
            del doc
        except MemoryError:
            payload = doc = None   # noqa: F841 - free what we can before answering
            send({"ok": False, "fatal": True, "type": "ParseMemoryExceeded",
                  "message": f"{name}: parsing needed more than the {memory_mb} MB memory limit; the file was "
                             "skipped. Split it, or raise WORKBENCH_PARSE_MEMORY_MB."})
            return 3
        except RecursionError:
            send({"ok": False, "type": "DocumentLimitExceeded",
                  "message": f"{name}: the document is nested too deeply to parse; the file was skipped."})
        except WorkbenchError as exc:
            send({"ok": False, "type": type(exc).__name__, "message": str(exc)})
        except Exception as exc:  # noqa: BLE001 - an unexpected parser failure is this file's error only
            send({"ok": False, "type": "IngestError",
                  "message": f"{name}: unexpected error while reading ({type(exc).__name__}: {exc})"})


if __name__ == "__main__":
    raise SystemExit(_serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
