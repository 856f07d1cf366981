"""Dataset reading: format detection, conversion to one chat form, per-line problems, lengths, split."""
from __future__ import annotations

import json

import pytest

from core.errors import DatasetError
from core.finetune import datasets as D
from tests.finetune.ft_helpers import BAD, ROOT

FT = ROOT / "sample_docs" / "finetune"


def test_three_formats_detected_and_converted_to_the_same_chat():
    chat = D.load_file(FT / "train.chat.jsonl")
    alpaca = D.load_file(FT / "train.alpaca.jsonl")
    sharegpt = D.load_file(FT / "train.sharegpt.jsonl")
    assert (chat.format, alpaca.format, sharegpt.format) == ("chat", "alpaca", "sharegpt")
    assert chat.ok and alpaca.ok and sharegpt.ok
    assert len(chat.rows) == len(sharegpt.rows) == len(alpaca.rows) > 100
    # same transcripts: ShareGPT converts to exactly the chat rows; Alpaca has the same user/assistant turns
    assert [r["messages"] for r in sharegpt.rows] == [r["messages"] for r in chat.rows]
    for a, c in zip(alpaca.rows[:20], chat.rows[:20]):
        assert a["messages"][-1] == c["messages"][-1]
        assert a["messages"][-2]["role"] == "user"


def test_malformed_jsonl_reported_by_line():
    ds = D.load_file(BAD / "malformed.jsonl")
    assert not ds.ok
    assert [p.line for p in ds.errors] == [3]
    assert "not valid JSON" in ds.errors[0].message
    with pytest.raises(DatasetError) as ei:
        ds.raise_for_problems()
    assert "line 3" in str(ei.value) and ei.value.problems[0][0] == 3


def test_mixed_formats_flag_the_minority_rows():
    ds = D.load_file(BAD / "mixed_formats.jsonl")
    raw = [json.loads(x) for x in (BAD / "mixed_formats.jsonl").read_text().splitlines() if x.strip()]
    minority_lines = [i + 1 for i, r in enumerate(raw) if D.detect_row_format(r) != ds.format]
    assert minority_lines and [p.line for p in ds.errors] == minority_lines
    assert all("one format per file" in p.message for p in ds.errors)


def test_empty_dataset_is_a_clear_error(tmp_path):
    for content in ["", "\n\n  \n"]:
        p = tmp_path / "empty.jsonl"
        p.write_text(content)
        ds = D.load_file(p)
        with pytest.raises(DatasetError, match="no usable rows"):
            ds.raise_for_problems()
    with pytest.raises(DatasetError, match="no usable rows"):
        D.load_file(BAD / "empty.txt").raise_for_problems()


def test_binary_and_non_utf8_files_rejected():
    with pytest.raises(DatasetError, match="UTF-8|binary"):
        D.load_file(BAD / "binary.pdf")
    with pytest.raises(DatasetError, match="UTF-8"):
        D.load_file(BAD / "not_utf8.txt")


def test_row_level_problems(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Ahoy!"}]},      # ok
        {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]},                # role
        {"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "x"}]},        # empty
        {"messages": [{"role": "user", "content": "hi"}]},                                                 # no answer
        {"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]},           # order
        {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"},
                      {"role": "assistant", "content": "b"}]},                                             # system pos
        {"foo": 1},                                                                                        # unknown
        [1, 2],                                                                                            # not obj
    ]
    p = tmp_path / "rows.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = D.load_file(p)
    by_line = {}
    for prob in ds.errors:
        by_line.setdefault(prob.line, []).append(prob.message)
    assert 1 not in by_line and len(ds.rows) == 1
    assert "unknown role 'bot'" in by_line[2][0]
    assert "is empty" in by_line[3][0]
    assert any("last turn must be the assistant" in m for m in by_line[4])
    assert any("alternate" in m for m in by_line[5])
    assert any("system message first" in m for m in by_line[6])
    assert "unrecognised row" in by_line[7][0] and "unrecognised row" in by_line[8][0]


