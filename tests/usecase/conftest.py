"""Fixtures of the use-case tests: a small folder of documents about a fictional product written here, a data
folder with a use case `lumen` whose documents are really ingested (LanceDB + the packaged embedder)."""
from __future__ import annotations

import os

import pytest

from tests.usecase.uc_helpers import write_docs


@pytest.fixture(scope="module")
def lumen(tmp_path_factory):
    """(data dir, use case) with the four documents ingested into collection `lumen`. Module-scoped; tests that
    change the use case work on a copy (`copy_of`)."""
    base = tmp_path_factory.mktemp("lumen")
    docs = write_docs(base / "docs")
    data = base / "data"
    old = os.environ.get("WORKBENCH_DATA")
    os.environ["WORKBENCH_DATA"] = str(data)
    from core.rag.api import ingest_paths
    from core.usecase import workspace

    uc = workspace.create_usecase("lumen", title="Lumen support", product="Lumen",
                                  system_prompt="You are the Lumen support assistant.", docs=[docs])
    res = ingest_paths([uc.file("knowledge")], uc.collection)
    assert all(r.ok for r in res), [r.error for r in res]
    try:
        yield data, uc
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_DATA", None)
        else:
            os.environ["WORKBENCH_DATA"] = old


_COPIES = [0]


@pytest.fixture
def copy_of(lumen):
    """A fresh editable copy of the lumen use case (same collection) for a test that changes it."""
    from core.usecase import workspace

    _COPIES[0] += 1
    return workspace.copy_usecase("lumen", f"lumen_t{_COPIES[0]}")
