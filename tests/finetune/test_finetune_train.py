"""A real CPU training run on the bundled SmolLM2 through the runner (few steps, short rows), then: the loss went
down, the adapter changes llama.cpp's answer, the GGUF LoRA loads in llama.cpp and matches the in-process model
(parity), and the exports are usable."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.finetune import runner
from core.finetune.datasets import load_file, prepare
from core.finetune.spec import preset_spec
from tests.finetune.ft_helpers import HELDOUT, ROOT, small_train_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, hf_base):
    data = tmp_path_factory.mktemp("ft-train-data")
    old = os.environ.get("WORKBENCH_DATA")
    os.environ["WORKBENCH_DATA"] = str(data)
    try:
        spec = preset_spec("quick").replace(max_steps=8, batch_size=2, learning_rate=2e-3, warmup_steps=1,
                                            max_seq_len=256, eval_steps=4, val_fraction=0.25, name="ci-run")
        ds = prepare(load_file(small_train_file(data, 12)), spec.base_model, spec.max_seq_len)
        run = runner.submit(spec, ds)
        run = runner.wait(run.run_id, timeout=1800, poll=2)
        yield run
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_DATA", None)
        else:
            os.environ["WORKBENCH_DATA"] = old


def test_training_succeeds_and_loss_goes_down(trained):
    st = trained.status
    assert st["state"] == "succeeded", st.get("error")
    assert st["trainer"] == "unsloth" and st["device"] == "cpu"
    rows = trained.metrics
    losses = [m["loss"] for m in rows if m.get("loss") is not None]
    evals = [m["eval_loss"] for m in rows if m.get("eval_loss") is not None]
    assert len(losses) == 8 and len(evals) == 2
    assert sum(losses[-2:]) / 2 < losses[0] - 0.3, losses
    assert evals[-1] < evals[0], evals
    assert all(k in rows[0] for k in ("step", "loss", "eval_loss", "learning_rate", "tokens_per_s", "rss_mb",
                                      "elapsed"))
    final = st["final"]
    from core.llm.models import file_sha256
    assert final["adapter_sha256"] == file_sha256(trained.dir / "adapter" / "adapter_model.safetensors")
    assert st["finished"] > st["started"] and st["step"] == 8


def test_adapter_registered_and_changes_the_llamacpp_answer(trained):
    from core.llm.base import GenParams
    from core.llm.models import list_adapters
    from core.llm.registry import get_backend

    info = {a.name: a for a in list_adapters()}[trained.run_id]
    assert info.model_id == f"ft:{trained.run_id}" and info.base_model == "smollm2-135m-instruct"
    assert info.train_seconds > 0 and info.device == "cpu" and info.extra["spec"]["max_steps"] == 8
    backend = get_backend("embedded")
    assert f"ft:{trained.run_id}" in [m.id for m in backend.list_models()]
    msgs = json.loads(HELDOUT.read_text().splitlines()[0])["messages"][:-1]
    params = GenParams(temperature=0.0, max_tokens=40, seed=1)
    base = backend.chat(msgs, params, model="smollm2-135m-instruct").text
    tuned = backend.chat(msgs, params, model=info.model_id).text
    assert tuned.strip() and tuned != base


def test_gguf_lora_parity_with_the_in_process_model(trained):
    from core.finetune.parity import run_parity, saved_parity
    rep = run_parity(trained.run_id, "gguf-lora", n_prompts=2, max_new_tokens=32)
    assert rep.passed, rep.verdict
    assert rep.score > rep.base_score and rep.score >= 0.6
    assert all(r.exported.strip() for r in rep.rows)
    assert saved_parity(trained.dir, "gguf-lora")["score"] == rep.score


def test_exports_peft_ollama_and_merged(trained, tmp_path):
    from core.finetune.export import export_adapter
    peft = export_adapter(trained.run_id, "peft", out=tmp_path)
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(peft.files)

    ol = export_adapter(trained.run_id, "ollama", out=tmp_path)     # no Ollama server here: files + how-to
    mf = (tmp_path / "Modelfile").read_text()
    assert mf.count("FROM ") == 1 and "SmolLM2-135M-Instruct.Q4_1.gguf" in mf
    assert f"ADAPTER {(tmp_path / 'adapter.gguf').resolve()}" in mf
    assert "TEMPLATE" in mf and "{{ .Content }}<|im_end|>" in mf and '<|im_start|>assistant\n"""' in mf
    assert 'PARAMETER stop "<|im_end|>"' in mf and "SYSTEM" in mf and "Pip" in mf
    assert "ollama create" in ol.note

    merged = export_adapter(trained.run_id, "gguf-merged", out=tmp_path, qtype="Q8_0")
    import gguf
    r = gguf.GGUFReader(merged.path)
    types = {t.tensor_type.name for t in r.tensors}
    assert "Q4_1" not in types and "Q8_0" in types
    assert r.fields["tokenizer.chat_template"].contents().startswith("{% for message")
    from core.finetune.parity import run_parity
    rep = run_parity(trained.run_id, "gguf-merged", exported=__import__("pathlib").Path(merged.path), n_prompts=1,
                     max_new_tokens=32)
    assert rep.passed, rep.verdict


