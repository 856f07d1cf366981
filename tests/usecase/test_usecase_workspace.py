"""Use-case workspaces: plain files, the bundled demo as a read-only use case, export/import round trips, and
hostile archives or folders that must be refused with nothing left behind."""
from __future__ import annotations

import io
import json
import os
import tarfile

import pytest
import yaml

from core.errors import UnsafeArchive, UseCaseError
from core.usecase import workspace as W


def _leftovers(data_dir):
    root = data_dir / "usecases"
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".")) if root.is_dir() else []


def test_the_demo_is_the_first_read_only_use_case(data_dir):
    ucs = W.list_usecases()
    assert ucs[0].name == "tidewave" and ucs[0].read_only and ucs[0].collection == "support"
    s = W.summary(ucs[0])
    assert s["questions"] == 57 and s["training_rows"] == 192 and s["documents"] == 20
    assert s["voice_checks"] == ["greeting", "numbered_steps", "signoff"]
    assert set(s["prompts"]) >= {"zero_shot", "few_shot", "guardrail"}
    with pytest.raises(UseCaseError, match="read-only"):
        W.save_checks(ucs[0], {"voice_checks": []})
    with pytest.raises(UseCaseError, match="read-only"):
        W.delete_usecase("tidewave")
    assert W.compare_command(ucs[0]) == "python -m core compare --preset classic"