def test_alpaca_and_sharegpt_row_problems(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps({"instruction": "", "output": "x"}) + "\n" +
                 json.dumps({"instruction": "q", "input": "ctx", "output": "a", "system": "S"}) + "\n")
    ds = D.load_file(p)
    assert [x.line for x in ds.errors] == [1] and "instruction" in ds.errors[0].message
    assert ds.rows[0]["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "q\n\nctx"},
                                      {"role": "assistant", "content": "a"}]
    p2 = tmp_path / "s.jsonl"
    p2.write_text(json.dumps({"conversations": [{"from": "alien", "value": "x"}]}) + "\n")
    assert "unknown speaker" in D.load_file(p2).errors[0].message


def test_csv_alpaca_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('instruction,input,output\n"How do I export?",,"Ahoy there!\n1. Go\n2. Click"\n,x,\n')
    ds = D.load_file(p)
    assert ds.format == "alpaca" and len(ds.rows) == 1
    assert ds.rows[0]["messages"][-1]["content"].startswith("Ahoy there!")
    assert ds.errors and ds.errors[0].line == 5          # csv line numbers count the multi-line cell


def test_split_is_deterministic_and_disjoint():
    rows = [{"messages": [], "line": i} for i in range(20)]
    tr, va = D.split(rows, 0.2, seed=1)
    tr2, va2 = D.split(rows, 0.2, seed=1)
    assert (tr, va) == (tr2, va2) and len(va) == 4 and len(tr) == 16
    assert not {r["line"] for r in tr} & {r["line"] for r in va}
    assert D.split(rows[:2], 0.1)[1] and D.split(rows, 0.0)[1] == []


@pytest.mark.slow
def test_too_long_rows_measured_with_the_model_tokenizer(hf_base):
    ds = D.load_file(FT / "train.chat.jsonl")
    tok = D.load_tokenizer("smollm2-135m-instruct")
    lengths = D.check_lengths(ds, D.token_counter(tok), max_seq_len=120)
    too_long = [r["line"] for r, n in zip(ds.rows, lengths) if n > 120]
    assert too_long and [p.line for p in ds.errors] == too_long
    assert "too long" in ds.errors[0].message and "max sequence length is 120" in ds.errors[0].message
    # the count is the chat-template rendering, not the raw text
    row = ds.rows[0]["messages"]
    rendered = D.render_preview(row, tok)
    assert rendered.startswith("<|im_start|>system") and rendered.rstrip().endswith("<|im_end|>")
    assert lengths[0] == len(tok(rendered, add_special_tokens=False)["input_ids"])
    # raising the limit clears the problems
    D.check_lengths(ds, D.token_counter(tok), max_seq_len=4096)
    assert ds.ok


@pytest.mark.slow
def test_light_token_tools_measure_and_preview_without_torch():
    """The page validates lengths through llama.cpp's tokenizer for the packaged model (no torch import): the
    preview is the ChatML text ending with the assistant's turn, and the count matches the embedded backend."""
    import subprocess
    import sys
    code = (
        "import json, sys\n"
        "from core.finetune.datasets import light_token_tools\n"
        "count, preview = light_token_tools('smollm2-135m-instruct')\n"
        "m = [{'role': 'system', 'content': 'Be Pip.'}, {'role': 'user', 'content': 'Hi?'},"
        " {'role': 'assistant', 'content': 'Ahoy there!'}]\n"
        "print(json.dumps({'n': count(m), 'text': preview(m), 'torch': 'torch' in sys.modules}))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["torch"] is False
    assert out["text"].endswith("<|im_start|>assistant\nAhoy there!<|im_end|>\n")
    assert out["text"].startswith("<|im_start|>system\nBe Pip.<|im_end|>")
    assert 15 < out["n"] < 40
    assert D.light_token_tools("/some/local/hf-folder") is None     # other bases need the HF tokenizer
