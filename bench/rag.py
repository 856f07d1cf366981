"""RAG bench: ingest throughput vs bare SentenceTransformer.encode (torch and ONNX Runtime embedders), query
embedding latency per backend, retrieval quality per backend, query latency per mode at 2k rows and at --rows
(100k by default, 1M with --rows 1000000) with ANN recall@5, and query latency on an S3 object store (a local moto
server) next to the local folder.

    python bench/rag.py [--chunks 2000] [--rounds 2] [--rows 100000] [--queries 50] [--only-query] [--no-onnx]
                        [--no-s3] [--no-quality] [--query-embedder onnx|all-MiniLM-L6-v2]

Ingest: the corpus is split into --rounds parts; every variant processes each part once, in rounds whose order
alternates (A B C ... then ... C B A), after an untimed warm-up of every variant (model load, ONNX export, lancedb
import, first writes), so load drift on a shared machine hits every variant alike. "bare encode" is the raw
library on the same chunk texts in one call (chunking outside the clock); "ingest" is the whole pipeline
(load + clean + chunk + embed + store + index update) into a fresh collection.

The corpus is real text (sentences of sample_docs/knowledge recombined into generated documents) embedded with the
real packaged model. The --rows table is SYNTHETIC: it reuses the corpus' chunk texts and vectors with random
perturbations (embedding 100k or 1M chunks on 2 CPU cores would take hours); each text appears rows/chunks times,
so full-text posting lists are long. Runs in a temporary data folder, removed at the end (disk use is printed).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TORCH = "all-MiniLM-L6-v2"


def make_corpus(folder: Path, n_chunks: int, seed: int = 7, prefix: str = "guide") -> None:
    """Generated markdown documents of recombined real sentences: ~10 structure chunks of 200 tokens each."""
    rng = random.Random(seed)
    sents = []
    for f in sorted((ROOT / "sample_docs" / "knowledge").glob("*.md")) + sorted((ROOT / "sample_docs" / "knowledge").glob("*.txt")):
        text = f.read_text(encoding="utf-8")
        sents += [s.strip() for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", re.sub(r"#+ ", "", text))) if 40 < len(s.strip()) < 300]
    n_docs = max(1, n_chunks // 10)
    for d in range(n_docs):
        parts = [f"# Generated guide {d}"]
        for sec in range(5):
            parts.append(f"## Section {sec} of guide {d}")
            for _ in range(2):
                parts.append(" ".join(rng.choice(sents) for _ in range(rng.randint(5, 7))))
        (folder / f"{prefix}-{d:04d}.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def latency(collection, queries, mode, k=5):
    from core.rag.api import retrieve
    for q in queries[:3]:
        retrieve(q, collection, mode=mode, k=k)   # warm-up
    times = []
    for q in queries:
        t0 = time.perf_counter()
        retrieve(q, collection, mode=mode, k=k)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), pct(times, 95)


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str]] = []

    def add(self, a, b="", c=""):
        self.rows.append((a, b, c))

    def print(self, title):
        w = max(len(r[0]) for r in self.rows)
        print(f"\n{title}\n")
        for a, b, c in self.rows:
            print(f"{a:<{w}}  {b:>20}  {c}")


# ------------------------------------------------------------------------------------------------------------
def ingest_section(args, tmp, out: Table, backends: list[str]) -> dict:
    from core.rag.api import get_embedder, ingest_paths
    from core.rag.chunkers import get_chunker
    from core.rag.loaders import load_path

    corpus = tmp / "corpus"
    corpus.mkdir()
    make_corpus(corpus, args.chunks)
    files = sorted(corpus.glob("*.md"))
    parts = [files[i::args.rounds] for i in range(args.rounds)]
    warm = tmp / "warm"
    warm.mkdir()
    make_corpus(warm, 60, seed=11, prefix="warm")
    torch_emb = get_embedder(TORCH)
    ch = get_chunker()
    texts_of = {id(p): [c.text for f in p for c in ch.chunk(load_path(f).text, torch_emb)] for p in parts}

    def bare(name):
        emb = get_embedder(name)

        def run(p):
            texts = texts_of[id(p)]
            t0 = time.perf_counter()
            if name == TORCH:   # the raw library itself: one call, its own length sorting, batch 32
                emb._model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True,
                                  show_progress_bar=False)
            else:
                emb.encode(texts)
            return time.perf_counter() - t0, len(texts)
        return run

    def ingest(name):
        coll = "ing_" + name.replace(":", "_").replace("-", "_").lower()

        def run(p):
            t0 = time.perf_counter()
            res = ingest_paths(p, coll, embedder=name)
            dt = time.perf_counter() - t0
            assert all(r.ok for r in res), [r.error for r in res if not r.ok][:3]
            return dt, sum(r.chunks for r in res)
        return run

    variants = {f"bare encode {TORCH} (torch)": bare(TORCH), "ingest torch": ingest(TORCH)}
    for b in backends:
        variants[f"bare encode {b}"] = bare(b)
        variants[f"ingest {b}"] = ingest(b)
    t0 = time.perf_counter()
    for name in [TORCH] + backends:           # warm-up: model load (+ ONNX export), lancedb, first writes
        get_embedder(name).encode(["warm up"] * 40)
        ingest_paths(sorted(warm.glob("*.md")), "warm_" + name.replace(":", "_").replace("-", "_"), embedder=name)
    out.add("warm-up (model loads, ONNX export if not cached, lancedb import)", f"{time.perf_counter() - t0:.1f} s")
    timing: dict[str, list[tuple[float, int]]] = {k: [] for k in variants}
    for r, p in enumerate(parts):
        order = list(variants.items())
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            timing[name].append(fn(p))
            print(f"round {r + 1}/{len(parts)} {name}: {timing[name][-1][0]:.1f} s", file=sys.stderr)
    rate = {k: sum(n for _, n in v) / sum(t for t, _ in v) for k, v in timing.items()}
    n = sum(n for _, n in timing["ingest torch"])
    ref = rate[f"bare encode {TORCH} (torch)"]
    for k in variants:
        out.add(k, f"{rate[k]:.1f} chunks/s", f"{rate[k] / ref:.2f}x bare torch encode")
    out.add("ratio ingest torch / bare torch encode (target >= 0.85)", f"{rate['ingest torch'] / ref:.2f}",
            f"{n} chunks, {args.rounds} interleaved rounds")
    for b in backends:
        tgt = " (target >= 1.5)" if b == "onnx" else ""
        out.add(f"ratio ingest {b} / bare torch encode{tgt}", f"{rate[f'ingest {b}'] / ref:.2f}")
    t0 = time.perf_counter()
    again = ingest_paths(files, "ing_" + TORCH.replace("-", "_").lower(), embedder=TORCH)
    assert all(r.skipped_unchanged for r in again)
    out.add("re-ingest unchanged corpus (torch index)", f"{time.perf_counter() - t0:.2f} s", "0 chunks embedded")
    return {"coll_torch": "ing_" + TORCH.replace("-", "_").lower(),
            **{f"coll_{b}": "ing_" + b.replace(":", "_").replace("-", "_").lower() for b in backends}}


def query_embedding_section(queries, out: Table, backends: list[str]) -> None:
    from core.rag.api import get_embedder
    names = [TORCH] + backends
    embs = {n: get_embedder(n) for n in names}
    for e in embs.values():
        for q in queries[:5]:
            e.encode([q])
    ts: dict[str, list[float]] = {n: [] for n in names}
    for q in queries:                     # interleaved per query
        for n, e in embs.items():
            t0 = time.perf_counter()
            e.encode([q])
            ts[n].append((time.perf_counter() - t0) * 1000)
    base = statistics.median(ts[TORCH])
    for n in names:
        tgt = " (target <= 5 ms)" if n == "onnx" else ""
        med = statistics.median(ts[n])
        out.add(f"query embedding {n}{tgt}", f"p50 {med:.2f} ms", f"p95 {pct(ts[n], 95):.2f} ms, "
                f"{base / med:.2f}x faster than torch")


def quality_section(out: Table, backends: list[str]) -> dict:
    """core.rag.evaluate on the scenario (sample_docs/knowledge + its questions) with each backend."""
    from core.rag.api import evaluate, ingest_paths, sample_paths
    _, knowledge, questions = sample_paths()
    reps = {}
    for name in [TORCH] + backends:
        coll = "q_" + name.replace(":", "_").replace("-", "_").lower()
        assert all(r.ok for r in ingest_paths([knowledge], coll, embedder=name))
        reps[name] = evaluate(coll, questions)
    base = reps[TORCH]
    for name, rep in reps.items():
        cells = []
        for m, s in rep.modes.items():
            cells.append(f"{m} {round(s.hit_at_1 * rep.n_questions)}/{round(s.hit_at_5 * rep.n_questions)}/{s.mrr:.3f}")
        diff = ""
        if name != TORCH:
            d = {m: (abs(round((s.hit_at_1 - base.modes[m].hit_at_1) * rep.n_questions)),
                     abs(round((s.hit_at_5 - base.modes[m].hit_at_5) * rep.n_questions))) for m, s in rep.modes.items()}
            worst = max(max(v) for v in d.values())
            changed = sum(1 for a, b in zip(base.details, rep.details) for m in rep.modes if a[m] != b[m])
            diff = f"; hit counts differ from torch by at most {worst} question(s) (target <= 1); " \
                   f"{changed} (question, mode) ranks changed"
        out.add(f"retrieval quality {name} ({rep.n_questions} q; hit@1/hit@5/MRR)", "", ", ".join(cells) + diff)
    return reps


def scale_section(args, queries, out: Table, source_coll: str, query_embedder: str, tmp: Path) -> None:
    import numpy as np
    import pyarrow as pa

    from core.rag import store
    from core.rag.api import get_embedder
    from core.rag.retriever import _fts, _vector, refine_factor

    emb = get_embedder(query_embedder)
    cfg = store.get_active(source_coll)
    src = store.open_table(cfg.table_name).search().select(["text", "vector"]).limit(None).to_arrow()
    base_vecs = np.stack(src.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
    base_txt = src.column("text").to_pylist()
    rng = np.random.default_rng(0)
    label = f"{args.rows // 1000}k" if args.rows < 1_000_000 else f"{args.rows / 1e6:g}M"
    coll = f"scale{label}"
    table, cfgN = store.get_index(coll, emb.name, cfg.dimension, "structure", 200, 32)
    batch = 100_000
    t0 = time.perf_counter()
    all_vecs = np.empty((args.rows, base_vecs.shape[1]), dtype=np.float32)
    for start in range(0, args.rows, batch):
        m = min(batch, args.rows - start)
        idx = rng.integers(0, len(base_vecs), m)
        v = base_vecs[idx] + rng.normal(0, 0.03, (m, base_vecs.shape[1])).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        all_vecs[start:start + m] = v
        ids = [f"r{start + i}" for i in range(m)]
        data = pa.table({
            "id": ids, "doc_id": [f"doc{(start + i) // 10}" for i in range(m)],
            "source": [f"doc{(start + i) // 10}.md" for i in range(m)],
            "position": [(start + i) % 10 for i in range(m)], "start": [0] * m, "end": [0] * m, "heading": [""] * m,
            "text": [base_txt[j] for j in idx], "tokens": [200] * m, "doc_hash": [""] * m, "ingested_at": [0.0] * m,
            "ingest_s": [0.0] * m,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), type=pa.float32()), v.shape[1]),
        }, schema=store.chunk_schema(cfg.dimension))
        table.add(data)
    t_load = time.perf_counter() - t0
    ids_all = np.array([f"r{i}" for i in range(args.rows)])
    qv = np.stack([emb.encode([q])[0] for q in queries])
    exact = [list(ids_all[np.argpartition(-(all_vecs @ q), 5)[:5]]) for q in qv]
    t_flat = []
    for q in qv[:10]:
        t1 = time.perf_counter()
        _vector(table, q, 5)
        t_flat.append((time.perf_counter() - t1) * 1000)
    t0 = time.perf_counter()
    done = store.update_indexes(table)
    t_index = time.perf_counter() - t0
    assert "ann" in done, done
    disk = du(tmp / "data")
    del all_vecs

    def recall(refine, nprobes) -> float:
        hits = 0
        for q, ex in zip(qv, exact):
            s = table.search(q, vector_column_name="vector").distance_type("cosine").select(["id"]).limit(5).nprobes(nprobes)
            if refine:
                s = s.refine_factor(refine)
            hits += len(set(s.to_arrow().column("id").to_pylist()) & set(ex))
        return hits / (5 * len(qv))

    sweep = {}
    chosen = (store.ANN_NPROBES, store.ANN_REFINE or None)
    for nprobes, refine in [(20, 10), (40, 10), chosen, (128, 20)]:
        t1 = time.perf_counter()
        sweep[(nprobes, refine)] = (recall(refine, nprobes), (time.perf_counter() - t1) * 1000 / len(qv))
    hits = 0
    for q, ex in zip(qv, exact):
        hits += len(set(c.id for c in _vector(table, q, 20)[:5]) & set(ex))
    lat = {mode: latency(coll, queries, mode) for mode in ("vector", "fts", "hybrid")}
    tN, _ = store.pinned_table(cfgN.table_name)
    qvs = {q: emb.encode([q])[0] for q in queries}
    stages = {f"query embedding ({emb.name})": lambda q: emb.encode([q]),
              f"vector search k=20 (nprobes {store.ANN_NPROBES}, refine {refine_factor(20)})": lambda q: _vector(tN, qvs[q], 20),
              "full-text search k=20": lambda q: _fts(tN, q, 20)}
    breakdown = {}
    for name, fn in stages.items():
        ts = []
        for q in queries:
            t1 = time.perf_counter()
            fn(q)
            ts.append((time.perf_counter() - t1) * 1000)
        breakdown[name] = (statistics.median(ts), pct(ts, 95))

    out.add(f"{label} rows (synthetic): load", f"{t_load:.1f} s", f"{args.rows} rows in batches of {batch}")
    out.add(f"{label}: FTS + IVF_SQ index build", f"{t_index:.1f} s", str(done))
    out.add(f"{label}: build time total (load + indexes)", f"{t_load + t_index:.1f} s",
            f"disk {disk / 2**30:.2f} GiB (whole data folder)")
    out.add(f"{label}: exact vector search (no index)", f"{statistics.median(t_flat):.1f} ms", "p50")
    for (nprobes, refine), (r, ms) in sweep.items():
        mark = "  <- the app's setting" if (nprobes, refine) == chosen else ""
        out.add(f"{label}: recall@5 IVF_SQ nprobes={nprobes} refine={refine} (target >= 0.98)", f"{r:.3f}",
                f"{ms:.1f} ms/query (search only){mark}")
    out.add(f"{label}: recall@5 of hybrid's vector list (k=20)", f"{hits / (5 * len(qv)):.3f}")
    for mode, (p50, p95) in lat.items():
        tgt = " (target p50 <= 50 ms at 1M, <= 30 ms at 100k)" if mode == "hybrid" else ""
        out.add(f"{label}: query {mode} incl. query embedding{tgt}", f"p50 {p50:.1f} ms", f"p95 {p95:.1f} ms")
    for name, (p50, p95) in breakdown.items():
        out.add(f"  {label} hybrid stage: {name}", f"p50 {p50:.1f} ms", f"p95 {p95:.1f} ms")


def s3_section(queries, out: Table, tmp: Path, embedder: str) -> None:
    """The sample collection on a local folder and on an S3 bucket of a moto server on loopback."""
    import socket
    import urllib.request

    from core.rag import store
    from core.rag.api import ingest_paths, sample_paths
    try:
        import boto3
    except ImportError:
        out.add("S3 (moto) latency", "skipped", "moto[server]/boto3 not installed")
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp / "moto.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                            stderr=subprocess.STDOUT)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
                                            "AWS_ENDPOINT", "AWS_ALLOW_HTTP", "WORKBENCH_LANCEDB_URI")}
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                          AWS_ENDPOINT=endpoint, AWS_ALLOW_HTTP="true")
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench-workbench")
        _, knowledge, _ = sample_paths()
        res = {}
        for where, uri in (("local folder", None), ("S3 (moto, loopback)", "s3://bench-workbench/wb")):
            if uri:
                os.environ["WORKBENCH_LANCEDB_URI"] = uri
            else:
                os.environ.pop("WORKBENCH_LANCEDB_URI", None)
            t0 = time.perf_counter()
            assert all(r.ok for r in ingest_paths([knowledge], "s3bench", embedder=embedder))
            t_ing = time.perf_counter() - t0
            res[where] = {m: latency("s3bench", queries, m) for m in ("vector", "fts", "hybrid")}
            res[where]["ingest"] = t_ing
            res[where]["rows"] = store.open_table(store.get_active("s3bench").table_name).count_rows()
        for where, r in res.items():
            cells = ", ".join(f"{m} p50 {r[m][0]:.1f} / p95 {r[m][1]:.1f} ms" for m in ("vector", "fts", "hybrid"))
            out.add(f"sample collection on {where} ({r['rows']} rows)", f"ingest {r['ingest']:.1f} s", cells)
        loc, s3 = res["local folder"], res["S3 (moto, loopback)"]
        out.add("S3 / local p50 ratio: vector / fts / hybrid", " / ".join(f"{s3[m][0] / loc[m][0]:.2f}"
                                                                       for m in ("vector", "fts", "hybrid")))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved ingest rounds (the corpus is split into them)")
    ap.add_argument("--rows", type=int, default=100_000, help="rows of the synthetic scale table (0 = skip)")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--only-query", action="store_true", help="skip the ingest-throughput comparison")
    ap.add_argument("--no-onnx", action="store_true", help="torch embedder only")
    ap.add_argument("--no-quality", action="store_true", help="skip the per-backend retrieval evaluation")
    ap.add_argument("--no-s3", action="store_true", help="skip the object-store latency")
    ap.add_argument("--query-embedder", default=None,
                    help="embedder of the scale table's queries (default: onnx when available, else torch)")
    args = ap.parse_args()
    os.environ.setdefault("LANCEDB_LOG", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    os.environ["WORKBENCH_DATA"] = str(tmp / "data")
    import importlib.util
    backends = [] if args.no_onnx or importlib.util.find_spec("onnxruntime") is None else ["onnx", "onnx-int8"]
    from core.scenario import scenario_questions
    questions = [q.question for q in scenario_questions()]
    queries = (questions * 3)[: args.queries]
    out = Table()
    t_start = time.perf_counter()
    try:
        from core.rag.api import get_embedder, ingest_paths
        colls = {}
        if not args.only_query:
            colls = ingest_section(args, tmp, out, backends)
            for b, coll in [("torch", colls["coll_torch"])] + [(b, colls[f"coll_{b}"]) for b in backends]:
                for mode in ("vector", "fts", "hybrid"):
                    p50, p95 = latency(coll, queries, mode)
                    out.add(f"~{args.chunks // 1000}k rows ({b} index): query {mode} incl. embedding",
                            f"p50 {p50:.1f} ms", f"p95 {p95:.1f} ms")
        query_embedding_section(queries, out, backends)
        if not args.no_quality:
            quality_section(out, backends)
        if args.rows:
            qe = get_embedder(args.query_embedder or (backends[0] if backends else TORCH))
            key = "coll_torch" if qe.backend == "torch" else f"coll_{qe.backend}"
            if key not in colls:
                corpus = tmp / "corpus-base"
                corpus.mkdir()
                make_corpus(corpus, args.chunks)
                t0 = time.perf_counter()
                n = sum(r.chunks for r in ingest_paths(sorted(corpus.glob("*.md")), "ing_base", embedder=qe.name))
                out.add("ingest of the base corpus (vectors for the scale table)", f"{n} chunks",
                        f"{time.perf_counter() - t0:.1f} s")
                colls[key] = "ing_base"
            # the scale table derives from vectors of the same backend as its queries (never mixed)
            scale_section(args, queries, out, colls[key], qe.name, tmp)
        if not args.no_s3:
            s3_section(queries, out, tmp, backends[0] if backends else TORCH)
        out.add("load average (1 min) at start / at the end", f"{load_start[0]:.2f} / {os.getloadavg()[0]:.2f}",
                f"bench wall time {time.perf_counter() - t_start:.0f} s")
        out.print(f"RAG bench ({os.cpu_count()} cores, {len(queries)} queries; ratios are against bare "
                  f"SentenceTransformer.encode (torch) on the same chunks)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
