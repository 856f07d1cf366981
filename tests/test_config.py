"""Settings: defaults, config file, environment precedence, and clear errors for bad values."""
from pathlib import Path

import pytest

from core.config import get_settings
from core.errors import ConfigError


def test_defaults_put_everything_under_the_data_folder(data_dir):
    s = get_settings()
    assert s.data_dir == data_dir
    assert s.backend == "embedded"
    for p in (s.prompts_dir, s.runs_dir, s.adapters_dir, s.models_dir, s.compare_dir, s.cache_dir):
        assert data_dir in p.parents
    assert s.lancedb_uri == str(data_dir / "lancedb")
    s.ensure_dirs()
    assert s.runs_dir.is_dir() and s.prompts_dir.is_dir()


def test_config_file_then_environment_then_overrides(data_dir, monkeypatch):
    (data_dir / "workbench.toml").write_text('backend = "ollama"\nn_ctx = 4096\nollama_host = "http://h:1"\n')
    s = get_settings()
    assert (s.backend, s.n_ctx, s.ollama_host) == ("ollama", 4096, "http://h:1")
    monkeypatch.setenv("WORKBENCH_N_CTX", "1024")
    assert get_settings().n_ctx == 1024
    assert get_settings(n_ctx=512).n_ctx == 512


def test_object_store_uri_is_passed_through(data_dir, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LANCEDB_URI", "s3://bucket/workbench")
    assert get_settings().lancedb_uri == "s3://bucket/workbench"


@pytest.mark.parametrize("content, needle", [
    ("backend = ", "not valid TOML"),
    ('colour = "blue"\n', "Unknown setting 'colour'"),
    ('n_ctx = "many"\n', "n_ctx"),
])
def test_bad_config_file_gives_a_clear_error(data_dir, content, needle):
    (data_dir / "workbench.toml").write_text(content)
    with pytest.raises(ConfigError, match=needle):
        get_settings()


def test_relative_data_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_DATA", "rel/data")
    assert get_settings().data_dir == (tmp_path / "rel" / "data").resolve()
    assert isinstance(get_settings().data_dir, Path)
