"""core.limits: documents are parsed in a child process with a per-file deadline and memory limit; a file that
breaks either is a typed per-file error and the next file is parsed by a fresh child."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from core import limits
from core.errors import CorruptDocument, EmptyDocument, ParseMemoryExceeded, ParseTimeout
from core.rag.loaders import EncryptedDocument

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "sample_docs" / "knowledge" / "calendar-sync.md"
BAD = ROOT / "tests" / "fixtures" / "bad"


def test_sandbox_returns_the_same_document_as_in_process():
    from core.rag import loaders
    with limits.ParseSandbox(timeout_s=60, memory_mb=1024) as box:
        a = box.load_path(GOOD)
        b = box.load_bytes(GOOD.read_bytes(), "upload (1).md", doc_id="upload_1.md")
    ref = loaders.load_path(GOOD)
    assert (a.doc_id, a.text, a.content_hash, a.kind) == (ref.doc_id, ref.text, ref.content_hash, ref.kind)
    assert b.doc_id == "upload_1.md" and b.display_name == "upload (1).md" and b.text == ref.text


def test_typed_errors_cross_the_process_boundary():
    with limits.ParseSandbox(timeout_s=60, memory_mb=1024) as box:
        with pytest.raises(EncryptedDocument, match="password"):
            box.load_path(BAD / "encrypted.pdf")
        with pytest.raises(CorruptDocument):
            box.load_path(BAD / "corrupt.pdf")
        with pytest.raises(EmptyDocument):
            box.load_path(BAD / "empty.txt")
        assert box.load_path(GOOD).text          # the same child keeps serving
        assert box.restarts == 0


def test_a_slow_file_times_out_and_the_next_file_is_read(tmp_path):
    slow = tmp_path / "slow.html"
    slow.write_text("<html><body>" + "<p>x y</p>" * 600_000 + "</body></html>")   # ~6 MB, many seconds to parse
    with limits.ParseSandbox(timeout_s=1.5, memory_mb=1024) as box:
        t0 = time.monotonic()
        with pytest.raises(ParseTimeout, match="longer than 1.5 s") as exc:
            box.load_path(slow)
        assert time.monotonic() - t0 < 10
        assert "WORKBENCH_PARSE_TIMEOUT_S" in str(exc.value)
        assert box.load_path(GOOD).text and box.restarts == 1


def test_a_file_over_the_memory_limit_fails_alone(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text(("hello world " * 8 + "\n") * 95_000)        # 9 MB of text: ~150 MB to clean up
    with limits.ParseSandbox(timeout_s=60, memory_mb=100) as box:
        with pytest.raises(ParseMemoryExceeded, match="100 MB") as exc:
            box.load_path(big, max_mb=60)
        assert "WORKBENCH_PARSE_MEMORY_MB" in str(exc.value)
        assert box.load_path(GOOD).text                      # a fresh child reads the next file
    with limits.ParseSandbox(timeout_s=60, memory_mb=1024) as box:
        assert len(box.load_path(big, max_mb=60).text) > 9_000_000   # with room, the same file is fine


def test_active_sandbox_is_used_by_module_loaders_and_can_be_switched_off(data_dir, monkeypatch):
    with limits.active_sandbox() as box:
        assert box is not None
        with limits.active_sandbox() as inner:
            assert inner is box                      # nested batches share one child
        assert limits.load_path(GOOD).text and box._proc is not None
    assert box._proc is None                         # closed at the end of the batch
    monkeypatch.setenv("WORKBENCH_PARSE_TIMEOUT_S", "0")
    with limits.active_sandbox() as box:
        assert box is None and limits.load_path(GOOD).text
