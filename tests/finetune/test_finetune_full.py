"""A real full fine-tune (every weight of the bundled SmolLM2-135M) on CPU for a few steps, started with
`python -m core finetune --method full` (the CLI submits it to the runner, which trains in its own worker process),
then: the whole model is saved, trainable == total parameters, live metrics were written, the standalone GGUF loads
in llama.cpp as model ft:<run> and generates, the run card has the measured figures, the Compare side resolves it as
a fine-tuned approach with its training seconds, and the gguf-merged parity check runs on it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.finetune import runner
from tests.finetune.ft_helpers import ROOT, small_train_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, hf_base):
    data = tmp_path_factory.mktemp("ft-full-data")
    old = os.environ.get("WORKBENCH_DATA")
    os.environ["WORKBENCH_DATA"] = str(data)
    try:
        train = small_train_file(data, 8)
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        out = subprocess.run([sys.executable, "-m", "core", "finetune", "--data", str(train), "--method", "full",
                              "--max-steps", "2", "--batch-size", "2", "--max-seq-len", "160", "--warmup-steps", "0",
                              "--eval-steps", "2", "--val-fraction", "0.25", "--threads", "1", "--name", "full-ci",
                              "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]
        run_id = json.loads(out.stdout)["run_id"]
        yield runner.load_run(run_id)
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_DATA", None)
        else:
            os.environ["WORKBENCH_DATA"] = old


def test_full_run_trains_every_weight_and_saves_the_model(full_run, hf_base):
    assert full_run.state == "succeeded", full_run.status.get("error")
    spec = full_run.spec
    assert spec["method"] == "full" and spec["learning_rate"] == 5e-5         # the full-FT default rate
    assert set(spec["ignored_settings"]) == {"lora_r", "lora_alpha", "lora_dropout", "target_modules"}
    final = full_run.status["final"]
    assert final["method"] == "full"
    assert final["trainable_params"] == final["total_params"] > 100_000_000      # 134.5 M, tied weights once
    assert final["library"]                                   # which library trained it is recorded
    model_dir = full_run.dir / "model"
    assert (model_dir / "config.json").is_file() and list(model_dir.glob("*.safetensors"))
    assert not (full_run.dir / "adapter").exists()
    # fp32 weights of 134.5 M parameters: > 500 MB on disk, and the card reports what is on disk
    on_disk = sum(p.stat().st_size for p in model_dir.iterdir())
    assert final["artifact_bytes"] == on_disk > 500e6
    assert final["steps"] == 2 and final["seconds_per_step"] > 0 and final["peak_rss_mb"] > 500
    assert final["heldout_rows"] > 0 and final["heldout_loss"] > 0

    # the weights did change (a full fine-tune moves the embeddings too, which LoRA never touches)
    from safetensors.numpy import load_file
    base = load_file(str(next(hf_base.glob("*.safetensors"))))
    trained = load_file(str(next(model_dir.glob("*.safetensors"))))
    key = "model.embed_tokens.weight"
    assert abs(trained[key].astype("float64") - base[key].astype("float64")).max() > 0


def test_full_run_streams_metrics_like_lora(full_run):
    rows = full_run.metrics
    losses = [m for m in rows if m.get("loss") is not None]
    assert [m["step"] for m in losses] == [1, 2]
    assert all(m["rss_mb"] > 0 and m["learning_rate"] is not None for m in losses)
    assert any(m.get("eval_loss") is not None for m in rows)


def test_full_gguf_is_registered_and_generates_in_llama_cpp(full_run):
    from core.llm.base import GenParams
    from core.llm.embedded import EmbeddedBackend, unload_all
    from core.llm.models import get_adapter

    final = full_run.status["final"]
    assert final["model_id"] == f"ft:{full_run.run_id}"
    info = get_adapter(final["model_id"])
    assert info.is_full and info.gguf_path.endswith("model.gguf") and info.train_seconds > 0
    assert final["load_seconds"] > 0 and final["gguf_bytes"] > 100e6              # Q8_0 of 134.5 M weights
    assert final["voice_total"] == 3 * final["voice_prompts"] > 0 and 0 <= final["voice_passed"] <= final["voice_total"]
    be = EmbeddedBackend()
    model_id, path, adapter = be.resolve_files(final["model_id"])
    assert adapter is None and str(path) == info.gguf_path                       # loaded alone, no LoRA on a base
    try:
        res = be.chat([{"role": "user", "content": "How do I reset my password?"}],
                      GenParams(temperature=0.0, max_tokens=12, seed=1), model=final["model_id"])
        assert res.text.strip() and res.usage.completion_tokens > 0
        assert res.usage.adapter == full_run.run_id
    finally:
        unload_all()


def test_finetune_show_prints_the_measured_card(full_run):
    out = subprocess.run([sys.executable, "-m", "core", "finetune", "show", full_run.run_id, "--json"], cwd=ROOT,
                         env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    card = {r["measure"]: r["value"] for r in json.loads(out.stdout)["card"]}
    assert card["method"].startswith("full")
    for k in ("trainable parameters", "peak memory", "seconds per step", "artifact on disk", "GGUF on disk",
              "load time (llama.cpp)", "held-out loss", "voice checks (llama.cpp)"):
        assert card[k] != "–", k
    text = subprocess.run([sys.executable, "-m", "core", "finetune", "show", full_run.run_id], cwd=ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=120).stdout
    assert "method=full" in text and "trainable parameters" in text


def test_compare_resolves_the_full_model_as_fine_tuned(full_run):
    from core.compare.approach import ApproachSpec, resolve

    r = resolve(ApproachSpec(name="full", model=f"ft:{full_run.run_id}", prompt="zero_shot"))
    assert r.adapter is not None, r.reason
    assert r.adapter["method"] == "full"
    assert r.adapter["train_seconds"] == pytest.approx(full_run.status["final"]["train_seconds"])


def test_other_exports_refuse_and_parity_runs_on_the_full_gguf(full_run):
    from core.errors import ExportError
    from core.finetune.export import export_adapter
    from core.finetune.parity import run_parity

    with pytest.raises(ExportError, match="full fine-tune"):
        export_adapter(full_run.run_id, "gguf-lora")
    rep = run_parity(full_run.run_id, "gguf-merged", n_prompts=1, max_new_tokens=12)
    assert rep.exported_file.endswith("model-q8_0.gguf")
    assert rep.rows and rep.rows[0].exported and rep.rows[0].in_process
    assert 0.0 <= rep.score <= 1.0


def test_full_fine_tune_on_plain_transformers_when_unsloth_is_not_used(data_dir, hf_base, tmp_path):
    """trainer=peft+trl (the fallback when Unsloth cannot import): a full run trains every weight with plain
    transformers (no PEFT), records that library, and cancels like a LoRA run (the shared callback)."""
    from core.finetune.datasets import load_file
    from core.finetune.spec import JobSpec

    spec = JobSpec(method="full", trainer="peft+trl", max_steps=200, batch_size=1, max_seq_len=160, eval_steps=0,
                   val_fraction=0.0, warmup_steps=0, threads=1)
    run = runner.submit(spec, load_file(small_train_file(tmp_path, 4)))
    # let it take two real steps, then cancel it like a LoRA job
    import time
    t0 = time.time()
    while len([m for m in runner.load_run(run.run_id).metrics if m.get("loss") is not None]) < 2:
        assert time.time() - t0 < 600, "no training steps"
        assert runner.load_run(run.run_id).state in ("queued", "running"), runner.load_run(run.run_id).status
        time.sleep(1)
    done = runner.cancel(run.run_id, timeout=120)
    assert done.state == "cancelled"
    assert done.status["trainer"] == "peft+trl" and done.status["method"] == "full"
    assert done.status["trainable_params"] == done.status["total_params"] > 100_000_000
    assert done.spec["learning_rate"] == 5e-5                   # JobSpec(method="full") gets the full-FT default
    assert "every weight trained (plain transformers)" in (done.dir / "worker.log").read_text(errors="replace")
    assert not (done.dir / "model").exists()                    # a cancelled run saves nothing half-done


def test_the_page_shows_the_full_run_card_and_its_only_export(full_run):
    """The Fine-Tune page on the data folder of the full run: the measured card in the job panel and the Runs tab,
    and the Try & export tab offers the standalone GGUF (not the LoRA exports) and the gguf-merged parity check."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app_pages" / "3_Fine_Tune.py"), default_timeout=180)
    app.query_params["run"] = full_run.run_id
    app.run()
    assert not app.exception, app.exception
    cards = [d.value for d in app.dataframe if "measure" in d.value.columns]
    assert cards, "no run card on the page"
    card = dict(zip(cards[0]["measure"], cards[0]["value"]))
    assert card["method"].startswith("full") and card["trainable parameters"].endswith("(100.00%)")
    assert card["artifact on disk"].endswith("MB") and card["load time (llama.cpp)"].endswith(" s")
    runs = [d.value for d in app.dataframe if "method" in d.value.columns and "run" in d.value.columns]
    assert runs and list(runs[0]["method"]) == ["full"]
    keys = {b.key for b in app.button}
    assert "ft_exp_merged" in keys and not {"ft_exp_peft", "ft_exp_lora", "ft_exp_ollama"} & keys
    assert app.selectbox(key="ft_parity_kind").options == ["gguf-merged"]
