"""Retrieval quality bench: hit@1 / hit@5 / MRR@10 of BM25-only, dense-only, the default hybrid and plain RRF on two
question sets, beside a naive baseline (fixed 200-word windows + brute-force MiniLM in numpy), plus a chunk
size/overlap sweep and a fusion-weight sweep. The defaults in core/rag/chunkers/base.py and core/config.py are
the ones this bench measured best.

    python bench/retrieval_quality.py [--sets scenario,bashref] [--configs 128/32,200/32,...] [--no-sweep]
                                      [--cache DIR] [--record] [--json FILE]

Sets:
- scenario: sample_docs/knowledge (20 documents, 5 formats) + the scenario questions with an evidence passage.
- bashref: the GNU Bash Reference Manual from the Debian package `bash-doc` (built by
  scripts/build_manual_corpus.py into the bench's data folder) + tests/data/bashref/questions.jsonl.
  Without the package the set is skipped with a note (under CI=1 the bench fails instead).

Everything goes through the product: core.rag.ingest (load, chunk, embed, store in LanceDB) and
core.rag.retriever (the same candidate lists and fusion `retrieve` uses), in a temporary data folder.
--cache DIR keeps chunk vectors (keyed by sha256 of the text) between runs: the sweep then embeds only texts it
has not seen. Cached vectors are those the same model computed, so the scores do not change.
--record writes the measurements to core/rag/retrieval_quality.json (the evaluation tab's chart reads it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("UNSLOTH_AUTO_INSTALL", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LANCEDB_LOG", "error")

SCENARIO_DOCS = ROOT / "sample_docs" / "knowledge"
SCENARIO_QUESTIONS = ROOT / "sample_docs" / "eval" / "questions.jsonl"
BASHREF_QUESTIONS = ROOT / "tests" / "data" / "bashref" / "questions.jsonl"
RECORD = ROOT / "core" / "rag" / "retrieval_quality.json"
NAIVE_WORDS = 200
WEIGHTS = [round(0.1 * i, 1) for i in range(11)]


class VectorCache:
    """Chunk vectors by sha256(text), wrapped around the shared embedder's batch encode (queries pass through)."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.vecs: dict[str, object] = {}
        self.hits = self.misses = 0
        if folder and (folder / "vectors.npz").is_file():
            import numpy as np
            data = np.load(folder / "vectors.npz")
            self.vecs = {k: data[k] for k in data.files}

    def install(self, emb) -> None:
        import numpy as np
        raw = emb.encode

        def encode(texts, *a, **kw):
            texts = list(texts)
            if len(texts) <= 2:
                return raw(texts, *a, **kw)
            keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
            todo = [i for i, k in enumerate(keys) if k not in self.vecs]
            self.hits += len(texts) - len(todo)
            self.misses += len(todo)
            if todo:
                new = raw([texts[i] for i in todo], *a, **kw)
                for i, v in zip(todo, new):
                    self.vecs[keys[i]] = np.asarray(v, dtype=np.float32)
            return np.stack([self.vecs[k] for k in keys]).astype(np.float32)

        emb.encode = encode

    def save(self) -> None:
        if self.folder:
            import numpy as np
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / "vectors.tmp.npz"
            np.savez(tmp, **self.vecs)
            os.replace(tmp, self.folder / "vectors.npz")


def question_sets(names: list[str], data: Path) -> dict[str, tuple[Path, list[dict]]]:
    from core.rag.evaluate import load_questions
    out: dict[str, tuple[Path, list[dict]]] = {}
    for name in names:
        if name == "scenario":
            out[name] = (SCENARIO_DOCS, load_questions(SCENARIO_QUESTIONS))
        elif name == "bashref":
            sys.path.insert(0, str(ROOT / "scripts"))
            import build_manual_corpus as bmc
            try:
                corpus = bmc.build(data / "corpora" / "bashref")
            except bmc.CorpusError as exc:
                if os.environ.get("CI"):
                    raise SystemExit(f"bashref set: {exc}")
                print(f"note: bashref set skipped: {exc}", file=sys.stderr)
                continue
            out[name] = (corpus, load_questions(BASHREF_QUESTIONS))
        else:
            raise SystemExit(f"unknown set {name!r}: use scenario, bashref")
    return out


def ingest(set_name: str, corpus: Path, chunker: str, size: int, overlap: int) -> tuple[str, dict]:
    from core.rag import store
    from core.rag.ingest import ingest_paths
    col = f"{set_name}-{chunker}-{size}-{overlap}"
    t0 = time.perf_counter()
    res = ingest_paths([corpus], col, chunker=chunker, chunk_size=size, overlap=overlap)
    bad = [r for r in res if not r.ok]
    if bad:
        raise SystemExit(f"ingest of {corpus} failed for {len(bad)} files: {bad[0].error}")
    cfg = store.get_active(col)
    tokens = store.open_table(cfg.table_name).search().select(["tokens"]).limit(None).to_arrow().column("tokens").to_pylist()
    return col, {"chunks": len(tokens), "median_tokens": statistics.median(tokens) if tokens else 0,
                 "seconds": round(time.perf_counter() - t0, 1), "files": len(res)}


