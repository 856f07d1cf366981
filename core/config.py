"""One Settings object from the environment and an optional TOML config file.

All state lives under one data folder (`WORKBENCH_DATA`, default `./data`) so two checkouts or a test can be
pointed at separate folders. Settings are read fresh on each call (cheap), so tests can change the environment.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DOCS = PROJECT_ROOT / "sample_docs"

# env var -> Settings field
_ENV = {
    "WORKBENCH_DATA": "data_dir",
    "WORKBENCH_BACKEND": "backend",
    "WORKBENCH_MODEL": "model",
    "OLLAMA_HOST": "ollama_host",
    "OPENAI_BASE_URL": "openai_base_url",
    "OPENAI_API_KEY": "openai_api_key",
    "WORKBENCH_OPENAI_MODEL": "openai_model",
    "WORKBENCH_N_CTX": "n_ctx",
    "WORKBENCH_THREADS": "n_threads",
    "WORKBENCH_EMBEDDER": "embedder",
    "WORKBENCH_MAX_UPLOAD_MB": "max_upload_mb",
    "WORKBENCH_JOBS_KEEP": "jobs_keep",
    # security and limits (core/paths.py, core/limits.py)
    "WORKBENCH_PATH_ROOTS": "path_roots",
    "WORKBENCH_MAX_BATCH_FILES": "max_batch_files",
    "WORKBENCH_PARSE_TIMEOUT_S": "parse_timeout_s",
    "WORKBENCH_PARSE_MEMORY_MB": "parse_memory_mb",
    "WORKBENCH_FUSION": "fusion",
    "WORKBENCH_FUSION_WEIGHT": "fusion_weight",
    "WORKBENCH_FUSION_NORM": "fusion_norm",
    "WORKBENCH_COMPARE_CONCURRENCY": "compare_concurrency",
    "WORKBENCH_QUERY_BACKEND": "query_backend",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path("data"))
    backend: str = "embedded"                 # embedded | ollama | openai
    model: str = ""                           # default model of the chosen backend ("" = backend's default)
    ollama_host: str = "http://127.0.0.1:11434"
    openai_base_url: str = ""                 # e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp server, LM Studio)
    openai_api_key: str = ""
    openai_model: str = ""
    n_ctx: int = 2048                         # embedded llama.cpp context window
    n_threads: int = 0                        # 0 = let llama.cpp decide
    embedder: str = "all-MiniLM-L6-v2"        # packaged default; or a local sentence-transformers folder
    max_upload_mb: int = 50
    jobs_keep: int = 20                       # finished job folders kept per kind (core.jobs.retention)
    # Folders and files typed in the UI must resolve under these roots (os.pathsep-separated; "" = the defaults:
    # sample_docs/, the data folder and its import/ folder). The CLI is not limited. See core/paths.py.
    path_roots: str = ""
    max_batch_files: int = 500                # files per upload batch / UI folder ingest
    parse_timeout_s: int = 120                # per-file parse time limit in the ingest sandbox (0 = in-process)
    parse_memory_mb: int = 2048               # per-file parse address-space limit (RLIMIT_AS) in the sandbox
    # Hybrid retrieval: how the vector and full-text lists are fused (core/rag/retriever.py). Defaults measured by
    # bench/retrieval_quality.py on the scenario and the Bash-manual question sets (README, Knowledge Base).
    fusion: str = "linear"                    # linear | rrf | weighted-rrf
    fusion_weight: float = 0.3                # weight of the vector list (linear, weighted-rrf)
    fusion_norm: str = "max"                  # linear: scores divided by each list's best (max) or min-max scaled
    rrf_k: int = 60                           # RRF constant (rrf, weighted-rrf)
    # Batch comparisons: requests kept in flight to Ollama / OpenAI-compatible servers (core/compare/runner.py;
    # the in-process llama.cpp model always answers one at a time). A run may set its own (CLI --concurrency).
    compare_concurrency: int = 4
    # Query embedding for an index made by a torch embedder: "auto" = its ONNX Runtime fp32 twin when that export
    # is on disk (same vectors to ~1e-7, no torch import: core.rag.embedders.query_embedder); "same" = the
    # index's own embedder.
    query_backend: str = "auto"

    # --- paths under the data folder ---
    @property
    def prompts_dir(self) -> Path:
        return self.data_dir / "prompts"

    @property
    def lancedb_uri(self) -> str:
        """A local folder by default; WORKBENCH_LANCEDB_URI may name an object store (s3://..., gs://...)."""
        return os.environ.get("WORKBENCH_LANCEDB_URI") or str(self.data_dir / "lancedb")

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def compare_dir(self) -> Path:
        return self.data_dir / "compare"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def import_dir(self) -> Path:
        """Where to put files to ingest from the UI by path (always one of the allowed roots)."""
        return self.data_dir / "import"

    def ensure_dirs(self) -> "Settings":
        for p in (self.data_dir, self.prompts_dir, self.runs_dir, self.adapters_dir, self.models_dir,
                  self.compare_dir, self.cache_dir, self.import_dir):
            p.mkdir(parents=True, exist_ok=True)
        return self


def _coerce(name: str, raw) -> object:
    typ = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if typ in ("int", int):
            return int(raw)
        if typ in ("float", float):
            return float(raw)
        if typ in ("Path", Path):
            return Path(raw).expanduser()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Setting {name!r} has an invalid value {raw!r}: {exc}") from exc


def get_settings(**overrides) -> Settings:
    """Defaults < config file (WORKBENCH_CONFIG or <data>/workbench.toml) < environment < explicit overrides."""
    values: dict = {}
    env_data = os.environ.get("WORKBENCH_DATA")
    data_dir = Path(env_data).expanduser() if env_data else Path(overrides.get("data_dir") or "data")
    cfg_path = Path(os.environ.get("WORKBENCH_CONFIG") or data_dir / "workbench.toml")
    if cfg_path.is_file():
        try:
            file_values = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {cfg_path} is not valid TOML: {exc}") from exc
        known = {f.name for f in fields(Settings)}
        for key, val in file_values.items():
            if key not in known:
                raise ConfigError(f"Unknown setting {key!r} in {cfg_path}; known: {', '.join(sorted(known))}")
            values[key] = _coerce(key, val)
    for env, name in _ENV.items():
        if os.environ.get(env):
            values[name] = _coerce(name, os.environ[env])
    for key, val in overrides.items():
        values[key] = _coerce(key, val) if val is not None else val
    settings = replace(Settings(), **{k: v for k, v in values.items() if v is not None})
    if not settings.data_dir.is_absolute():
        settings = replace(settings, data_dir=(Path.cwd() / settings.data_dir).resolve())
    return settings
