"""core.rag.store.import_lancedb: lancedb imported with lance-namespace's REST-client validators built on first
use instead of at import, its models' schemas built on first use (pydantic's defer_build); pydantic's own
validate_call and BaseModel config are put back, and a wrapped method and a deferred model still validate;
pyarrow.dataset imported with pandas hidden from the importing thread only, pandas still there on first use."""
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
base_config = pydantic.BaseModel.model_config
from core.rag.store import import_lancedb
lancedb = import_lancedb()
out = {"restored": pydantic.validate_call is before, "same_module": import_lancedb() is lancedb,
       "connect": callable(lancedb.connect),
       "config_restored": pydantic.BaseModel.model_config is base_config
                          and "defer_build" not in pydantic.BaseModel.model_config}
from lance_namespace_urllib3_client.models import CreateNamespaceRequest
out["deferred"] = CreateNamespaceRequest.__pydantic_complete__ is False   # not built at import
try:                                   # built on first use, and validates as it would have
    CreateNamespaceRequest(id="not-a-list")
    out["model_validates"] = False
except pydantic.ValidationError:
    out["model_validates"] = CreateNamespaceRequest(id=["a", "b"]).id == ["a", "b"]
class Later(pydantic.BaseModel):       # a model defined after the import is built as usual
    x: int
out["later_built"] = Later.__pydantic_complete__ is True
out["no_pandas_yet"] = "pandas" not in sys.modules            # pyarrow.dataset was imported with pandas hidden
import lancedb.dependencies, tempfile
out["lancedb_sees_pandas"] = lancedb.dependencies._PANDAS_AVAILABLE is True
db = lancedb.connect(tempfile.mkdtemp())
tbl = db.create_table("t", data=[{"x": 1, "s": "a"}])
out["to_pandas"] = tbl.to_pandas()["s"].tolist() == ["a"]      # pandas imported on first use
import threading
from core.rag.store import _HidePandas
finder = _HidePandas()                 # hides pandas from the thread that made it only
seen = {}
def other():
    seen["other"] = finder.find_spec("pandas") is None
th = threading.Thread(target=other); th.start(); th.join()
try:
    finder.find_spec("pandas.core")
    out["scoped"] = False
except ModuleNotFoundError:
    out["scoped"] = seen["other"]
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
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {
        "restored": True, "same_module": True, "connect": True, "config_restored": True, "deferred": True,
        "model_validates": True, "later_built": True, "no_pandas_yet": True, "lancedb_sees_pandas": True,
        "to_pandas": True, "scoped": True, "validated": True}


def test_the_store_connects_through_the_shim(data_dir):
    from core.rag import store
    db = store.connect()
    assert store.connect() is db                                  # one connection per process and location
    assert store.table_names(db) == []                            # a fresh data folder: no tables yet
    assert "lancedb" in sys.modules
