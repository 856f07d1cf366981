"""Cold start of the app: from `streamlit run` to the first rendered page, for the home page and every page, next to
a minimal three-line Streamlit app started the same way on the same machine, in one run.

    .venv/bin/python bench/cold_start.py [--rounds 3] [--pages Prompt_Lab,Knowledge_Base] [--fresh-data]
                                         [--importtime]

What is timed, per target and round: a new `streamlit run <script>` process is started (the clock starts just
before the process does), its health endpoint is polled every 20 ms, then Debian chromium (through playwright,
launched once before any timing, a new browser context per round) opens the page URL and waits until the page
has a rendered heading or element in its main block AND Streamlit reports its script as finished
(`data-test-script-state="notRunning"`). Rounds are interleaved (minimal, home, page 1, ... then again) after one
untimed warm-up round, so load drift on a shared machine hits every target alike. Reported: the median per target
(with min-max), the split "server up" / "first run after connect", and the ratio to the minimal app
(target <= 1.3x).

The data folder is prepared once, before timing: the scenario's sample collection is ingested by a CLI call, so
the Knowledge Base page does not start its first-visit background ingest on every round (--fresh-data measures
that first visit instead, with a fresh empty data folder per round; the background job it starts is cancelled
after the measurement).

--importtime also runs each page's first render once under `python -X importtime` (AppTest, no browser) and prints
the packages that cost the most import time (counted where project code first imports them), then once under
cProfile for the project functions with the most cumulative time: the evidence for what to defer or cache.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MINIMAL_APP = 'import streamlit as st\nst.title("Minimal app")\nst.write("Hello from a three-line Streamlit app.")\n'
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
# "rendered": some element of the page's own output exists in the main block, and the first script run ended
RENDERED_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const main = document.querySelector('[data-testid="stMain"]') || document;
  return !!main.querySelector('h1, h2, h3, [data-testid="stMarkdownContainer"], [data-testid="stElementContainer"]');
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(data: Path) -> dict:
    env = dict(os.environ, WORKBENCH_DATA=str(data), UNSLOTH_AUTO_INSTALL="0", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", LANCEDB_LOG="error", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1",
               OLLAMA_HOST=os.environ.get("OLLAMA_HOST", "127.0.0.1:9"))
    return env


def page_targets(selected: list[str] | None) -> list[tuple[str, str]]:
    """(label, url path) for the home page and each file under app_pages/ ("3_Fine_Tune.py" -> "Fine_Tune")."""
    out = [("home (app.py)", "")]
    for p in sorted((ROOT / "app_pages").glob("*.py")):
        path = re.sub(r"^\d+_", "", p.stem)
        if not selected or path in selected:
            out.append((path, path))
    return out


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cancel_jobs(data: Path) -> None:
    """End background jobs a first visit started (the Knowledge Base page indexes the sample docs), through the
    project's own job API in a child process, so no worker competes with the next round for the CPU."""
    code = ("import importlib\n"
            "for mod in ('core.rag.jobs',):\n"
            "    try:\n"
            "        jobs = importlib.import_module(mod)\n"
            "    except ImportError:\n"
            "        continue\n"
            "    for j in jobs.active_jobs():\n"
            "        jobs.cancel(j.id)\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_for(data), capture_output=True, timeout=120)


def measure(browser, script: Path, url_path: str, data: Path, log: Path, timeout: float = 120) -> dict:
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log, "a") as lf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=script.parent, env=env_for(data), stdout=lf, stderr=subprocess.STDOUT)
        try:
            health = f"http://127.0.0.1:{port}/_stcore/health"
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log}")
                try:
                    with urllib.request.urlopen(health, timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.perf_counter() - t0 > timeout:
                    raise TimeoutError(f"{script.name} did not answer within {timeout} s")
                time.sleep(0.02)
            t_up = time.perf_counter()
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            try:
                page = ctx.new_page()
                page.goto(f"http://127.0.0.1:{port}/{url_path}", wait_until="commit")
                page.wait_for_function(RENDERED_JS, timeout=timeout * 1000, polling=20)
                t_done = time.perf_counter()
                exc = page.locator('[data-testid="stException"]').count()
            finally:
                ctx.close()
        finally:
            stop(proc)
    return {"total": t_done - t0, "server_up": t_up - t0, "first_run": t_done - t_up, "exceptions": exc}


def prepare_data(folder: Path) -> None:
    """The sample collection ingested once (a CLI call, so this process never imports torch)."""
    sys.path.insert(0, str(ROOT))
    try:
        from core.rag.api import sample_paths
        name, knowledge, _ = sample_paths()
    except Exception:  # noqa: BLE001 - fall back to the scenario's defaults
        name, knowledge = "support", ROOT / "sample_docs" / "knowledge"
    p = subprocess.run([sys.executable, "-m", "core", "ingest", str(knowledge), "--collection", name, "--json"],
                       cwd=ROOT, env=env_for(folder), capture_output=True, text=True, timeout=1800)
    if p.returncode not in (0, 1):
        raise SystemExit(f"preparing the data folder failed:\n{p.stderr[-2000:]}")


IMPORTTIME_PROBE = """
import sys
from streamlit.testing.v1 import AppTest
AppTest.from_file(sys.argv[1], default_timeout=120).run()
"""


PROFILE_PROBE = r"""
import json, os, pstats, sys, tempfile
from streamlit.testing.v1 import AppTest
script, root, top = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = tempfile.mktemp(suffix=".prof")
# AppTest runs the script on its own thread: profile inside that thread, through a wrapper script
lines = ["import cProfile, runpy, sys", f"sys.path.insert(0, {root!r})", "pr = cProfile.Profile()", "pr.enable()",
         "try:", f"    runpy.run_path({os.path.join(root, script)!r}, run_name='__main__')", "finally:",
         "    pr.disable()", f"    pr.dump_stats({out!r})"]
with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as w:
    w.write("\n".join(lines) + "\n")
AppTest.from_file(w.name, default_timeout=120).run()
st = pstats.Stats(out)
rows = []
for (fn, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
    if fn.startswith(root) and "/.venv/" not in fn and name != "<module>":
        rows.append((ct, f"{fn[len(root) + 1:]}:{line} {name}"))
rows.sort(reverse=True)
os.unlink(out)
os.unlink(w.name)
print(json.dumps(rows[:top]))
"""


def profile_report(script: str, data: Path, top: int = 6) -> str:
    """The project functions with the most cumulative time during one first render (cProfile, AppTest)."""
    import json
    p = subprocess.run([sys.executable, "-c", PROFILE_PROBE, script, str(ROOT), str(top)], cwd=ROOT,
                       env=env_for(data), capture_output=True, text=True, timeout=300)
    try:
        rows = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return "profile failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:200]
    return ", ".join(f"{name} {ct * 1000:.0f} ms" for ct, name in rows)


def importtime_report(script: str, data: Path, top: int = 10) -> str:
    """The heaviest imports (by package, counted where project code first imports them) of one first render."""
    from bench.importtime import format_top
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTTIME_PROBE, script], cwd=ROOT,
                       env=env_for(data), capture_output=True, text=True, timeout=300)
    return format_top(p.stderr, top)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pages", default="", help="comma-separated URL paths (default: every page)")
    ap.add_argument("--fresh-data", action="store_true", help="a fresh empty data folder per round (first visit)")
    ap.add_argument("--importtime", action="store_true", help="also list the heaviest imports of each first render")
    args = ap.parse_args()
    exe = shutil.which("chromium")
    if not exe:
        print("SKIPPED: chromium is not installed (`make browser`, or apt-get install -y chromium)", file=sys.stderr)
        return 0
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    minimal = tmp / "minimal" / "minimal_app.py"
    minimal.parent.mkdir()
    minimal.write_text(MINIMAL_APP, encoding="utf-8")
    shared = tmp / "data"
    shared.mkdir()
    if not args.fresh_data:
        t0 = time.perf_counter()
        prepare_data(shared)
        print(f"data folder prepared (sample collection ingested) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    targets = [("minimal 3-line app", minimal, "")] + [(label, ROOT / "app.py", path)
                                                       for label, path in page_targets(
                                                           [p for p in args.pages.split(",") if p] or None)]
    results: dict[str, list[dict]] = {t[0]: [] for t in targets}
    load0 = os.getloadavg()[0]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
            try:
                for rnd in range(args.rounds + 1):          # round 0: warm-up (page cache, .pyc), not counted
                    for label, script, path in targets:
                        data = shared
                        if args.fresh_data:
                            data = tmp / f"fresh-{rnd}-{len(results[label])}-{abs(hash(label))}"
                            data.mkdir()
                        r = measure(browser, script, path, data, tmp / "streamlit.log")
                        cancel_jobs(data)
                        if rnd:
                            results[label].append(r)
                        print(f"round {rnd}{' (warm-up)' if not rnd else ''} {label}: {r['total']:.2f} s",
                              file=sys.stderr)
            finally:
                browser.close()
        base = statistics.median(r["total"] for r in results["minimal 3-line app"])
        print(f"\nCold start: `streamlit run` -> first rendered page ({os.cpu_count()} cores, {args.rounds} "
              f"interleaved rounds after a warm-up, {'fresh' if args.fresh_data else 'prepared'} data folder, "
              f"load avg {load0:.1f} -> {os.getloadavg()[0]:.1f})\n")
        print("| target | median s | min-max s | server up s | first run after connect s | ratio vs minimal "
              "(target <= 1.3) |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, rs in results.items():
            tot = [r["total"] for r in rs]
            med = statistics.median(tot)
            flag = "" if label.startswith("minimal") else (" ok" if med / base <= 1.3 else " ABOVE")
            exc = " (exception shown!)" if any(r["exceptions"] for r in rs) else ""
            print(f"| {label}{exc} | {med:.2f} | {min(tot):.2f}-{max(tot):.2f} | "
                  f"{statistics.median(r['server_up'] for r in rs):.2f} | "
                  f"{statistics.median(r['first_run'] for r in rs):.2f} | {med / base:.2f}{flag} |")
        if args.importtime:
            print("\nHeaviest top-level imports during one first render (python -X importtime, AppTest, ms):")
            for label, script, path in targets:
                rel = "app.py" if not path else next(
                    (p.relative_to(ROOT).as_posix() for p in (ROOT / "app_pages").glob("*.py")
                     if re.sub(r"^\d+_", "", p.stem) == path), None)
                if label.startswith("minimal"):
                    rel = str(script)
                if not rel:
                    continue
                print(f"- {label}: {importtime_report(rel, shared)}")
                if not label.startswith("minimal"):
                    print(f"    slowest project functions (cumulative, cProfile): {profile_report(rel, shared)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
