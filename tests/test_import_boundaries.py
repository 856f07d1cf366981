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
# Streamlit's emoji catalog (one huge regex, ~0.1-0.2 s) loads when a page icon is an emoji: ui/nav.py uses
# Material names so no first render pays for it.
SLOW_STREAMLIT = ["streamlit.emojis"]

PROBE = """
import json, sys, time
from streamlit.testing.v1 import AppTest
t0 = time.perf_counter()
at = AppTest.from_file(sys.argv[1], default_timeout=60).run()
elapsed = time.perf_counter() - t0
wanted = set(json.loads(sys.argv[2]))
heavy = sorted({m.split('.')[0] for m in sys.modules} & wanted | set(sys.modules) & wanted)
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
    out = render_in_fresh_process("app.py", HEAVY + SLOW_STREAMLIT, data_dir)
    assert out["exceptions"] == []
    assert out["heavy"] == [], f"app.py imported {out['heavy']} on first render"
    assert out["seconds"] < 15


PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "app_pages").glob("*.py"))


def stop_background_jobs() -> None:
    """A first render may start a background job (the Knowledge Base page indexes the sample docs on first
    visit); end it so no worker outlives the test and competes with the next one for the CPU."""
    from core.rag import jobs
    for job in jobs.active_jobs():
        jobs.cancel(job.id)


@pytest.mark.parametrize("page", PAGES)
def test_page_first_render_imports_no_torch(page, data_dir):
    try:
        out = render_in_fresh_process(page, HEAVY_FOR_PAGES + SLOW_STREAMLIT, data_dir)
    finally:
        stop_background_jobs()
    assert out["heavy"] == [], f"{page} imported {out['heavy']} on first render: import them lazily"


# ---- core/ never imports streamlit; no import cycles inside core ------------------------------------------------
def core_modules() -> dict[str, Path]:
    """Every module of core/ by dotted name (packages by their own name), except the `python -m core` entry."""
    out = {}
    for p in sorted((ROOT / "core").rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(tree, module_level_only: bool):
    """(dotted name, lineno) of every import; with module_level_only, not those inside functions or classes or
    under `if TYPE_CHECKING:` (a lazy import cannot make a cycle at import time)."""
    import ast

    def walk(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    yield a.name, node.lineno, None
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                yield node.module, node.lineno, [a.name for a in node.names]
            elif module_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            elif (module_level_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)):
                yield from walk(node.orelse)
            else:
                yield from walk(ast.iter_child_nodes(node))

    yield from walk(tree.body)


def test_core_never_imports_streamlit():
    import ast

    offenders = []
    for name, path in core_modules().items():
        for mod, line, _ in _imports(ast.parse(path.read_text(encoding="utf-8")), module_level_only=False):
            if mod.split(".")[0] == "streamlit":
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == [], f"core/ must stay usable without Streamlit: {offenders}"
    # and importing every core module in a fresh interpreter pulls in neither streamlit nor the ML stack
    probe = ("import importlib, json, sys\n"
             "for m in json.loads(sys.argv[1]): importlib.import_module(m)\n"
             "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules} & set(json.loads(sys.argv[2])))))")
    p = subprocess.run([sys.executable, "-c", probe, json.dumps(list(core_modules())),
                        json.dumps(["streamlit", *HEAVY])], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == []


def test_no_import_cycles_inside_core():
    """Module-level imports between core modules form no cycle (lazy imports inside functions are fine)."""
    import ast

    mods = core_modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for mod, _, names in _imports(ast.parse(path.read_text(encoding="utf-8")), module_level_only=True):
            targets = [f"{mod}.{n}" for n in names or [] if f"{mod}.{n}" in mods] or [mod]
            graph[name] |= {t for t in targets if t in mods and t != name}
    # Tarjan's strongly connected components: any component of 2+ modules is a cycle
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == [], f"import cycles: {cycles}"