def candidate_lists(col: str, qs: list[dict]) -> list:
    from core.rag.evaluate import EVAL_K
    from core.rag.retriever import candidates
    return [candidates(q["question"], col, ("hybrid",), EVAL_K) for q in qs]


def scores(cands: list, qs: list[dict], pick) -> dict:
    from core.rag.evaluate import EVAL_K, ModeScore, rank_of
    ranks = [rank_of(pick(c.lists), q, EVAL_K) for c, q in zip(cands, qs)]
    s = ModeScore.from_ranks("", ranks)
    return {"hit@1": round(s.hit_at_1, 4), "hit@5": round(s.hit_at_5, 4), "mrr@10": round(s.mrr, 4), "ranks": ranks}


def mode_pickers(fusion=None) -> dict:
    from core.rag.evaluate import EVAL_K
    from core.rag.retriever import FusionConfig, fuse, fusion_config
    default = fusion or fusion_config()
    return {
        "BM25 only": lambda L: L.get("fts", [])[:EVAL_K],
        "dense only": lambda L: L.get("vector", [])[:EVAL_K],
        f"default ({default.method})": lambda L: fuse(L, EVAL_K, default),
        "plain RRF": lambda L: fuse(L, EVAL_K, FusionConfig("rrf")),
    }


def naive_baseline(corpus: Path, qs: list[dict], emb) -> dict:
    """Fixed 200-word windows of each loaded file, brute-force cosine in numpy with the same MiniLM."""
    from types import SimpleNamespace

    import numpy as np

    from core.rag.evaluate import EVAL_K, ModeScore, rank_of
    from core.rag.loaders import expand_paths, load_path
    wins = []
    for f, doc_id in expand_paths([corpus]):
        d = load_path(f, doc_id=doc_id)
        words = d.text.split()
        for i in range(0, len(words), NAIVE_WORDS):
            wins.append(SimpleNamespace(text=" ".join(words[i:i + NAIVE_WORDS]), source=d.display_name, doc_id=doc_id))
    mat = emb.encode([w.text for w in wins])
    ranks = []
    for q in qs:
        qv = emb.encode([q["question"]])[0]
        order = np.argsort(-(mat @ qv))[:EVAL_K]
        ranks.append(rank_of([wins[i] for i in order], q, EVAL_K))
    s = ModeScore.from_ranks("naive", ranks)
    return {"hit@1": round(s.hit_at_1, 4), "hit@5": round(s.hit_at_5, 4), "mrr@10": round(s.mrr, 4), "ranks": ranks,
            "windows": len(wins)}


def fusion_grid(cands: list, qs: list[dict]) -> list[dict]:
    from core.rag.retriever import FusionConfig
    from core.rag.evaluate import EVAL_K
    from core.rag.retriever import fuse
    rows = []
    for method, rrf_k, norm in (("linear", 60, "max"), ("linear", 60, "minmax"), ("weighted-rrf", 60, "max"),
                                ("weighted-rrf", 10, "max")):
        for w in WEIGHTS:
            f = FusionConfig(method, w, rrf_k, norm)
            s = scores(cands, qs, lambda L, f=f: fuse(L, EVAL_K, f))
            rows.append({"method": method, "rrf_k": rrf_k, "norm": norm, "weight": w, "hit@1": s["hit@1"],
                         "hit@5": s["hit@5"], "mrr@10": s["mrr@10"]})
    return rows


