"""core.rag.store.import_lancedb: lancedb imported with lance-namespace's REST-client validators built on first
use instead of at import; pydantic's own validate_call is put back, and a wrapped method still validates."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
import pydantic
before = pydantic.validate_call
from core.rag.store import import_lancedb
lancedb = import_lancedb()
out = {"restored": pydantic.validate_call is before, "same_module": import_lancedb() is lancedb,
       "connect": callable(lancedb.connect)}
from lance_namespace_urllib3_client.api.metadata_api import MetadataApi
api = MetadataApi(api_client=object())
try:                                   # a StrictStr id given an int: the real validator, built on this first call
    api.alter_table_alter_columns(12345, None)
    out["validated"] = False
except pydantic.ValidationError as exc:
    out["validated"] = "id" in str(exc)
print(json.dumps(out))
"""


def test_lancedb_import_shim_keeps_validation_and_restores_pydantic(tmp_path):
    p = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LANCEDB_LOG": "error",
                            "HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"restored": True, "same_module": True,
                                                               "connect": True, "validated": True}


def test_the_store_connects_through_the_shim(data_dir):
    from core.rag import store
    db = store.connect()
    assert store.connect() is db                                  # one connection per process and location
    assert store.table_names(db) == []                            # a fresh data folder: no tables yet
    assert "lancedb" in sys.modules
