"""Opening the app must stay light: rendering the home page (and each page's first render) in a fresh process
must not import the heavy ML stack. Each check runs in its own interpreter so nothing leaks between tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["torch", "sentence_transformers", "transformers", "llama_cpp", "unsloth", "lancedb"]
# A page may open LanceDB or llama.cpp to show its content; none may pull in torch & co. just by opening.
HEAVY_FOR_PAGES = ["torch", "sentence_transformers", "transformers", "unsloth"]

PROBE = """
import json, sys, time
from streamlit.testing.v1 import AppTest
t0 = time.perf_counter()
at = AppTest.from_file(sys.argv[1], default_timeout=60).run()
elapsed = time.perf_counter() - t0
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"heavy": heavy, "exceptions": [str(e.value) for e in at.exception], "seconds": elapsed}))
"""


def render_in_fresh_process(script: str, heavy: list[str], data_dir: Path) -> dict:
    env = dict(os.environ, WORKBENCH_DATA=str(data_dir), OLLAMA_HOST="127.0.0.1:9")   # port 9: nobody home
    env.pop("OPENAI_BASE_URL", None)
    p = subprocess.run([sys.executable, "-c", PROBE, script, json.dumps(heavy)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_home_page_render_imports_nothing_heavy(data_dir):
    out = render_in_fresh_process("app.py", HEAVY, data_dir)
    assert out["exceptions"] == []
    assert out["heavy"] == [], f"app.py imported {out['heavy']} on first render"
    assert out["seconds"] < 15


PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))


def stop_background_jobs() -> None:
    """A first render may start a background job (the Knowledge Base page indexes the sample docs on first
    visit); end it so no worker outlives the test and competes with the next one for the CPU."""
    from core.rag import jobs
    for job in jobs.active_jobs():
        jobs.cancel(job.id)


@pytest.mark.parametrize("page", PAGES)
def test_page_first_render_imports_no_torch(page, data_dir):
    try:
        out = render_in_fresh_process(page, HEAVY_FOR_PAGES, data_dir)
    finally:
        stop_background_jobs()
    assert out["heavy"] == [], f"{page} imported {out['heavy']} on first render: import them lazily"
