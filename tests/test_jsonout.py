"""core.jsonout: the one JSON-output extractor. The replies below are ones the Prompt Lab's old extractor and
Compare's old one judged differently; now both pages read them the same way."""
from __future__ import annotations

import pytest

from core.compare import scores as S
from core.jsonout import NotJSON, extract_json, validate_json_output
from core.prompts import run

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"},
                                           "citations": {"type": "array", "items": {"type": "integer"}}},
          "required": ["answer"]}
ARRAY_SCHEMA = {"type": "array", "items": {"type": "integer"}}

# (reply, schema, valid?, parsed) - comments say what the old Prompt Lab (PL) / Compare (CMP) paths said
DISAGREED = [
    # a citation marker before the object: PL parsed "[1]" as the JSON (schema mismatch), CMP found the object
    ('See [1].\n{"answer": "7 days", "citations": [1]}', SCHEMA, True, {"answer": "7 days", "citations": [1]}),
    # prose with braces after the object: CMP cut from the first "{" to the last "}" (not JSON), PL found it
    ('{"answer": "7 days"}\nAnything else about {your team}? Smooth sailing!', SCHEMA, True, {"answer": "7 days"}),
    # two objects in a row: CMP's outermost slice was not JSON, PL took the first
    ('{"answer": "first"}\n{"answer": "second"}', SCHEMA, True, {"answer": "first"}),
    # an array in prose: PL found it, CMP only looked for objects
    ("The passages are: [1, 3]", ARRAY_SCHEMA, True, [1, 3]),
]


@pytest.mark.parametrize("reply, schema, valid, parsed", DISAGREED)
def test_replies_the_old_paths_disagreed_on(reply, schema, valid, parsed):
    ok, err, got = validate_json_output(reply, schema)
    assert ok is valid, err
    if valid:
        assert got == parsed and err is None
    # Compare's score and the Prompt Lab's badge now give the same verdict
    assert S.json_valid(reply, schema).value == (1.0 if valid else 0.0)
    assert run.validate_json_output is validate_json_output


def test_fenced_blocks():
    assert extract_json('Sure!\n```Json\n{"answer": "ok"}\n```') == {"answer": "ok"}
    assert extract_json('```\n[1, 2]\n```') == [1, 2]
    assert extract_json('```json\n{broken\n```\nthen {"answer": "later"}') == {"answer": "later"}


def test_prose_citation_is_an_array_only_when_no_object_is_there():
    assert extract_json("It costs 10 euros [2].") == [2]
    assert extract_json('[2] says {"answer": "x"}') == {"answer": "x"}
    assert extract_json('Here: [{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]   # the outer array, not its items


@pytest.mark.parametrize("reply", ["[" * 100_000 + "]" * 100_000,
                                   'Sure: {"a": ' + "[" * 50_000 + "]" * 50_000 + "}",
                                   "```json\n" + "{\"a\": " * 20_000 + "1" + "}" * 20_000 + "\n```"])
def test_deeply_nested_reply_is_not_json_instead_of_a_crash(reply):
    with pytest.raises(NotJSON, match="nested too deeply"):
        extract_json(reply)
    ok, err, parsed = validate_json_output(reply, SCHEMA)
    assert not ok and parsed is None and "nested too deeply" in err
    score = S.json_valid(reply, SCHEMA)
    assert score.value == 0.0 and "nested too deeply" in score.reason


def test_empty_and_plain_text():
    with pytest.raises(NotJSON, match="empty"):
        extract_json("  ")
    with pytest.raises(NotJSON, match="no JSON found"):
        extract_json("1. Open settings\n2. Click resend {name}")
    assert extract_json("42") == 42                     # a bare JSON scalar is JSON when it is the whole reply


def test_invalid_schema_is_not_a_verdict_on_the_reply():
    bad = {"type": "objekt"}
    assert S.json_valid('{"answer": "x"}', bad).value is None
    ok, err, _ = validate_json_output('{"answer": "x"}', bad)
    assert not ok and "schema itself is invalid" in err


# ---- every JSON reader of untrusted text goes through core.jsonout.loads (issue 14) ------------------------------
DEEP = "[" * 100_000 + "]" * 100_000


def test_loads_turns_recursion_into_not_json():
    import json

    from core.jsonout import loads
    with pytest.raises(NotJSON, match="nested too deeply"):
        loads(DEEP)
    with pytest.raises(json.JSONDecodeError):       # plain bad JSON keeps its line and column
        loads("{nope")
    assert loads('{"a": [1]}') == {"a": [1]}


@pytest.mark.parametrize("reply", [DEEP, '{"score": ' + DEEP + "}", "Grade: {" + DEEP[:50_000]])
def test_judge_reply_nested_too_deeply_is_na_not_a_crash(reply):
    from core.compare.judge import parse_judge_reply
    s = parse_judge_reply(reply)
    assert s.value is None and s.reason.startswith("judge "), s.reason


def test_judge_score_nested_below_the_reader_limit_is_named_not_a_crash():
    from core.compare.judge import parse_judge_reply
    s = parse_judge_reply('{"score": ' + "[" * 900 + "]" * 900 + "}")
    assert s.value is None and "integer 1-5" in s.reason and len(s.reason) < 200


def test_schema_nested_too_deeply_is_a_clear_problem():
    import json

    from core.jsonout import schema_problem
    deep_schema = json.loads('{"not": ' * 600 + "{}" + "}" * 600)     # readable, too deep to check
    assert "nested too deeply" in (schema_problem(deep_schema) or "")
    with pytest.raises(run.InvalidSchema, match="nested too deeply"):
        run.parse_schema_text(DEEP)


def test_prompt_files_nested_too_deeply_are_prompt_errors(tmp_path):
    from core.errors import PromptError
    from core.prompts.library import PromptLibrary, load_spec_file

    for name, text in (("deep.json", DEEP), ("deep.yaml", "a: " + DEEP)):
        (tmp_path / name).write_text(text)
        with pytest.raises(PromptError, match="nested too deeply|Cannot read"):
            load_spec_file(tmp_path / name)
    lib = PromptLibrary(tmp_path / "lib")
    (tmp_path / "lib" / "p").mkdir(parents=True)
    (tmp_path / "lib" / "p" / "labels.json").write_text(DEEP)
    assert lib.labels_of("p") == {}                   # reported as unreadable, not a crash


def test_ratings_line_nested_too_deeply_is_skipped_and_counted(tmp_path):
    from core.compare import ratings as R
    R.ratings_path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    R.ratings_path(tmp_path).write_text(DEEP + "\n")
    assert R.history(tmp_path) == ([], 1)
