"""core.paths: paths typed in the UI must resolve (after symlinks) under the configured roots; the CLI is free."""
from __future__ import annotations

import os

import pytest

from core import paths
from core.config import SAMPLE_DOCS, get_settings
from core.errors import PathNotAllowed, TooManyFiles


def test_default_roots_are_sample_docs_data_and_import(data_dir):
    roots = paths.path_roots()
    assert roots == [SAMPLE_DOCS.resolve(), data_dir.resolve(), (data_dir / "import").resolve()]
    assert (data_dir / "import").is_dir()


def test_ui_paths_under_roots_pass_and_others_fail_with_a_clear_message(data_dir, tmp_path):
    assert paths.ui_path(SAMPLE_DOCS / "knowledge", kind="dir") == (SAMPLE_DOCS / "knowledge").resolve()
    (data_dir / "import").mkdir(exist_ok=True)
    f = data_dir / "import" / "a.md"
    f.write_text("hello")
    assert paths.ui_path(str(f), kind="file") == f.resolve()
    for bad in ("/", "/etc/passwd", str(data_dir / ".." / ".." ), str(SAMPLE_DOCS / ".." / "core")):
        with pytest.raises(PathNotAllowed) as exc:
            paths.ui_path(bad)
        msg = str(exc.value)
        assert "outside the folders this app may read" in msg and "WORKBENCH_PATH_ROOTS" in msg
        assert str(data_dir / "import") in msg
    # the CLI keeps full access
    assert paths.resolve_path("/etc", for_ui=False, kind="dir").is_dir()


def test_symlinks_are_followed_before_the_check(data_dir, tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key.txt").write_text("secret")
    (data_dir / "import").mkdir(exist_ok=True)
    link = data_dir / "import" / "looks-inside"
    link.symlink_to(outside)
    with pytest.raises(PathNotAllowed, match="outside"):
        paths.ui_path(link)
    with pytest.raises(PathNotAllowed, match="outside"):
        paths.ui_path(link / "key.txt")


def test_kind_and_existence_are_checked(data_dir):
    with pytest.raises(PathNotAllowed, match="no such"):
        paths.ui_path(data_dir / "import" / "missing.jsonl", kind="file")
    with pytest.raises(PathNotAllowed, match="not a regular file"):
        paths.ui_path(data_dir / "import", kind="file")
    with pytest.raises(PathNotAllowed, match="not a folder"):
        paths.ui_path(SAMPLE_DOCS / "scenario.yaml", kind="dir")
    with pytest.raises(PathNotAllowed, match="No path"):
        paths.ui_path("  ")
    with pytest.raises(PathNotAllowed, match="NUL"):
        paths.ui_path("a\x00b")
    assert paths.ui_path(data_dir / "import" / "new.txt", must_exist=False) == (data_dir / "import" / "new.txt").resolve()


def test_roots_setting_replaces_the_defaults(data_dir, tmp_path, monkeypatch):
    other = tmp_path / "corpus"
    other.mkdir()
    monkeypatch.setenv("WORKBENCH_PATH_ROOTS", f"{other}{os.pathsep}{tmp_path / 'second'}")
    assert paths.path_roots() == [other.resolve(), (tmp_path / "second").resolve()]
    assert paths.ui_path(other) == other.resolve()
    with pytest.raises(PathNotAllowed):
        paths.ui_path(SAMPLE_DOCS)


def test_batch_cap(data_dir, monkeypatch):
    paths.check_batch_size(get_settings().max_batch_files)
    with pytest.raises(TooManyFiles, match="over the limit of 500"):
        paths.check_batch_size(501)
    monkeypatch.setenv("WORKBENCH_MAX_BATCH_FILES", "3")
    with pytest.raises(TooManyFiles, match="WORKBENCH_MAX_BATCH_FILES"):
        paths.check_batch_size(4, "uploaded files")
