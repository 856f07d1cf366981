"""core.registry: one registry shape for backends, chunkers, embedders and trainers - lazy dotted paths (no import
side effects) and a typed error for an unknown name that lists the known ones."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import (InvalidParams, JobError, ModelNotFound, UnknownBackend, UnknownChunker, UnknownEmbedder,
                         UnknownName, UnknownTrainer)
from core.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def test_unknown_names_are_typed_errors_listing_the_known_ones():
    from core.finetune.trainers import TRAINERS, get_trainer
    from core.llm.registry import BACKENDS, get_backend
    from core.rag.chunkers import CHUNKERS, get_chunker
    from core.rag.embedders import EMBEDDERS, get_embedder

    cases = [(lambda: get_backend("nope"), UnknownBackend, BACKENDS),
             (lambda: get_chunker("nope"), UnknownChunker, CHUNKERS),
             (lambda: get_embedder("nope"), UnknownEmbedder, EMBEDDERS),
             (lambda: get_trainer("nope"), UnknownTrainer, TRAINERS)]
    for call, error, registry in cases:
        with pytest.raises(error) as err:
            call()
        e = err.value
        assert isinstance(e, UnknownName) and e.name == "nope" and e.kind == registry.kind
        assert e.known == tuple(registry.names()) and ", ".join(registry.names()) in str(e)
    # each part's own error family still catches it (what callers caught before)
    assert issubclass(UnknownChunker, InvalidParams) and issubclass(UnknownEmbedder, ModelNotFound)
    assert issubclass(UnknownTrainer, JobError)
    assert BACKENDS.names() == ["embedded", "ollama", "openai"]
    assert CHUNKERS.names() == ["fixed", "structure"] and TRAINERS.names() == ["unsloth", "peft+trl"]


def test_registries_import_nothing_until_a_name_is_used():
    probe = """
import json, sys
import core.llm.registry, core.rag.chunkers, core.finetune.trainers
before = sorted(m for m in ("core.llm.embedded", "core.llm.ollama_backend", "core.llm.openai_backend",
                            "core.rag.chunkers.fixed", "core.rag.chunkers.structure",
                            "core.finetune.trainers.unsloth", "core.finetune.trainers.peft_trl") if m in sys.modules)
from core.rag.chunkers import get_chunker
get_chunker("fixed")
print(json.dumps({"before": before, "fixed": "core.rag.chunkers.fixed" in sys.modules,
                  "structure": "core.rag.chunkers.structure" in sys.modules}))
"""
    p = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out == {"before": [], "fixed": True, "structure": False}


def test_generic_registry():
    class Thing:
        def __init__(self, x=1):
            self.x = x

    reg: Registry = Registry("widget", hint="see the docs")
    reg.register("lazy", "collections:OrderedDict", "an ordered dict")
    reg.register("obj", Thing)
    assert reg.names() == ["lazy", "obj"] and reg.descriptions()["lazy"] == "an ordered dict"
    assert reg.create("obj", x=3).x == 3 and reg.load("lazy").__name__ == "OrderedDict"
    with pytest.raises(UnknownName, match=r"Unknown widget 'x': choose one of lazy, obj; see the docs\."):
        reg.load("x")
    with pytest.raises(ValueError, match="module:attribute"):
        reg.register("bad", "no_colon_here")
