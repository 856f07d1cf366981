"""The Streamlit server of this project (its .streamlit/config.toml) accepts the app's WebSocket only with a
localhost Host header: a DNS-rebinding page (Host: attacker's name) cannot drive the app."""
from __future__ import annotations

import base64
import os
import socket
import sys
from pathlib import Path

import pytest

from conftest import ROOT, free_port, run_server

APP = Path(__file__).parent / "apps" / "safe_stream_app.py"


def _upgrade_status(port: int, host_header: str) -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host_header}\r\n"
           "Sec-WebSocket-Protocol: streamlit\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req.encode())
        line = s.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(line.split()[1])


@pytest.mark.slow
def test_websocket_refused_for_a_foreign_host_header(tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.address",
           "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with run_server(cmd, f"http://127.0.0.1:{port}/_stcore/health", tmp_path / "streamlit.log"):
        assert _upgrade_status(port, f"127.0.0.1:{port}") == 101
        assert _upgrade_status(port, f"localhost:{port}") == 101
        assert _upgrade_status(port, f"rebind.evil.example:{port}") != 101
    assert (ROOT / ".streamlit" / "config.toml").read_text().count("allowedHosts") >= 1