def test_create_writes_plain_files_and_validates_names(data_dir, tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# A\nThe A plan costs €5.\n", encoding="utf-8")
    (docs / "sub" / "b.txt").write_text("B is fine.\n", encoding="utf-8")
    (docs / "skip.exe").write_bytes(b"MZ")
    uc = W.create_usecase("acme", title="Acme", product="Acme", system_prompt="You help Acme customers.",
                          docs=[docs])
    assert uc.collection == "acme" and not uc.read_only
    assert [p.relative_to(uc.file("knowledge")).as_posix() for p in W.knowledge_files(uc)] == ["a.md", "sub/b.txt"]
    manifest = yaml.safe_load((uc.path / "usecase.yaml").read_text(encoding="utf-8"))
    assert manifest["name"] == "acme" and manifest["system_prompt"] == "You help Acme customers."
    assert W.prompt_names(uc) == ["few_shot", "guardrail", "zero_shot"]
    assert "Acme" in (uc.file("prompts") / "guardrail.yaml").read_text(encoding="utf-8")
    assert W.load_checks(uc)["voice_checks"] == [] and W.load_checks(uc)["refusal_patterns"]
    assert [u.name for u in W.list_usecases()] == ["tidewave", "acme"]
    for bad in ("Acme", "1acme", "a/b", "../x", "", "tidewave"):
        with pytest.raises(UseCaseError):
            W.create_usecase(bad)
    with pytest.raises(UseCaseError, match="already exists"):
        W.create_usecase("acme")
    with pytest.raises(UseCaseError, match="No documents"):
        W.create_usecase("empty_docs", docs=[tmp_path / "nothing-here"])
    assert not (data_dir / "usecases" / "empty_docs").exists() and _leftovers(data_dir) == []
    uc = W.update_manifest(uc, title="Acme support", collection="acme_docs")
    assert (uc.title, uc.collection) == ("Acme support", "acme_docs")
    W.delete_usecase("acme")
    assert [u.name for u in W.list_usecases()] == ["tidewave"] and _leftovers(data_dir) == []


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("as_archive", [True, False])
def test_export_import_round_trip(data_dir, tmp_path, as_archive):
    uc = W.create_usecase("acme", product="Acme", docs=[_docs(tmp_path)])
    W.write_jsonl_atomic(uc.writable("questions"), [{"id": "q1", "question": "How much is A?", "reference": "€5",
                                                     "tags": ["fact_lookup"], "evidence": "The A plan costs €5.",
                                                     "keywords": ["5"]}])
    W.write_jsonl_atomic(uc.writable("train"), [{"messages": [{"role": "user", "content": "hi"},
                                                              {"role": "assistant", "content": "Hello!"}]}])
    W.save_checks(uc, {"voice_checks": [{"name": "hello", "pattern": "^Hello"}], "refusal_patterns": ["sorry"]})
    out = tmp_path / ("acme.tar.gz" if as_archive else "acme-export")
    assert W.export_usecase("acme", out) == out
    with pytest.raises(UseCaseError, match="exists"):
        W.export_usecase("acme", out)
    res = W.import_usecase(out, name="acme_copy")
    copy = res.usecase
    assert copy.name == "acme_copy" and copy.collection == "acme" and res.skipped == []
    before, after = _files(uc.path), _files(copy.path)
    assert set(before) == set(after)
    for rel in before:
        if rel != "usecase.yaml":
            assert before[rel] == after[rel], rel
    assert yaml.safe_load(after["usecase.yaml"].decode())["name"] == "acme_copy"
    assert W.load_checks(copy) == W.load_checks(uc)
    with pytest.raises(UseCaseError, match="already exists"):
        W.import_usecase(out, name="acme_copy")
    assert W.import_usecase(out, name="acme_copy", overwrite=True).usecase.name == "acme_copy"
    assert _leftovers(data_dir) == []


def _docs(tmp_path):
    d = tmp_path / "docs"
    d.mkdir(exist_ok=True)
    (d / "a.md").write_text("# A\nThe A plan costs €5.\n", encoding="utf-8")
    return d


def test_copy_of_the_demo_is_editable(data_dir):
    uc = W.copy_usecase("tidewave", "my_tidewave", title="Mine")
    s = W.summary(uc)
    assert not uc.read_only and uc.title == "Mine" and uc.collection == "support"
    assert s["questions"] == 57 and s["training_rows"] == 192 and s["documents"] == 20
    assert [c["name"] for c in W.load_checks(uc)["voice_checks"]] == ["greeting", "numbered_steps", "signoff"]
    sc = W.scenario_of(uc)
    assert sc.collection == "support" and len(sc.voice_checks) == 3 and sc.questions_path == uc.file("questions")


# --- hostile input -----------------------------------------------------------------------------------------------
def _tar(path, members):
    """members: [(TarInfo, bytes | None)]"""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


MANIFEST = yaml.safe_dump({"name": "evil", "collection": "evil"}).encode()


@pytest.mark.parametrize("member, message", [
    (_file("../escape.txt", b"x"), "climbs out"),
    (_file("evil/../../escape.txt", b"x"), "climbs out"),
    (_file("/etc/evil.txt", b"x"), "absolute path"),
    (_file("evil\\..\\x.txt", b"x"), "backslash"),
])
def test_hostile_paths_are_refused(data_dir, tmp_path, member, message):
    arc = _tar(tmp_path / "evil.tar.gz", [_file("evil/usecase.yaml", MANIFEST), member])
    with pytest.raises(UnsafeArchive, match=message):
        W.import_usecase(arc)
    assert not (tmp_path / "escape.txt").exists() and not (data_dir / "escape.txt").exists()
    assert [u.name for u in W.list_usecases()] == ["tidewave"] and _leftovers(data_dir) == []


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "chardev", "fifo"])
def test_links_and_special_files_are_refused(data_dir, tmp_path, kind):
    info = tarfile.TarInfo("evil/knowledge/a.md")
    info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "chardev": tarfile.CHRTYPE,
                 "fifo": tarfile.FIFOTYPE}[kind]
    info.linkname = "/etc/passwd"
    arc = _tar(tmp_path / "evil.tar.gz", [_file("evil/usecase.yaml", MANIFEST), (info, None)])
    with pytest.raises(UnsafeArchive):
        W.import_usecase(arc)
    assert [u.name for u in W.list_usecases()] == ["tidewave"] and _leftovers(data_dir) == []


