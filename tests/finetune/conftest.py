import pytest

from tests.finetune.ft_helpers import converted_model


@pytest.fixture(scope="session")
def hf_base():
    """The packaged SmolLM2 GGUF converted once to a trainable Hugging Face folder (shared cache)."""
    return converted_model()