def fmt_row(label: str, s: dict) -> str:
    return f"  {label:28} {s['hit@1']:6.3f} {s['hit@5']:6.3f} {s['mrr@10']:7.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="scenario,bashref")
    ap.add_argument("--chunker", default=None, help="chunker of the main table (default: the product's)")
    ap.add_argument("--size", type=int, default=None, help="chunk size of the main table (default: the product's)")
    ap.add_argument("--overlap", type=int, default=None, help="overlap of the main table (default: the product's)")
    ap.add_argument("--configs", default="128/32,200/0,200/32,200/64,254/32,254/64",
                    help="size/overlap pairs of the chunk sweep")
    ap.add_argument("--no-sweep", action="store_true", help="only the main table and the fusion sweep")
    ap.add_argument("--cache", type=Path, default=None, help="keep chunk vectors here between runs")
    ap.add_argument("--record", action="store_true", help=f"write the measurements to {RECORD.relative_to(ROOT)}")
    ap.add_argument("--json", type=Path, default=None, help="also write the full results (with ranks) here")
    args = ap.parse_args()

    load0 = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="retrieval-quality-"))
    os.environ["WORKBENCH_DATA"] = str(tmp / "data")
    from core.rag.chunkers import DEFAULT_CHUNKER, DEFAULT_OVERLAP, DEFAULT_SIZE
    from core.rag.embedders import get_embedder
    from core.rag.retriever import fusion_config

    emb = get_embedder()
    cache = VectorCache(args.cache)
    cache.install(emb)
    chunker = args.chunker or DEFAULT_CHUNKER
    size = args.size or DEFAULT_SIZE
    overlap = DEFAULT_OVERLAP if args.overlap is None else args.overlap
    fusion = fusion_config()
    sets = question_sets([s.strip() for s in args.sets.split(",") if s.strip()], tmp / "data")
    out: dict = {"measured": time.strftime("%Y-%m-%d"), "load_average_start": round(load0, 2),
                 "defaults": {"chunker": chunker, "chunk_size": size, "overlap": overlap, "fusion": fusion.method,
                              "fusion_weight": fusion.weight, "fusion_norm": fusion.norm, "rrf_k": fusion.rrf_k,
                              "describe": fusion.describe()},
                 "sets": {}, "main": {}, "fusion_grid": {}, "sweep": []}
    t_start = time.perf_counter()
    for name, (corpus, qs) in sets.items():
        col, info = ingest(name, corpus, chunker, size, overlap)
        cands = candidate_lists(col, qs)
        res = {label: scores(cands, qs, pick) for label, pick in mode_pickers(fusion).items()}
        res["naive 200-word windows"] = naive_baseline(corpus, qs, emb)
        out["sets"][name] = {"questions": len(qs), "files": info["files"], "chunks": info["chunks"],
                             "median_tokens": info["median_tokens"], "ingest_seconds": info["seconds"]}
        out["main"][name] = res
        out["fusion_grid"][name] = fusion_grid(cands, qs)
        print(f"\n{name}: {len(qs)} questions, {info['files']} files -> {info['chunks']} chunks "
              f"(median {info['median_tokens']} tokens), {chunker} {size}/{overlap}, hybrid = {fusion.describe()}")
        print(f"  {'mode':28} {'hit@1':>6} {'hit@5':>6} {'MRR@10':>7}")
        for label, s in res.items():
            print(fmt_row(label, s))
        cache.save()

    if len(sets):
        print("\nfusion sweep (vector weight; hit@1 / MRR@10 per set, and their mean over the sets):")
        names = list(sets)
        print(f"  {'fusion':22} {'w':>4} " + " ".join(f"{n[:10]:>15}" for n in names) + f" {'mean':>15}")
        grid = out["fusion_grid"]
        for i, row in enumerate(grid[names[0]]):
            cells = [grid[n][i] for n in names]
            h1 = statistics.mean(c["hit@1"] for c in cells)
            mrr = statistics.mean(c["mrr@10"] for c in cells)
            label = row["method"] + (f" k={row['rrf_k']}" if row["method"] != "linear" else f" {row['norm']}")
            print(f"  {label:22} {row['weight']:4.1f} " + " ".join(f"{c['hit@1']:.3f} / {c['mrr@10']:.3f}" for c in cells)
                  + f" {h1:.3f} / {mrr:.3f}")

    if not args.no_sweep:
        pairs = [tuple(int(x) for x in c.split("/")) for c in args.configs.split(",") if c.strip()]
        print(f"\nchunk sweep ({chunker}; hybrid = {fusion.describe()}): hit@1 / MRR@10")
        print(f"  {'size/overlap':13} " + " ".join(f"{n:>24}" for n in sets))
        for sz, ov in pairs:
            cells = []
            for name, (corpus, qs) in sets.items():
                col, info = ingest(name, corpus, chunker, sz, ov)
                cands = candidate_lists(col, qs)
                picks = mode_pickers(fusion)
                row = {"set": name, "chunker": chunker, "size": sz, "overlap": ov, "chunks": info["chunks"],
                       "median_tokens": info["median_tokens"]}
                for label, key in ((f"default ({fusion.method})", "hybrid"), ("dense only", "vector"),
                                   ("BM25 only", "fts")):
                    s = scores(cands, qs, picks[label])
                    row[key] = {k: v for k, v in s.items() if k != "ranks"}
                out["sweep"].append(row)
                cells.append(f"{row['hybrid']['hit@1']:.3f} / {row['hybrid']['mrr@10']:.3f} ({info['chunks']:4d} ch)")
                cache.save()
            print(f"  {sz:4d}/{ov:<8d} " + " ".join(f"{c:>24}" for c in cells), flush=True)

    out["seconds"] = round(time.perf_counter() - t_start, 1)
    out["load_average_end"] = round(os.getloadavg()[0], 2)
    if args.cache:
        print(f"\nvector cache: {cache.hits} reused, {cache.misses} embedded", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    if args.record:
        from core.fileio import write_json_atomic
        slim = json.loads(json.dumps(out))
        for res in slim["main"].values():
            for s in res.values():
                s.pop("ranks", None)
        write_json_atomic(RECORD, slim)
        print(f"recorded -> {RECORD.relative_to(ROOT)}")
    print(f"\n{out['seconds']:.0f} s, load average {load0:.1f} -> {out['load_average_end']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