def test_size_caps_stop_big_and_compression_bomb_members(data_dir, tmp_path):
    big = b"\0" * (3 * 1024 * 1024)          # compresses to a few KB
    arc = _tar(tmp_path / "bomb.tar.gz", [_file("evil/usecase.yaml", MANIFEST), _file("evil/knowledge/a.txt", big)])
    assert arc.stat().st_size < 100_000
    with pytest.raises(UnsafeArchive, match="larger than"):
        W.import_usecase(arc, limits=W.Limits(max_file_bytes=1024 * 1024, max_total_bytes=10 * 1024 * 1024))
    many = [_file(f"evil/knowledge/{i}.txt", b"x" * 600_000) for i in range(4)]
    arc = _tar(tmp_path / "many.tar.gz", [_file("evil/usecase.yaml", MANIFEST), *many])
    with pytest.raises(UnsafeArchive, match="together"):
        W.import_usecase(arc, limits=W.Limits(max_file_bytes=1024 * 1024, max_total_bytes=2 * 1024 * 1024))
    arc = _tar(tmp_path / "count.tar.gz", [_file("evil/usecase.yaml", MANIFEST)]
               + [_file(f"evil/knowledge/{i}.txt", b"x") for i in range(30)])
    with pytest.raises(UnsafeArchive, match="more than 10 members"):
        W.import_usecase(arc, limits=W.Limits(max_members=10))
    assert [u.name for u in W.list_usecases()] == ["tidewave"] and _leftovers(data_dir) == []


def test_invalid_content_is_refused_and_unknown_files_skipped(data_dir, tmp_path):
    bad_q = b'{"question": "ok?"}\n{"id": "bad id!", "question": "x"}\n'
    arc = _tar(tmp_path / "badq.tar.gz", [_file("evil/usecase.yaml", MANIFEST), _file("evil/questions.jsonl", bad_q)])
    with pytest.raises(UseCaseError, match="question set is invalid"):
        W.import_usecase(arc)
    arc = _tar(tmp_path / "badcheck.tar.gz", [_file("evil/usecase.yaml", MANIFEST),
                                              _file("evil/checks.yaml", b"voice_checks:\n- {name: x, pattern: '(('}\n")])
    with pytest.raises(UseCaseError, match="invalid regex"):
        W.import_usecase(arc)
    arc = _tar(tmp_path / "noman.tar.gz", [_file("evil/questions.jsonl", b'{"question": "ok?"}\n')])
    with pytest.raises(UseCaseError, match="no usecase.yaml"):
        W.import_usecase(arc)
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(UseCaseError, match="not a readable"):
        W.import_usecase(tmp_path / "junk.tar.gz")
    assert [u.name for u in W.list_usecases()] == ["tidewave"] and _leftovers(data_dir) == []
    arc = _tar(tmp_path / "ok.tar.gz", [_file("evil/usecase.yaml", MANIFEST), _file("evil/run.sh", b"rm -rf /"),
                                        _file("evil/.hidden", b"x"), _file("evil/knowledge/a.md", b"# A\nfine.\n")])
    res = W.import_usecase(arc)
    assert res.usecase.name == "evil" and sorted(res.skipped) == ["evil/.hidden", "evil/run.sh"]
    assert not (res.usecase.path / "run.sh").exists() and (res.usecase.path / "knowledge" / "a.md").is_file()


def test_folder_import_refuses_symlinks(data_dir, tmp_path):
    src = tmp_path / "src"
    (src / "knowledge").mkdir(parents=True)
    (src / "usecase.yaml").write_bytes(MANIFEST)
    secret = tmp_path / "secret.md"
    secret.write_text("secret", encoding="utf-8")
    os.symlink(secret, src / "knowledge" / "link.md")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        W.import_usecase(src)
    os.unlink(src / "knowledge" / "link.md")
    os.symlink(tmp_path, src / "knowledge" / "dirlink")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        W.import_usecase(src)
    os.unlink(src / "knowledge" / "dirlink")
    assert W.import_usecase(src).usecase.name == "evil"
    assert json.dumps(W.summary(W.get_usecase("evil")))        # summary of a bare use case works


def test_deeply_nested_yaml_is_a_clear_error_not_a_crash(data_dir):
    """YAML nested thousands deep makes PyYAML recurse past Python's limit: the manifest and the checks file
    report it as invalid YAML (UseCaseError), like any other malformed file."""
    uc = W.create_usecase("deep", title="Deep", product="Deep", system_prompt="You help.")
    uc.file("checks").write_text("voice_checks: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(UseCaseError, match="checks.yaml is not valid YAML"):
        W.load_checks(uc)
    (uc.path / "usecase.yaml").write_text("name: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(UseCaseError, match="usecase.yaml is not valid YAML"):
        W.get_usecase("deep")
