"""The versioned prompt library on a real folder: save, history, diff, restore, labels, concurrency, corruption."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import yaml

from core.config import PROJECT_ROOT as ROOT, SAMPLE_DOCS
from core.errors import InvalidParams, PromptError
from core.prompts.library import MAX_SPEC_BYTES, PromptLibrary, PromptNotFound, parse_ref
from core.prompts.run import InvalidSchema
from core.prompts.spec import PromptSpec


def spec(name="qa", **kw) -> PromptSpec:
    base = dict(name=name, system="You are helpful.\nBe short.", template="Q: {question}\nA:")
    base.update(kw)
    return PromptSpec.from_dict(base)


@pytest.fixture
def lib(tmp_path) -> PromptLibrary:
    return PromptLibrary(tmp_path / "prompts")


def files(lib: PromptLibrary, name: str) -> list[str]:
    return sorted(p.name for p in (lib.root / name).iterdir())


def test_default_root_is_settings_prompts_dir(data_dir):
    assert PromptLibrary().root == data_dir / "prompts"


def test_save_creates_immutable_versions(lib):
    assert lib.save(spec(), "first") == 1
    first = (lib.root / "qa" / "v0001.yaml").read_text()
    assert lib.save(spec(system="Changed."), "second") == 2
    assert (lib.root / "qa" / "v0001.yaml").read_text() == first          # never rewritten
    vs = lib.versions("qa")
    assert [(v.version, v.message) for v in vs] == [(1, "first"), (2, "second")]
    assert vs[0].created and vs[0].path.name == "v0001.yaml"
    assert lib.get("qa").system == "Changed."
    assert lib.get("qa@1").system == "You are helpful.\nBe short."
    assert lib.resolve("qa@v1")[1] == 1 and lib.resolve("qa@latest")[1] == 2
    assert lib.names() == ["qa"]


def test_files_are_diff_friendly_yaml(lib):
    lib.save(spec(), "first")
    text = (lib.root / "qa" / "v0001.yaml").read_text()
    assert "system: |-\n  You are helpful.\n  Be short.\n" in text       # block scalar, one line per line
    data = yaml.safe_load(text)
    assert data["meta"]["message"] == "first"
    assert PromptSpec.from_dict({k: v for k, v in data.items() if k != "meta"}) == spec()


def test_diff_and_restore(lib):
    lib.save(spec(), "first")
    lib.save(spec(system="You are very helpful.\nBe short."), "second")
    d = lib.diff("qa@1", "qa@2")
    assert d.startswith("--- qa@1\n+++ qa@2\n")
    assert "-  You are helpful.\n" in d and "+  You are very helpful.\n" in d
    assert "  Be short.\n" in d and "meta" not in d
    assert lib.diff("qa@1", "qa@1") == ""
    v = lib.restore("qa@1", "back to the original")
    assert v == 3
    assert lib.get("qa@3") == lib.get("qa@1")
    assert lib.versions("qa")[-1].message == "back to the original"
    assert lib.restore("qa@2") == 4 and lib.versions("qa")[-1].message == "restore of qa@2"


def test_labels_move_and_resolve(lib):
    lib.save(spec(), "first")
    lib.save(spec(system="B"), "second")
    lib.label("qa", 1, "baseline")
    assert lib.resolve("qa@baseline")[1] == 1
    assert lib.versions("qa")[0].labels == ["baseline"]
    lib.label("qa", 2, "baseline")
    assert lib.resolve("qa@baseline")[1] == 2
    assert [v.labels for v in lib.versions("qa")] == [[], ["baseline"]]
    assert json.loads((lib.root / "qa" / "labels.json").read_text()) == {"baseline": 2}
    with pytest.raises(PromptNotFound, match="no version 9"):
        lib.label("qa", 9, "baseline")
    with pytest.raises(PromptError, match="reserved"):
        lib.label("qa", 1, "latest")
    with pytest.raises(PromptNotFound, match="no label 'prod'"):
        lib.get("qa@prod")


def test_unknown_refs_are_clear(lib):
    lib.save(spec(), "first")
    with pytest.raises(PromptNotFound, match="No prompt named 'nope'.*known: qa"):
        lib.get("nope")
    with pytest.raises(PromptNotFound, match="no version 7; versions: 1"):
        lib.get("qa@7")
    with pytest.raises(PromptError, match="add a version"):
        parse_ref("qa@")
    with pytest.raises(PromptError, match="must be 1-64"):
        parse_ref("../qa")


def test_two_concurrent_saves_never_overwrite(lib):
    """Threads racing on the same prompt: every save gets its own number and its own content."""
    lib.save(spec(), "seed")
    barrier = threading.Barrier(8)
    results: list[int] = []

    def save(k: int):
        barrier.wait()
        results.append(PromptLibrary(lib.root).save(spec(system=f"writer {k}"), f"writer {k}"))

    threads = [threading.Thread(target=save, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(2, 10))
    by_msg = {v.message: v.version for v in lib.versions("qa")}
    for k in range(8):
        assert lib.get(f"qa@{by_msg[f'writer {k}']}").system == f"writer {k}"
    assert not [f for f in files(lib, "qa") if f.startswith(".tmp")]


SAVE_SCRIPT = """
import sys, time
from pathlib import Path
from core.prompts.library import PromptLibrary
from core.prompts.spec import PromptSpec
root, k, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
spec = PromptSpec.from_dict({"name": "qa", "system": "proc " + k, "template": "{question}"})
time.sleep(max(0.0, start - time.time()))
print(PromptLibrary(Path(root)).save(spec, "proc " + k))
"""


def test_concurrent_saves_from_processes(lib):
    """Separate processes saving at the same instant: distinct numbers, nothing overwritten."""
    start = time.time() + 3
    procs = [subprocess.Popen([sys.executable, "-c", SAVE_SCRIPT, str(lib.root), str(k), str(start)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True) for k in range(3)]
    got = sorted(int(p.communicate(timeout=60)[0].strip()) for p in procs)
    assert got == [1, 2, 3]
    assert {lib.get(f"qa@{v}").system for v in got} == {"proc 0", "proc 1", "proc 2"}


def test_corrupt_file_is_reported_and_others_load(lib):
    lib.save(spec(), "first")
    lib.save(spec(system="second"), "second")
    lib.save(spec("other"), "other")
    (lib.root / "qa" / "v0003.yaml").write_text("name: [unclosed\n")
    (lib.root / "other" / "v0002.yaml").write_bytes(b"\xff\xfe binary")
    (lib.root / "other" / "labels.json").write_text("{not json")
    errs = lib.errors()
    assert {p.name for p, _ in errs} == {"v0003.yaml", "v0002.yaml", "labels.json"}
    assert all(msg for _, msg in errs)
    assert lib.names() == ["other", "qa"]
    assert [v.version for v in lib.versions("qa")] == [1, 2]
    assert lib.get("qa").system == "second"                 # latest readable version
    with pytest.raises(PromptError, match="unreadable"):
        lib.get("qa@3")
    assert lib.save(spec(system="fourth"), "after corruption") == 4   # never reuses the corrupt file's number


def test_invalid_spec_saves_nothing(lib):
    bad = [
        (spec(template="   "), PromptError, "empty user template"),
        (spec(template="Q: {question"), PromptError, "unbalanced"),
        (spec(json_schema={"type": "objekt"}), InvalidSchema, "JSON schema is invalid"),
        (spec(params={"temperature": 9}), InvalidParams, "temperature"),
    ]
    for s, exc, msg in bad:
        with pytest.raises(exc, match=msg):
            lib.save(s, "should not be saved")
    with pytest.raises(PromptError, match="message"):
        lib.save(spec(), "  ")
    assert lib.names() == []
    leftovers = [p for p in lib.root.rglob("*") if p.is_file()] if lib.root.exists() else []
    assert leftovers == []


def test_big_prompts(lib):
    """A 100 kB prompt is a valid spec (it fails later, at the context window); beyond the cap nothing is saved."""
    big = "lorem ipsum " * (100_000 // 12)
    assert lib.save(spec(system=big), "100 kB system prompt") == 1
    assert len(lib.get("qa@1").system) == len(big)
    huge = "x" * (MAX_SPEC_BYTES + 10)
    with pytest.raises(PromptError, match="kB"):
        lib.save(spec(system=huge), "too big")
    assert [v.version for v in lib.versions("qa")] == [1]


def test_ensure_starter_from_sample_docs(lib):
    added = lib.ensure_starter()
    expected = sorted(p.stem for p in (SAMPLE_DOCS / "prompts").glob("*.yaml"))
    assert expected, "sample_docs/prompts should ship starter prompts"
    assert sorted(added) == expected == lib.names()
    for name in expected:
        vs = lib.versions(name)
        assert [(v.version, v.message) for v in vs] == [(1, "starter")]
    assert lib.errors() == []
    assert lib.ensure_starter() == []                     # not empty any more: nothing copied again
    assert all(len(lib.versions(n)) == 1 for n in expected)


def test_ensure_starter_skips_a_bad_starter(lib, tmp_path):
    src = tmp_path / "starter"
    src.mkdir()
    (src / "good.yaml").write_text("name: good\ntemplate: '{question}'\n")
    (src / "bad.yaml").write_text("name: Bad Name\ntemplate: x\n")
    assert lib.ensure_starter(src) == ["good"]
    assert lib.names() == ["good"]
