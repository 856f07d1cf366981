"""`python -m core.rag.worker JOB_DIR`: runs one ingest job (see core.rag.jobs) in its own process.

Reads JOB_DIR/spec.json, waits for the collection's lock (one ingest per collection at a time), ingests, and
keeps JOB_DIR/status.json up to date (atomically, at most a few writes a second). Torch is imported here, never
in the page that started the job.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path

from core.errors import WorkbenchError
from core.rag import jobs

WRITE_EVERY_S = 0.3


class StatusWriter:
    """Holds the job's status dict and writes it atomically, throttled (stage ends are always written)."""

    def __init__(self, folder: Path, spec: dict):
        self.path = folder / "status.json"
        self.status = jobs.read_json(self.path, {}) or {}
        self.status.update(id=spec["id"], collection=spec["collection"], label=spec.get("label", ""),
                           created=self.status.get("created") or spec.get("created"), pid=os.getpid())
        self._last = 0.0

    def update(self, force: bool = True, **fields) -> None:
        self.status.update(fields)
        now = time.monotonic()
        if force or now - self._last >= WRITE_EVERY_S:
            jobs.write_json_atomic(self.path, self.status)
            self._last = now


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m core.rag.worker JOB_DIR", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    spec = jobs.read_json(folder / "spec.json")
    if not spec:
        print(f"{folder}: no readable spec.json", file=sys.stderr)
        return 2
    out = StatusWriter(folder, spec)

    def on_term(signum, frame):   # noqa: ARG001 - a stop request: record it, then leave at once
        out.update(state="failed", error="The ingest was stopped (SIGTERM). Files finished before that are in "
                   "the index.", message="stopped", finished=time.time())
        os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    try:
        os.nice(5)                # keep the app's queries responsive while a big ingest runs
    except OSError:
        pass
    try:
        return run(spec, out)
    except BaseException as exc:  # noqa: BLE001 - every way out is recorded in status.json
        msg = str(exc) if isinstance(exc, WorkbenchError) else f"Unexpected error: {type(exc).__name__}: {exc}"
        traceback.print_exc()
        out.update(state="failed", error=msg, message="failed", finished=time.time())
        return 1


def run(spec: dict, out: StatusWriter) -> int:
    from core.rag import ingest

    collection = spec["collection"]
    items = ingest.plan_items([Path(p) for p in spec.get("paths") or []], spec.get("uploads") or [])
    files = [{"name": name, "doc_id": doc_id, "stage": "waiting", "fraction": 0.0, "message": "", "result": None}
             for name, doc_id, _ in items]
    out.update(files=files, overall=0.0, message=f"{len(files)} files to ingest")
    with jobs.file_lock(jobs.collection_lock_path(collection), blocking=False) as held:
        if not held:
            out.update(state="queued", message=f"waiting for another ingest into “{collection}” to finish")
    with jobs.file_lock(jobs.collection_lock_path(collection)):
        out.update(state="running", started=time.time(), message="loading the embedding model")
        print(f"ingest job {spec['id']}: {len(items)} files into {collection}", flush=True)

        def progress(p: ingest.IngestProgress) -> None:
            f = files[p.index]
            f.update(stage=p.stage, fraction=round(p.file_fraction, 4), message=p.message)
            end = p.stage in ("done", "skipped", "error")
            out.update(force=end, overall=round(p.overall_fraction, 4),
                       message=f"{p.file}: {p.message or p.stage}")

        def on_result(i: int, r) -> None:
            files[i].update(result=r.to_dict(), fraction=1.0,
                            stage="unchanged" if r.skipped_unchanged else ("done" if r.ok else "error"))
            out.update(force=False)

        results = ingest.run_items(items, collection, spec.get("chunker"), spec.get("chunk_size"),
                                   spec.get("overlap"), progress=progress, embedder=spec.get("embedder"),
                                   on_result=on_result)
        ok = sum(r.ok for r in results)
        out.update(state="succeeded", overall=1.0, finished=time.time(), files=files,
                   message=f"{ok} of {len(results)} files ingested")
        for r in results:
            print(f"{'ok' if r.ok else 'FAILED':7} {r.file}: {r.error or f'{r.chunks} chunks'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
