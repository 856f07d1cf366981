"""AppTest of the Fine-Tune page's method choice: full fine-tune next to LoRA (its lower learning rate and the CLI
line follow), QLoRA refused on this CPU machine before anything starts."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.safe_text import unescape_markdown
from tests.finetune.ft_helpers import ROOT, link_model_into

pytestmark = pytest.mark.slow
PAGE = str(ROOT / "app_pages" / "3_Fine_Tune.py")


@pytest.fixture
def at(data_dir):
    link_model_into(data_dir)
    app = AppTest.from_file(PAGE, default_timeout=180)
    app.run()
    assert not app.exception, app.exception
    return app


def test_full_method_sets_its_learning_rate_and_cli_line(at):
    assert at.radio(key="ft_method").value == "lora"
    at.radio(key="ft_method").set_value("full").run()
    assert not at.exception
    assert at.number_input(key="ft_learning_rate").value == pytest.approx(5e-5)
    codes = [c.value for c in at.code]
    assert any("--method full" in c and "--learning-rate 5e-05" in c for c in codes), codes
    assert any("LoRA settings" in c.value and "not used" in c.value for c in at.caption)
    assert not at.button(key="ft_start").disabled
    at.radio(key="ft_method").set_value("lora").run()
    assert at.number_input(key="ft_learning_rate").value == pytest.approx(2e-3)


def test_qlora_is_refused_on_cpu(at):
    from core.finetune.spec import cuda_present
    if cuda_present():
        pytest.skip("this machine has a CUDA GPU")
    at.radio(key="ft_method").set_value("qlora").run()
    assert any("needs a CUDA GPU" in unescape_markdown(e.value) for e in at.error)
    assert at.button(key="ft_start").disabled


def test_raft_training_data_raises_the_sequence_length_and_shows_in_the_cli_line(at):
    assert at.radio(key="ft_data_variant").value == "plain"
    at.radio(key="ft_data_variant").set_value("raft").run()
    assert not at.exception
    assert at.number_input(key="ft_max_seq_len").value == 512
    codes = [c.value for c in at.code]
    assert any("--data-variant raft" in c and "--max-seq-len 512" in c for c in codes), codes
