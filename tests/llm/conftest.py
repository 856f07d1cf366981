"""Fixtures of the LLM tests: a real (tiny, random) LoRA adapter in GGUF form for the packaged model."""
from __future__ import annotations

from pathlib import Path

import pytest


def write_lora_gguf(path: Path, scale: float = 0.5, rank: int = 4, seed: int = 0) -> Path:
    """A genuine llama.cpp LoRA GGUF for SmolLM2-135M (q/v projections of all 30 layers), random weights."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(rank))
    for layer in range(30):
        for name, out_dim in (("attn_q", 576), ("attn_v", 192)):
            w.add_tensor(f"blk.{layer}.{name}.weight.lora_a", (rng.standard_normal((rank, 576)) * scale).astype(np.float32))
            w.add_tensor(f"blk.{layer}.{name}.weight.lora_b", (rng.standard_normal((out_dim, rank)) * scale).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def tiny_adapter(data_dir, tmp_path):
    """A registered adapter `ft:tiny` (base: the packaged SmolLM2) in the test's data folder."""
    from core.llm.models import DEFAULT_MODEL, register_adapter

    src = write_lora_gguf(tmp_path / "tiny-lora.gguf")
    return register_adapter("tiny", src, DEFAULT_MODEL, run_id="test")
