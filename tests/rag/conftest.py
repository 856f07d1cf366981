"""Fixtures for the RAG tests: the real packaged embedder, real LanceDB folders, a small ingested collection."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "sample_docs" / "knowledge"
BAD = ROOT / "tests" / "fixtures" / "bad"
SMALL_DOCS = ["plans-and-limits.md", "error-codes.txt", "changelog.html", "pricing-sheet-2024.pdf",
              "onboarding-checklist.docx"]


@pytest.fixture(scope="session")
def embedder():
    from core.rag.api import get_embedder
    return get_embedder()


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """A folder with five sample documents, one of each format."""
    d = tmp_path_factory.mktemp("small-corpus")
    for name in SMALL_DOCS:
        shutil.copy(KNOWLEDGE / name, d / name)
    return d


@pytest.fixture(scope="module")
def kb(tmp_path_factory, small_corpus, embedder):
    """A data folder with collection "kb" holding the small corpus; yields (data_dir, ingest results).

    Module-scoped to keep the suite fast; tests that change it use their own collection name."""
    d = tmp_path_factory.mktemp("kb-data")
    old = os.environ.get("WORKBENCH_DATA")
    os.environ["WORKBENCH_DATA"] = str(d)
    from core.rag.api import ingest_paths
    results = ingest_paths([small_corpus], "kb")
    try:
        yield d, results
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_DATA", None)
        else:
            os.environ["WORKBENCH_DATA"] = old
