"""Deeply nested JSON is bad input with a line number (json.loads raises RecursionError, not ValueError), and the
dataset writer replaces its file atomically."""
from __future__ import annotations

import json

import pytest

from core.finetune import datasets

GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]})
DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_jsonl_line_is_a_problem_on_its_line():
    ds = datasets.parse_text("\n".join([GOOD, '{"messages": ' + DEEP + "}", GOOD]), "train.jsonl")
    assert len(ds.rows) == 2
    assert [(p.line, "nested too deeply" in p.message) for p in ds.errors] == [(2, True)]
    with pytest.raises(datasets.DatasetError, match="line 2: the JSON is nested too deeply"):
        ds.raise_for_problems()


def test_deeply_nested_json_array_and_csv_cell():
    ds = datasets.parse_text("[\n" + GOOD + ",\n" + DEEP + "\n]", "train.json")
    assert ds.errors and ds.errors[0].line == 3 and "nested too deeply" in ds.errors[0].message
    deep = "[" * 20_000 + "]" * 20_000                      # under the csv module's 128 KiB cell limit
    ds = datasets.parse_text('messages\n"' + deep + '"\n', "train.csv")
    assert any("nested too deeply" in p.message and p.line == 2 for p in ds.errors)
    ds = datasets.parse_text('messages\n"' + DEEP + '"\n', "train.csv")   # over it: a csv.Error, also by line
    assert ds.errors and "not readable as CSV" in ds.errors[0].message


def test_parse_bytes_never_raises_recursion_error():
    ds = datasets.parse_bytes(("\n".join([GOOD] * 3 + [DEEP])).encode(), "x.jsonl")
    assert len(ds.rows) == 3 and ds.errors[0].line == 4


def test_write_jsonl_is_atomic(tmp_path):
    target = tmp_path / "train.jsonl"
    datasets.write_jsonl([{"a": 1}], target)
    assert datasets.read_jsonl(target) == [{"a": 1}]

    class Boom:
        pass

    with pytest.raises(TypeError):
        datasets.write_jsonl([{"a": 2}, {"b": Boom()}], target)     # fails half-way through the rows
    assert datasets.read_jsonl(target) == [{"a": 1}]                  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]    # no temp file left behind
