"""`python -m core usecase ...`: bring your own use case from the command line.

    usecase new NAME [--docs FOLDER] [--from tidewave]   a workspace (documents copied and ingested)
    usecase list | show NAME | export NAME OUT | import SRC [--name N]
    usecase ingest NAME                                  (re)index the use case's documents into its collection
    usecase import-answers NAME FILE [--question COL --answer COL ...] [--mask-pii]
    usecase checks NAME [--accept NAME | --accept-all]   derived voice/format checks
    usecase gen-questions NAME [--generator auto|extractive|llm]
    usecase review NAME [--accept ID | --reject ID | --accept-all | --edit ID ...] [--save]
Progress goes to stderr; --json prints one JSON object on stdout.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from core.errors import UseCaseError


def register(sub) -> None:
    p = sub.add_parser("usecase", help="Use cases: your documents + past answers -> question set + training data.",
                       description="Create, inspect, export and import use-case workspaces; import past answers; "
                                   "generate and review candidate questions.")
    us = p.add_subparsers(dest="usecase_command", metavar="SUBCOMMAND")

    def add(name, func, help_):
        sp = us.add_parser(name, help=help_, description=help_)
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        sp.set_defaults(func=func)
        return sp

    sp = add("new", cmd_new, "Create a use case (optionally with its documents, copied and ingested).")
    sp.add_argument("name")
    sp.add_argument("--title", default="")
    sp.add_argument("--product", default="", help="product or team name used in the starter prompts")
    sp.add_argument("--description", default="")
    sp.add_argument("--collection", default="", help="collection name (default: the use-case name)")
    sp.add_argument("--system-prompt", default="", help="system prompt of the training rows and prompts")
    sp.add_argument("--docs", nargs="+", type=Path, default=None, help="files or folders (txt, md, html, pdf, docx)")
    sp.add_argument("--no-ingest", action="store_true", help="copy the documents but do not index them yet")
    sp.add_argument("--from", dest="from_", default="", metavar="USECASE", help="copy an existing use case")

    add("list", cmd_list, "List the use cases (the bundled demo first).")
    sp = add("show", cmd_show, "What a use case holds, and the command of its first comparison.")
    sp.add_argument("name")

    sp = add("export", cmd_export, "Export a use case to a .tar.gz archive or a folder.")
    sp.add_argument("name")
    sp.add_argument("out", type=Path, help="NAME.tar.gz (archive) or a folder path")
    sp.add_argument("--force", action="store_true", help="replace OUT if it exists")

    sp = add("import", cmd_import, "Import a use case from an archive or folder made by export.")
    sp.add_argument("src", type=Path)
    sp.add_argument("--name", default=None, help="import under this name")
    sp.add_argument("--force", action="store_true", help="replace a use case of the same name")
    sp.add_argument("--ingest", action="store_true", help="index its documents into its collection")

    sp = add("ingest", cmd_ingest, "Index the use case's documents (knowledge/) into its collection.")
    sp.add_argument("name")

    sp = add("import-answers", cmd_import_answers,
             "Import past answers (CSV/JSONL) as training data: column mapping, duplicates, personal data.")
    sp.add_argument("name")
    sp.add_argument("file", type=Path)
    for role in ("question", "answer", "context", "category"):
        sp.add_argument(f"--{role}", default=None, metavar="COLUMN", help=f"column holding the {role}")
    sp.add_argument("--mask-pii", action="store_true", help="replace emails/phone numbers with [email]/[phone]")
    sp.add_argument("--keep", action="append", default=[], metavar="TEXT",
                    help="an email/phone to keep when masking (e.g. your own support address); repeatable")
    sp.add_argument("--append", action="store_true", help="add to the answers imported before")
    sp.add_argument("--dry-run", action="store_true", help="report only; write nothing")

    sp = add("checks", cmd_checks, "Show the accepted and proposed voice/format checks; accept proposals.")
    sp.add_argument("name")
    sp.add_argument("--accept", action="append", default=[], metavar="CHECK", help="accept a proposed check")
    sp.add_argument("--accept-all", action="store_true")

    sp = add("gen-questions", cmd_gen_questions, "Generate candidate questions from the collection's chunks.")
    sp.add_argument("name")
    sp.add_argument("--generator", default="auto", choices=["auto", "extractive", "llm"],
                    help="auto: extractive on the built-in model, llm on ollama/openai")
    sp.add_argument("--backend", default=None)
    sp.add_argument("--model", default=None)
    sp.add_argument("--per-chunk", type=int, default=3, help="at most this many questions per chunk")
    sp.add_argument("--limit", type=int, default=None, help="stop after this many new candidates")
    sp.add_argument("--timeout", type=float, default=60.0, help="seconds per chunk (llm)")
    sp.add_argument("--replace-pending", action="store_true", help="drop candidates not reviewed yet first")

    sp = add("review", cmd_review, "List, accept, reject, edit and tag candidates; --save writes the question set.")
    sp.add_argument("name")
    sp.add_argument("--status", default="pending", choices=["pending", "accepted", "rejected", "all"],
                    help="which candidates to list")
    sp.add_argument("--accept", action="append", default=[], metavar="ID")
    sp.add_argument("--reject", action="append", default=[], metavar="ID")
    sp.add_argument("--accept-all", action="store_true", help="accept every pending candidate")
    sp.add_argument("--reject-all", action="store_true", help="reject every pending candidate")
    sp.add_argument("--edit", metavar="ID", default=None, help="edit this candidate with the options below")
    sp.add_argument("--question", default=None)
    sp.add_argument("--reference", default=None)
    sp.add_argument("--evidence", default=None)
    sp.add_argument("--tags", default=None, help="';'-separated, e.g. fact_lookup;updated_fact")
    sp.add_argument("--keywords", default=None, help="';'-separated")
    sp.add_argument("--save", action="store_true", help="write the accepted candidates as the question set")
    sp = add("compare", cmd_compare, "The first comparison on the use case: classic approaches, its own checks.")
    sp.add_argument("name")
    sp.add_argument("--adapter", default=None, help="fine-tuned model (default: the newest trained for this use case)")
    sp.add_argument("--limit", type=int, default=None, help="only the first N questions")
    sp.add_argument("--run", action="store_true", help="run it now (otherwise print what would run)")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _out(args, obj: dict, lines: list[str]) -> None:
    from core.cli import emit_json
    if args.json:
        emit_json(obj)
    else:
        for ln in lines:
            print(ln)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ingest(uc, quiet: bool = False) -> dict:
    from core.rag.api import ingest_paths
    from core.usecase.workspace import knowledge_files

    files = knowledge_files(uc)
    if not files:
        raise UseCaseError(f"{uc.name} has no documents under {uc.file('knowledge')}: add some with "
                           f"`usecase new ... --docs` or copy files there.")
    t0 = time.perf_counter()
    last = [0.0]

    def progress(p):
        if not quiet and (p.stage in ("done", "skipped", "error") or time.monotonic() - last[0] > 2):
            last[0] = time.monotonic()
            _progress(f"  ingest [{p.overall_fraction * 100:5.1f}%] {p.file}: {p.stage} {p.message}".rstrip())

    res = ingest_paths([uc.file("knowledge")], uc.collection, progress=progress)
    bad = [r for r in res if not r.ok]
    return {"collection": uc.collection, "files": len(res), "ok": len(res) - len(bad),
            "chunks": sum(r.chunks for r in res), "seconds": round(time.perf_counter() - t0, 2),
            "errors": [{"file": r.file, "error": r.error} for r in bad]}


def cmd_new(args) -> int:
    from core.usecase import workspace

    if args.from_:
        if args.docs:
            raise UseCaseError("--from copies a whole use case; add documents to the copy afterwards.")
        uc = workspace.copy_usecase(args.from_, args.name, title=args.title)
    else:
        uc = workspace.create_usecase(args.name, title=args.title, product=args.product,
                                      description=args.description, collection=args.collection,
                                      system_prompt=args.system_prompt, docs=args.docs)
    ingest = None
    if args.docs and not args.no_ingest:
        ingest = _ingest(uc, quiet=args.json)
    _out(args, {"usecase": uc.to_dict(), "ingest": ingest},
         [f"use case {uc.name!r} created at {uc.path} (collection {uc.collection!r}, "
          f"{len(workspace.knowledge_files(uc))} document(s))"]
         + ([f"ingested {ingest['ok']}/{ingest['files']} file(s), {ingest['chunks']} chunks in {ingest['seconds']} s"]
            + [f"  FAILED {e['file']}: {e['error']}" for e in ingest["errors"]] if ingest else []))
    return 0


def cmd_list(args) -> int:
    from core.usecase import workspace

    rows = [workspace.summary(u) for u in workspace.list_usecases()]
    _out(args, {"usecases": rows},
         [f"{r['name']:20} {'(read-only) ' if r['read_only'] else ''}{r['title'][:40]:40} collection={r['collection']} "
          f"docs={r['documents']} questions={r['questions']} training={r['training_rows']} "
          f"candidates={r['candidates']}" for r in rows])
    return 0


def cmd_show(args) -> int:
    from core.usecase import workspace

    uc = workspace.get_usecase(args.name)
    s = workspace.summary(uc)
    s["compare_command"] = workspace.compare_command(uc)
    s["checks"] = workspace.load_checks(uc)
    lines = [f"{k:22} {v}" for k, v in s.items() if k not in ("checks", "compare_command")]
    lines += [f"{'voice check':22} {c['name']}: {c['pattern']}" for c in s["checks"]["voice_checks"]]
    lines += ["", "first comparison (classic approaches on this use case):", "  " + s["compare_command"]]
    _out(args, s, lines)
    return 0


def cmd_export(args) -> int:
    from core.usecase import workspace

    out = workspace.export_usecase(args.name, args.out, overwrite=args.force)
    size = out.stat().st_size if out.is_file() else sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    _out(args, {"name": args.name, "path": str(out), "bytes": size}, [f"exported {args.name!r} to {out} ({size} bytes)"])
    return 0


def cmd_import(args) -> int:
    from core.usecase import workspace

    res = workspace.import_usecase(args.src, name=args.name, overwrite=args.force)
    ingest = _ingest(res.usecase, quiet=args.json) if args.ingest and workspace.knowledge_files(res.usecase) else None
    _out(args, {**res.to_dict(), "ingest": ingest},
         [f"imported {res.usecase.name!r} ({res.files} file(s)) into {res.usecase.path}"]
         + [f"  skipped (not part of a use case): {s}" for s in res.skipped]
         + ([f"ingested {ingest['ok']}/{ingest['files']} file(s), {ingest['chunks']} chunks"] if ingest else []))
    return 0


def cmd_ingest(args) -> int:
    from core.usecase import workspace

    uc = workspace.get_usecase(args.name)
    res = _ingest(uc, quiet=args.json)
    _out(args, res, [f"ingested {res['ok']}/{res['files']} file(s) into {res['collection']!r}: {res['chunks']} chunks "
                     f"in {res['seconds']} s"] + [f"  FAILED {e['file']}: {e['error']}" for e in res["errors"]])
    return 0 if not res["errors"] else 1


def cmd_import_answers(args) -> int:
    from core.usecase import importers, workspace

    uc = workspace.get_usecase(args.name)
    path = args.file
    if not path.is_file():
        raise UseCaseError(f"{path}: no such file.")
    mapping = None
    if args.question or args.answer or args.context or args.category:
        columns, _ = importers.read_table(path.read_bytes(), path.name)
        guess = importers.guess_mapping(columns)
        q = args.question or (guess.question if guess else "")
        a = args.answer or (guess.answer if guess else "")
        if not q or not a:
            raise UseCaseError(f"Name both columns: --question COL --answer COL (columns: {', '.join(columns)}).")
        mapping = importers.ColumnMapping(q, a, args.context or "", args.category or "")
    t0 = time.perf_counter()
    rep = importers.import_answers(uc, path.read_bytes(), path.name, mapping, mask=args.mask_pii,
                                   keep=args.keep, append=args.append, dry_run=args.dry_run)
    d = rep.to_dict()
    d["seconds"] = round(time.perf_counter() - t0, 3)
    m = rep.mapping
    lines = [f"mapping: question={m.question!r} answer={m.answer!r} context={m.context!r} category={m.category!r}",
             f"rows read {d['rows_read']}, kept {d['kept']}, skipped {len(d['problems'])}, "
             f"duplicates {len(d['duplicates'])} "
             f"({sum(1 for x in d['duplicates'] if x['kind'] == 'exact')} exact, "
             f"{sum(1 for x in d['duplicates'] if x['kind'] == 'normalised')} normalised), "
             f"same question answered differently {len(d['same_question'])}",
             f"personal data: {d['pii_counts']['email']} email(s), {d['pii_counts']['phone']} phone number(s)"
             + (" — masked" if rep.masked else (" — not masked (use --mask-pii)" if d["pii"] else ""))]
    lines += [f"  row {p['line']} {p['field']}: {p['kind']} {p['text']}" for p in d["pii"][:10]]
    lines += [f"  row {p['line']}: {p['message']}" for p in d["problems"][:10]]
    if d["leaks_dropped"]:
        lines.append(f"dropped {len(d['leaks_dropped'])} training row(s) that contain question-set text")
    ds = d["dataset"]
    lines.append(f"training rows {'would be ' if args.dry_run else ''}written: {rep.written} "
                 f"(dataset check: {ds.get('errors', 0)} error(s), {ds.get('warnings', 0)} warning(s))")
    for pc in d["proposals"]:
        lines.append(f"proposed check {pc['name']}: {pc['pattern']}  ({pc['matched']}/{pc['total']} answers) — "
                     f"accept with `python -m core usecase checks {uc.name} --accept {pc['name']}`")
    _out(args, d, lines)
    return 0


def cmd_checks(args) -> int:
    from core.usecase import checks, workspace

    uc = workspace.get_usecase(args.name)
    current = workspace.load_checks(uc)
    proposals = workspace.read_proposals(uc)
    accepted = []
    if args.accept or args.accept_all:
        current = checks.accept(current, proposals, None if args.accept_all else args.accept)
        workspace.save_checks(uc, current)
        accepted = [p["name"] for p in proposals if args.accept_all or p["name"] in args.accept]
    lines = [f"accepted {', '.join(accepted)}"] if accepted else []
    lines += [f"check {c['name']}: {c['pattern']}" for c in current["voice_checks"]]
    lines += [f"refusal pattern: {p}" for p in current["refusal_patterns"]]
    lines += [f"proposed {p['name']}: {p['pattern']} ({p['matched']}/{p['total']})" for p in proposals
              if p["name"] not in {c["name"] for c in current["voice_checks"]}]
    _out(args, {"checks": current, "proposals": proposals, "accepted": accepted}, lines)
    return 0


def cmd_gen_questions(args) -> int:
    from core.usecase import questions

    spec = {"usecase": args.name, "generator": args.generator, "backend": args.backend or "",
            "model": args.model or "", "per_chunk": args.per_chunk, "limit": args.limit, "timeout_s": args.timeout,
            "replace_pending": args.replace_pending}
    report = questions.ConsoleReport(stream=sys.stderr)
    res = questions.run(spec, report)
    lines = [f"{res['candidates']} new candidate(s) ({res['generator']}) from {res['chunks_done']}/{res['chunks']} "
             f"chunk(s) in {res['seconds']} s; {res['total_candidates']} candidate(s) in total",
             f"review them: python -m core usecase review {args.name}"]
    lines += [f"  chunk error {e['source']}: {e['error']}" for e in res["errors"][:20]]
    _out(args, res, lines)
    return 0


def cmd_review(args) -> int:
    from core.usecase import review, workspace

    uc = workspace.get_usecase(args.name)
    results = []
    if args.accept:
        results.append(review.set_status(uc, args.accept, "accepted"))
    if args.reject:
        results.append(review.set_status(uc, args.reject, "rejected"))
    if args.accept_all:
        results.append(review.set_status(uc, None, "accepted"))
    if args.reject_all:
        results.append(review.set_status(uc, None, "rejected"))
    if args.edit:
        results.append(review.apply(uc, [{"id": args.edit, "question": args.question, "reference": args.reference,
                                          "evidence": args.evidence, "tags": args.tags,
                                          "keywords": args.keywords}]))
    changed = sum(r.changed for r in results)
    errors = [e for r in results for e in r.errors]
    saved = review.save_question_set(uc).to_dict() if args.save else None
    cands = review.load_candidates(uc)
    shown = [c for c in cands if args.status == "all" or c.status == args.status]
    lines = [f"{c.id}  [{c.status:8}] {c.generator:10} {c.question}\n      evidence ({c.evidence_match}, "
             f"{c.source}): {' '.join(c.evidence.split())[:110]}\n      keywords: {'; '.join(c.keywords)}  "
             f"tags: {'; '.join(c.tags)}" for c in shown[:200]]
    counts = {s: sum(1 for c in cands if c.status == s) for s in ("pending", "accepted", "rejected")}
    lines.append(f"{len(cands)} candidate(s): {counts['pending']} pending, {counts['accepted']} accepted, "
                 f"{counts['rejected']} rejected" + (f"; {changed} changed" if results else ""))
    lines += [f"  error {e['id']}: {e['error']}" for e in errors]
    if saved:
        lines.append(f"question set saved: {saved['saved']} question(s) -> {saved['path']}")
        lines += [f"  not saved {s['id']}: {s['reason']}" for s in saved["skipped"]]
        lines += [f"  warning {w['id']}: {w['warning']}" for w in saved["warnings"]]
        if saved["leaks_removed"]:
            lines.append(f"  removed {len(saved['leaks_removed'])} training row(s) that contained question-set text")
    _out(args, {"counts": counts, "changed": changed, "errors": errors, "saved": saved,
                "candidates": [c.to_dict() | {"chunk_text": None} for c in shown]}, lines)
    return 1 if errors else 0


def cmd_compare(args) -> int:
    from core.usecase import workspace

    uc = workspace.get_usecase(args.name)
    if uc.builtin:          # the demo: exactly the Compare page's classic preset
        if not args.run:
            _out(args, {"command": workspace.compare_command(uc)}, [workspace.compare_command(uc)])
            return 0
        from core.cli import main
        return main(["compare", "--preset", "classic"] + (["--limit", str(args.limit)] if args.limit else [])
                    + (["--json"] if args.json else []))
    approaches = workspace.approach_strings(uc, args.adapter)
    notes = [] if len(approaches) == 4 else [
        f"no adapter trained for {uc.name} yet: fine-tuned columns left out; train one with "
        f"`python -m core finetune --data {uc.file('train')} --preset quick --name {uc.name}`"]
    if not args.run:
        _out(args, {"approaches": approaches, "notes": notes, "command": workspace.compare_command(uc)},
             [f"  --approach {a}" for a in approaches] + notes + [f"run it: {workspace.compare_command(uc)}"])
        return 0
    from core.compare import runner
    from core.compare.cli import _print_result

    for n in notes:
        _progress(n)
    run_id = workspace.start_comparison(uc, args.adapter, args.limit)
    _progress(f"run {run_id}")

    def progress(rec, st):
        if not args.json:
            mark = "ok" if rec["ok"] else f"ERROR {rec.get('error')}"
            _progress(f"  {st['done'] + st['errors']}/{st['total']} {rec['qid']} x {rec['approach']}: {mark}")

    runner.run_batch(runner.run_dir(run_id), on_record=progress)
    return _print_result(run_id, args.json)
