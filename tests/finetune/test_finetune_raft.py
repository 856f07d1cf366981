"""The data variant is part of the job spec (validated, on the CLI line, recorded with the run and the adapter)."""
from __future__ import annotations

import pytest

from core.errors import InvalidParams
from core.finetune.datasets import load_file
from core.finetune.raft import apply_data_variant, describe_variant
from core.finetune.spec import DATA_VARIANTS, JobSpec, preset_spec
from tests.finetune.ft_helpers import TRAIN


def test_data_variant_is_a_validated_spec_field_with_a_cli_flag():
    assert DATA_VARIANTS == ("plain", "raft") and JobSpec().data_variant == "plain"
    spec = preset_spec("quick").replace(data_variant="raft", max_seq_len=512).validate()
    assert "--data-variant raft" in spec.cli_line(data="t.jsonl", preset="quick")
    assert "--data-variant" not in preset_spec("quick").cli_line(data="t.jsonl", preset="quick")
    with pytest.raises(InvalidParams, match="data_variant must be one of plain, raft"):
        JobSpec(data_variant="rag").validate()
    with pytest.raises(InvalidParams):
        apply_data_variant(load_file(TRAIN), "rag")


def test_the_run_summary_says_which_data_a_run_trained_on(data_dir):
    ds, rep = apply_data_variant(load_file(TRAIN), "plain")
    summary = ds.summary()
    assert summary["variant"]["variant"] == "plain" and summary["variant"]["dropped"] == len(rep.dropped) > 0
    spec = {**preset_spec("quick").to_dict(), "data_summary": summary}
    assert describe_variant(spec) == f"plain transcripts ({len(rep.dropped)} rows that hold evaluation text left out)"
    raft = {"data_variant": "raft", "data_summary": {"variant": {
        "variant": "raft", "rows_out": 179, "cited": 120, "prompt": "rag_small",
        "profile": {"k": 4, "method": "sentences", "budget_tokens": 160}}}}
    assert describe_variant(raft) == ("RAFT: retrieval-augmented transcripts (k=4, sentences <= 160 tokens, prompt "
                                      "rag_small; 120/179 answers cite a passage)")
    assert describe_variant({}) == "plain transcripts"            # runs from before the field existed


def test_the_classic_columns_pick_the_adapter_of_their_data_variant():
    from core.compare.approach import LATEST_ADAPTER, LATEST_RAFT_ADAPTER, classic_presets
    from core.finetune.raft import adapter_variant, newest_adapter
    from core.llm.models import AdapterInfo

    def ad(name, created, variant=None):
        spec = {"data_variant": variant} if variant else {}
        return AdapterInfo(name, "smollm2-135m-instruct", f"/x/{name}.gguf", created=created, extra={"spec": spec})

    adapters = [ad("raft-new", 3, "raft"), ad("plain-mid", 2, "plain"), ad("old", 1)]     # newest first
    assert [adapter_variant(a) for a in adapters] == ["raft", "plain", "plain"]
    assert newest_adapter(adapters, "raft").name == "raft-new"
    assert newest_adapter(adapters, "plain").name == "plain-mid"
    assert newest_adapter(adapters[2:], "raft").name == "old"                # no RAFT adapter: the newest one
    assert newest_adapter([], "plain") is None
    cols = {s.name: s.model for s in classic_presets("support")}
    assert cols["fine_tuned"] == LATEST_ADAPTER and cols["fine_tuned_rag"] == LATEST_RAFT_ADAPTER


def test_every_way_into_training_drops_rows_that_leak_the_evaluation_set(data_dir):
    """The page hands runner.create_run the raw upload: the run folder must still hold only the variant's rows
    (no evaluation question, reference or evidence), exactly as the CLI path gives."""
    import json

    from core.finetune import runner
    from core.scenario import scenario_questions

    raw = load_file(TRAIN)
    expected, rep = apply_data_variant(load_file(TRAIN), "plain")
    assert rep.dropped                                          # the sample transcripts do hold some
    run = runner.create_run(preset_spec("quick").replace(data=str(TRAIN)), raw)
    rows = [json.loads(x) for f in ("train.jsonl", "val.jsonl")
            for x in (run.dir / "data" / f).read_text().splitlines() if x.strip()]
    assert len(rows) == len(expected.rows) < len(raw.rows)
    text = json.dumps(rows, ensure_ascii=False)
    for q in scenario_questions():
        assert q.question not in text and (not q.evidence or q.evidence not in text)
    assert run.spec["data_summary"]["variant"]["variant"] == "plain"


def test_the_cli_gives_raft_the_sequence_length_its_rows_need():
    import argparse

    from core.finetune.cli import _spec_from_args

    def args(**kw):
        base = {f: None for f in JobSpec.__dataclass_fields__}
        return argparse.Namespace(**{**base, "preset": "quick", "data": "t.jsonl", **kw})

    assert preset_spec("quick").max_seq_len < 512
    assert _spec_from_args(args(data_variant="raft")).max_seq_len == 512
    assert _spec_from_args(args(data_variant="raft", max_seq_len=384)).max_seq_len == 384   # the user's wins
    assert _spec_from_args(args()).max_seq_len == preset_spec("quick").max_seq_len
