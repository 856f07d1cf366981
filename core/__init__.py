"""Approach Workbench core: all logic, no Streamlit. Usable from the UI, the CLI (`python -m core`), tests and notebooks."""
import os as _os

# Safety and offline defaults for every process that imports core (set before any heavy library loads).
_os.environ.setdefault("UNSLOTH_AUTO_INSTALL", "0")       # Unsloth would otherwise apt-get / git clone by itself
_os.environ.setdefault("UNSLOTH_LLAMA_CPP_OFFLINE", "1")
_os.environ.setdefault("HF_HUB_OFFLINE", "1")             # never fetch weights from a hub at run time
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("LANCEDB_LOG", "error")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
