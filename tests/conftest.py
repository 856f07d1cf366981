"""Shared fixtures: an isolated data folder, a real Streamlit server, and Debian chromium through playwright."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # `from conftest import wait_script_idle` (import mode importlib)
os.environ.setdefault("UNSLOTH_AUTO_INSTALL", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCEDB_LOG", "error")
# Never let a real Ollama at the default port leak into tests unless a test asks for it.
os.environ.setdefault("WORKBENCH_TEST", "1")


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A fresh WORKBENCH_DATA folder for this test (core.config reads the env on every call)."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("WORKBENCH_DATA", str(d))
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as exc:  # noqa: BLE001 - retry until the deadline
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


@contextlib.contextmanager
def run_server(cmd: list[str], health_url: str, log_path: Path, env: dict | None = None, timeout: float = 90):
    """Start a local server process, wait until `health_url` answers, and always stop it afterwards."""
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(env or os.environ, PYTHONUNBUFFERED="1"), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_http(health_url, timeout=timeout)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def run_streamlit(data: Path):
    """A real `streamlit run app.py` on a free localhost port with `data` as its data folder. Yields the URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with run_server(cmd, f"http://127.0.0.1:{port}/_stcore/health", data / "streamlit.log",
                    env=dict(os.environ, WORKBENCH_DATA=str(data))):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory):
    """One app server shared by the browser tests (session-scoped). Yields (url, data_dir)."""
    data = tmp_path_factory.mktemp("browser-data")
    with run_streamlit(data) as url:
        yield url, data


@pytest.fixture
def fresh_streamlit_server(tmp_path_factory):
    """An app server of this test's own on an empty data folder: for tests of what a first visit does, which
    must not depend on what other browser tests left in the shared one. Yields (url, data_dir)."""
    data = tmp_path_factory.mktemp("browser-fresh-data")
    with run_streamlit(data) as url:
        yield url, data


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser():
    """Debian chromium driven by playwright; never downloads a browser. Missing chromium fails in CI."""
    exe = shutil.which("chromium")
    if not exe:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; `make test` installs it with apt-get")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()


def wait_script_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until Streamlit has finished its rerun (call only after the expected output started to appear)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


# ---- CI must not hide a broken machine: under CI, a skip is a failure unless the test needs a real Ollama server.
ALLOWED_SKIP_MARKERS = {"ollama_real"}
_disallowed_skips: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail") and not ALLOWED_SKIP_MARKERS & set(report.keywords):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _disallowed_skips.append((report.nodeid, reason))


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("CI") and _disallowed_skips:
        terminalreporter.section("skips not allowed in CI", sep="=", red=True)
        for nodeid, reason in _disallowed_skips:
            terminalreporter.line(f"SKIPPED {nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI") and _disallowed_skips and session.exitstatus == 0:
        session.exitstatus = 1