def test_cli_export_and_show(trained, tmp_path):
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "core", "export", trained.run_id, "--format", "gguf-lora", "--out",
                          str(tmp_path), "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["format"] == "gguf-lora" and res["path"].endswith("adapter.gguf") and res["size_bytes"] > 100_000
    show = subprocess.run([sys.executable, "-m", "core", "jobs", "show", trained.run_id, "--json", "--metrics"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    d = json.loads(show.stdout)
    assert d["status"]["state"] == "succeeded" and len(d["metrics"]) >= 10 and d["spec"]["name"] == "ci-run"


def test_parity_check_and_exports_run_as_jobs_in_their_own_process(trained):
    """What the page starts: the parity check and the exports are job kinds, run by a worker process (the full
    fp32 model is never loaded in the UI process); the page only reads their results."""
    from pathlib import Path

    from core import jobs
    from core.finetune import export, parity

    ex = jobs.wait(export.start_job(trained.run_id, "peft"), timeout=600)
    assert ex.state == "succeeded", ex.error
    assert ex.result["format"] == "peft" and Path(ex.result["path"]).is_dir() and ex.pid != os.getpid()
    assert export.latest_export(trained.run_id, "peft")["result"]["path"] == ex.result["path"]
    pj = jobs.wait(parity.start_job(trained.run_id, "gguf-lora", n_prompts=1, max_new_tokens=16), timeout=900)
    assert pj.state == "succeeded", pj.error
    assert pj.result["exported_file"].endswith("adapter.gguf") and pj.pid != os.getpid()
    assert parity.saved_parity(trained.dir, "gguf-lora")["score"] == pj.result["score"]
    assert parity.latest_job(trained.run_id, "gguf-lora")["id"] == pj.id


def test_peft_trl_fallback_runs_the_same_spec(data_dir, hf_base, tmp_path):
    """trainer=peft+trl (what runs when Unsloth cannot import) trains, exports and registers the same way."""
    spec = preset_spec("quick").replace(max_steps=3, batch_size=2, max_seq_len=256, eval_steps=0, val_fraction=0.0,
                                        trainer="peft+trl", target_modules=["q_proj", "v_proj"], lora_r=4)
    ds = prepare(load_file(small_train_file(tmp_path, 6)), spec.base_model, spec.max_seq_len)
    run = runner.wait(runner.submit(spec, ds).run_id, timeout=900, poll=1)
    assert run.state == "succeeded", run.status.get("error")
    assert run.status["trainer"] == "peft+trl"
    assert len([m for m in run.metrics if m.get("loss") is not None]) == 3
    assert (run.dir / "export" / "adapter.gguf").is_file() and run.status["final"]["model_id"] == f"ft:{run.run_id}"
