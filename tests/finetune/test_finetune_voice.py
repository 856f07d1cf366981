"""The quick preset, trained as shipped on the scenario's transcripts (data variant "plain", rows that would leak
the evaluation set left out), passes the brand-voice checks on held-out questions through llama.cpp where the base
model does not; and Compare runs that real adapter in both fine-tuned columns."""
from __future__ import annotations

import json
import os
import re

import pytest

from core.finetune import runner
from core.finetune.datasets import load_file, prepare, read_jsonl
from core.finetune.spec import preset_spec
from tests.finetune.ft_helpers import HELDOUT, TRAIN
from tests.finetune.test_finetune_leakage import independent_leaks

pytestmark = pytest.mark.slow
N_HELDOUT = 6


@pytest.fixture(scope="module")
def quick_adapter(tmp_path_factory, hf_base):
    from core.finetune.raft import apply_data_variant

    data = tmp_path_factory.mktemp("ft-voice-data")
    old = os.environ.get("WORKBENCH_DATA")
    os.environ["WORKBENCH_DATA"] = str(data)
    try:
        spec = preset_spec("quick")
        ds, report = apply_data_variant(load_file(TRAIN), spec.data_variant)
        ds = prepare(ds, spec.base_model, spec.max_seq_len)
        run = runner.wait(runner.submit(spec, ds).run_id, timeout=4 * 3600, poll=5)
        yield data, run, report
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_DATA", None)
        else:
            os.environ["WORKBENCH_DATA"] = old


def _voice_passes(text: str, checks) -> int:
    flags = {"i": re.I, "m": re.M, "s": re.S}
    return sum(bool(re.search(c.pattern, text, sum(flags[f] for f in c.flags if f in flags))) for c in checks)


def test_quick_preset_trains_on_the_plain_variant_without_evaluation_rows(quick_adapter):
    data, run, report = quick_adapter
    assert run.state == "succeeded", run.status.get("error")
    from core.llm.models import list_adapters
    info = {a.name: a for a in list_adapters()}[run.run_id]
    assert info.extra["spec"]["data_variant"] == "plain"           # the adapter carries its data variant
    rows = read_jsonl(run.dir / "data" / "train.jsonl") + read_jsonl(run.dir / "data" / "val.jsonl")
    assert len(rows) == report.rows_out < report.rows_in == 192
    assert independent_leaks(rows) == []


def test_adapter_passes_the_voice_checks_on_held_out_questions_where_the_base_does_not(quick_adapter):
    from core.compare.questions import load_scenario
    from core.llm.base import GenParams
    from core.llm.registry import get_backend

    _, run, _ = quick_adapter
    checks = load_scenario().voice_checks
    assert len(checks) == 3
    backend = get_backend("embedded")
    prompts = [json.loads(line)["messages"][:-1] for line in HELDOUT.read_text().splitlines()[:N_HELDOUT]]
    params = GenParams(temperature=0.2, max_tokens=120, seed=42)
    tuned = sum(_voice_passes(backend.chat(m, params, model=f"ft:{run.run_id}").text, checks) for m in prompts)
    base = sum(_voice_passes(backend.chat(m, params, model="smollm2-135m-instruct").text, checks) for m in prompts)
    total = 3 * N_HELDOUT
    assert tuned >= 15, f"adapter passed {tuned}/{total} voice checks"
    assert base <= 3, f"base model passed {base}/{total} voice checks"


def test_compare_runs_the_trained_adapter_in_both_fine_tuned_columns(quick_adapter):
    from core.compare import approach as A
    from core.compare import runner as compare_runner
    from core.compare.questions import scenario_questions
    from core.rag import api as rag_api

    _, run, _ = quick_adapter
    rag_api.ensure_sample_collection()
    qs = scenario_questions()
    picked = [next(q for q in qs if t in q.tags) for t in ("fact_lookup", "brand_voice", "out_of_scope")]
    run_id = compare_runner.create_run(A.classic_presets(), picked, max_tokens=64, name="with adapter")
    spec = compare_runner.load_run(run_id).spec
    ft_cols = [a for a in spec["approaches"] if a["spec"]["name"] in ("fine_tuned", "fine_tuned_rag")]
    assert len(ft_cols) == 2 and all(a["available"] for a in ft_cols)
    assert all(a["adapter"]["name"] == run.run_id and a["adapter"]["sha256"] for a in ft_cols)
    status = compare_runner.run_batch(compare_runner.run_dir(run_id))
    assert status["state"] == "succeeded" and status["done"] == 4 * len(picked), status
    data = compare_runner.load_run(run_id)
    for name in ("fine_tuned", "fine_tuned_rag"):
        recs = [r for r in data.results if r["approach"] == name]
        assert len(recs) == len(picked) and all(r["ok"] and r["answer"].strip() for r in recs)
        assert all(r["adapter_sha256"] == ft_cols[0]["adapter"]["sha256"] for r in recs)
        assert all((r["scores"]["voice"] or {}).get("value") is not None for r in recs
                   if "brand_voice" in next(q.tags for q in picked if q.id == r["qid"]))
    rag = [r for r in data.results if r["approach"] == "fine_tuned_rag"]
    assert all(r["retrieval"]["chunks"] for r in rag)
