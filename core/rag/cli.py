"""`python -m core ingest | search | ask | rag-eval | collections` — the RAG commands."""
from __future__ import annotations

import sys
from pathlib import Path

from core.cli import emit_json


def register(sub) -> None:
    p = sub.add_parser("ingest", help="Ingest files or folders into a collection (txt, md, html, pdf, docx).")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--collection", required=True)
    p.add_argument("--chunker", default=None, help="structure (default) or fixed")
    p.add_argument("--chunk-size", type=int, default=None, help="chunk size in embedder tokens (default 200)")
    p.add_argument("--overlap", type=int, default=None, help="overlap in embedder tokens (default 32)")
    p.add_argument("--embedder", default=None, help="all-MiniLM-L6-v2 (default), st:/local/folder or ollama:MODEL")
    p.add_argument("--detach", action="store_true",
                   help="run the ingest as a background job (its own process) and print the job id at once; "
                        "follow it with `python -m core ingest-status JOB_ID --wait`")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ingest-status", help="Show ingest jobs (started by the Knowledge Base page or --detach).")
    p.add_argument("job_id", nargs="?", default=None, help="a job id (default: list the recent jobs)")
    p.add_argument("--wait", action="store_true", help="wait until the job has finished")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ingest_status)

    p = sub.add_parser("search", help="Retrieve the top-k chunks for a query.")
    p.add_argument("query")
    p.add_argument("--collection", required=True)
    p.add_argument("--mode", choices=["vector", "fts", "hybrid"], default="hybrid")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--version", type=int, default=None, help="read this table version (reproduce an old answer)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="Answer a question from a collection, with citations.")
    p.add_argument("question")
    p.add_argument("--collection", required=True)
    p.add_argument("--mode", choices=["vector", "fts", "hybrid"], default="hybrid")
    p.add_argument("-k", type=int, default=None, help="chunks retrieved (default: the RAG profile's, 4)")
    p.add_argument("--backend", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--version", type=int, default=None)
    p.add_argument("--profile", choices=["embedded", "server"], default=None,
                   help="RAG context profile (default: the backend's: embedded = selected sentences under a token "
                        "budget, server = whole chunks)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("rag-eval", help="Retrieval evaluation: hit@1, hit@5, MRR per mode.")
    p.add_argument("--collection", required=True)
    p.add_argument("--questions", type=Path, required=True, help="JSONL with question + evidence (+ source)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("delete-document", help="Delete one document's chunks from a collection's active index.")
    p.add_argument("doc_id", help="the document id shown by `collections --docs`")
    p.add_argument("--collection", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_delete_document)

    p = sub.add_parser("collections", help="List collections (and documents with --docs).")
    p.add_argument("--docs", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_collections)


def _progress_printer(enabled: bool):
    if not enabled:
        return None

    def cb(p):
        if p.stage in ("done", "skipped", "error"):
            print(f"[{p.index + 1}/{p.total}] {p.file}: {p.message}", file=sys.stderr)
    return cb


def cmd_ingest(args) -> int:
    from core.rag.api import ingest_paths
    if args.detach:
        from core.rag import jobs
        job_id = jobs.start_ingest_job(args.paths, args.collection, chunker=args.chunker, chunk_size=args.chunk_size,
                                       overlap=args.overlap, embedder=args.embedder)
        if args.json:
            emit_json({"job_id": job_id, "collection": args.collection, "job_dir": str(jobs.job_dir(job_id))})
        else:
            print(job_id)
        return 0
    results = ingest_paths(args.paths, args.collection, chunker=args.chunker, chunk_size=args.chunk_size,
                           overlap=args.overlap, progress=_progress_printer(not args.json), embedder=args.embedder)
    ok = sum(r.ok for r in results)
    if args.json:
        emit_json({"collection": args.collection, "ok": ok, "failed": len(results) - ok,
                   "files": [r.to_dict() for r in results]})
    else:
        for r in results:
            state = "unchanged" if r.skipped_unchanged else ("ok" if r.ok else "FAILED")
            detail = r.error if not r.ok else f"{r.chunks} chunks, {r.tokens} tokens, {r.seconds:.2f}s"
            print(f"{state:9} {r.doc_id or r.file}: {detail}")
        print(f"{ok}/{len(results)} files in collection {args.collection!r}")
    return 0 if ok == len(results) else 1


def cmd_ingest_status(args) -> int:
    from core.rag import jobs
    if not args.job_id:
        listed = jobs.list_jobs(limit=20)
        if args.json:
            emit_json({"jobs": [j.to_dict() for j in listed]})
        else:
            for j in listed:
                print(f"{j.id}  {j.state:9} {j.collection}: {j.label} ({j.ok} ok, {j.failed} failed of {len(j.files)})")
        return 0
    job = jobs.wait(args.job_id, timeout=24 * 3600) if args.wait else jobs.read_job(args.job_id)
    if args.json:
        emit_json(job.to_dict())
    else:
        print(f"{job.id}: {job.state} · {job.collection} · {job.done}/{len(job.files)} files · {job.message}")
        for f in job.files:
            r = f.get("result")
            if r:
                state = "unchanged" if r.get("skipped_unchanged") else ("ok" if r.get("ok") else "FAILED")
                detail = r.get("error") or f"{r['chunks']} chunks, {r['tokens']} tokens, {r['seconds']:.2f}s"
                print(f"{state:9} {f['name']}: {detail}")
            else:
                print(f"{f.get('stage', ''):9} {f['name']}")
        if job.error:
            print(f"error: {job.error}", file=sys.stderr)
    return 0 if job.state not in ("failed", "interrupted") and not job.failed else 1


def cmd_search(args) -> int:
    from core.rag.api import retrieve
    r = retrieve(args.query, args.collection, mode=args.mode, k=args.k, version=args.version)
    if args.json:
        emit_json(r.to_dict())
    else:
        print(f"{r.mode} search in {r.collection} (table version {r.table_version}, {r.seconds * 1000:.0f} ms)")
        for c in r.chunks:
            print(f"\n#{c.rank}  score {c.score:.4f}  {c.source} chunk {c.position}")
            print("    " + " ".join(c.text.split())[:400])
    return 0


def cmd_ask(args) -> int:
    from core.rag.api import answer
    params = {k: v for k, v in {"max_tokens": args.max_tokens, "temperature": args.temperature}.items() if v is not None}
    if args.json:
        res = answer(args.question, args.collection, backend=args.backend, model=args.model, mode=args.mode,
                     k=args.k, params=params or None, version=args.version, profile=args.profile)
        emit_json(res.to_dict())
        return 0
    s = answer(args.question, args.collection, backend=args.backend, model=args.model, mode=args.mode, k=args.k,
               params=params or None, stream=True, version=args.version, profile=args.profile)
    for delta in s:
        sys.stdout.write(delta)
        sys.stdout.flush()
    res = s.result()
    print("\n")
    texts = [sn.text for sn in res.snippets] if res.context_selected else []
    for i, c in enumerate(res.prompt_chunks, start=1):
        shown = texts[i - 1] if i <= len(texts) else " ".join(c.text.split())[:160]
        print(f"[{i}] {c.source} chunk {c.position}: {shown}")
    prof = res.profile or {}
    if prof:
        how = (f"selected sentences ≤ {prof.get('budget_tokens')} tokens" if res.context_selected else "whole chunks")
        print(f"context: {prof.get('name')} profile, k={prof.get('k')}, {how}", file=sys.stderr)
    for p in res.citations.problems:
        print(f"warning: {p}", file=sys.stderr)
    u = res.usage
    print(f"\ntable version {res.table_version} · {res.backend}/{res.model} · {u.prompt_tokens}+{u.completion_tokens} "
          f"tokens · {u.latency_s:.2f}s")
    return 0


def cmd_eval(args) -> int:
    from core.rag.api import evaluate
    rep = evaluate(args.collection, args.questions)
    if args.json:
        emit_json(rep.to_dict())
    else:
        print(f"{rep.n_questions} questions · {rep.collection} v{rep.table_version} · {rep.index}")
        print(f"{'mode':8} {'hit@1':>6} {'hit@5':>6} {'MRR':>6} {'ms/q':>6}")
        for m, s in rep.modes.items():
            print(f"{m:8} {s.hit_at_1:6.2f} {s.hit_at_5:6.2f} {s.mrr:6.3f} {s.mean_ms:6.1f}")
    return 0


def cmd_delete_document(args) -> int:
    from core.rag.api import delete_document
    n = delete_document(args.collection, args.doc_id)     # waits for the collection's write lock
    if args.json:
        emit_json({"collection": args.collection, "doc_id": args.doc_id, "deleted_rows": n})
    else:
        print(f"deleted {n} chunks of {args.doc_id!r} from {args.collection!r}" if n else
              f"{args.doc_id!r} is not in collection {args.collection!r}")
    return 0 if n else 1


def cmd_collections(args) -> int:
    # through the listing cache (core.rag.listing): while the LanceDB folder is unchanged, no lancedb import
    from core.rag.listing import collections as list_collections, documents as list_documents
    cols = list_collections()
    if args.json:
        emit_json({"collections": [dict(c.to_dict(), **({"docs": list_documents(c.name)} if args.docs else {}))
                                   for c in cols]})
    else:
        for c in cols:
            disk = f", {c.disk_bytes / 1e6:.1f} MB on disk" if c.disk_bytes is not None else ""
            print(f"{c.name}: {c.documents} docs, {c.rows} chunks, {c.embedder}, {c.chunk_settings}, v{c.table_version}{disk}")
            if args.docs:
                for d in list_documents(c.name):
                    print(f"    {d['doc_id']}: {d['chunks']} chunks")
    return 0
