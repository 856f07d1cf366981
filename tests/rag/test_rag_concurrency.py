"""Two processes ingesting and replacing the same documents end with exactly one copy of each chunk."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.rag import api, store

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from core.rag.api import ingest_paths
    folder, variant = Path(sys.argv[1]), sys.argv[2]
    for round_ in range(3):
        # the other process keeps replacing the same documents with its variant, so each round re-ingests
        res = ingest_paths(sorted(folder.glob("*.md")), "race")
        assert all(r.ok for r in res), [r.error for r in res]
    print("ok")
""")


@pytest.mark.slow
def test_two_processes_replace_the_same_documents(data_dir, tmp_path):
    folders = []
    for variant in ("a", "b"):
        d = tmp_path / variant
        d.mkdir()
        for i in range(3):
            # same document names in both folders, different content: the processes keep replacing each other
            body = "\n\n".join(f"Paragraph {j} of document {i}, version {variant}. " * 6 for j in range(4))
            (d / f"doc{i}.md").write_text(f"# Doc {i}\n\n{body}\n", encoding="utf-8")
        folders.append(d)
    env = dict(os.environ, WORKBENCH_DATA=str(data_dir), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(d), d.name], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for d in folders]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "ok" in out, err[-2000:]
    cfg = store.get_active("race")
    rows = store.open_table(cfg.table_name).search().select(["id", "doc_id", "text", "doc_hash"]).limit(None).to_arrow().to_pylist()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate chunk rows"
    # each document holds exactly one version (a or b), never a mix or a double copy
    for doc in ("doc0.md", "doc1.md", "doc2.md"):
        mine = [r for r in rows if r["doc_id"] == doc]
        assert mine
        assert len({r["doc_hash"] for r in mine}) == 1
        variants = {("version a" in r["text"], "version b" in r["text"]) for r in mine}
        assert len(variants) == 1
        expected = [d for d in api.document_chunks("race", doc)]
        assert [c["position"] for c in expected] == list(range(len(expected)))
