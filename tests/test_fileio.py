"""core.fileio atomic writers: the old content or the new, never half; no temp file left; labels.json and
adapter.json go through them."""
from __future__ import annotations

import json

import pytest

from core import fileio


def test_atomic_writer_replaces_or_leaves_untouched(tmp_path):
    p = tmp_path / "labels.json"
    fileio.write_text_atomic(p, '{"baseline": 1}\n')
    with pytest.raises(RuntimeError):
        with fileio.atomic_writer(p) as fh:
            fh.write('{"baseline": ')
            raise RuntimeError("crash mid-write")
    assert json.loads(p.read_text()) == {"baseline": 1}
    assert [x.name for x in tmp_path.iterdir()] == ["labels.json"]


def test_read_json_tolerates_deep_nesting(tmp_path):
    p = tmp_path / "status.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    assert fileio.read_json(p, default="bad") == "bad"


def test_labels_json_is_written_through_the_atomic_writer(data_dir, monkeypatch):
    from core.prompts import library
    from core.prompts.spec import PromptSpec

    calls = []
    real = fileio.write_text_atomic
    monkeypatch.setattr(library, "write_text_atomic", lambda path, text: (calls.append(path), real(path, text)))
    lib = library.PromptLibrary()
    v = lib.save(PromptSpec(name="atomic", template="{question}"), message="first")
    lib.label("atomic", v, "baseline")
    assert [c.name for c in calls] == ["labels.json"]
    assert lib.labels_of("atomic") == {"baseline": v}


def test_adapter_json_is_written_atomically(data_dir, tmp_path, monkeypatch):
    from core.llm import models

    gguf = tmp_path / "lora.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    seen = []
    real = fileio.write_json_atomic
    monkeypatch.setattr(models, "write_json_atomic", lambda path, data, indent=1: (seen.append(path), real(path, data, indent)))
    info = models.register_adapter("style-1", gguf, "smollm2-135m")
    assert [p.name for p in seen] == ["adapter.json"]
    meta = json.loads((data_dir / "adapters" / "style-1" / "adapter.json").read_text())
    assert meta["sha256"] == info.sha256
    assert sorted(p.name for p in (data_dir / "adapters" / "style-1").iterdir()) == ["adapter.gguf", "adapter.json"]
