"""core.scenario: the scenario file and the one strict question parser (bad lines by number, nested JSON)."""
from __future__ import annotations

import json

import pytest

from core import scenario as S
from core.errors import DatasetError, ScenarioError
from core.rag import evaluate


def test_bad_lines_are_reported_by_number_and_file(tmp_path):
    path = tmp_path / "my_questions.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "a", "question": "Fine?"}),
        "{not json",
        json.dumps({"id": "b", "question": "   "}),
        "",
        json.dumps({"id": "a", "question": "Same id again?"}),
        json.dumps({"question": "Tags wrong?", "tags": {"x": 1}}),
    ]), encoding="utf-8")
    with pytest.raises(DatasetError) as err:
        S.load_questions(path)
    e = err.value
    assert e.filename == "my_questions.jsonl"
    assert [ln for ln, _ in e.problems] == [2, 3, 5, 6]
    msg = str(e)
    assert msg.startswith("my_questions.jsonl has 4 bad line(s)")
    assert "line 2: not valid JSON" in msg and "line 3: missing field `question`" in msg
    assert "line 5: duplicate id 'a'" in msg and "line 6: `tags` must be a list" in msg


@pytest.mark.parametrize("nested", ["[" * 100_000 + "]" * 100_000,
                                    '{"question": "deep?", "tags": ' + "[" * 50_000 + "]" * 50_000 + "}",
                                    '{"question": "x", "json_schema": "' + "[" * 50_000 + '"}'])
def test_deeply_nested_json_line_is_a_bad_line_with_its_number(nested):
    data = json.dumps({"id": "ok", "question": "Fine?"}) + "\n" + nested + "\n"
    with pytest.raises(DatasetError) as err:
        S.parse_questions(data, "deep.jsonl")
    (line, msg), = err.value.problems
    assert line == 2 and "nested too deeply" in msg, msg
    assert "deep.jsonl" in str(err.value) and "line 2" in str(err.value)


def test_deep_nesting_on_the_line_itself_names_the_nesting():
    with pytest.raises(DatasetError, match=r"line 1: nested too deeply"):
        S.parse_questions("[" * 100_000 + "]" * 100_000, "deep.jsonl")


def test_csv_bad_row_has_its_line_number():
    data = "id,question,patterns\nc1,How much?,\\d+\nc2,What now?,(unclosed\n"
    with pytest.raises(DatasetError) as err:
        S.parse_questions(data, "set.csv")
    assert [ln for ln, _ in err.value.problems] == [3]
    assert "not a valid regular expression" in str(err.value)


def test_missing_file_is_a_typed_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        S.load_questions(tmp_path / "nope.jsonl")


def test_every_reader_uses_the_same_strict_rules(tmp_path):
    """Retrieval evaluation and the Compare/Prompt Lab question sets refuse the same bad file the same way (the
    Prompt Lab used to skip bad lines silently)."""
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "a", "evidence": "b"}) + "\n" + "[" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2"):
        evaluate.load_questions(path)
    with pytest.raises(DatasetError, match="line 2"):
        S.load_questions(path)
    with pytest.raises(DatasetError, match="line 2"):
        evaluate.parse_questions(path.read_bytes(), "q.jsonl")


def test_the_sample_scenario():
    sc = S.load_scenario()
    assert sc.product == "Tidewave" and sc.collection == "support"
    assert sc.questions_path.is_file() and sc.knowledge_dir.is_dir() and sc.prompts_dir.is_dir()
    assert sc.finetune["train"].is_file() and sc.finetune["heldout"].is_file()
    assert set(sc.finetune_formats) == {"alpaca", "sharegpt"}
    assert sc.prompt_values()["product"] == "Tidewave" and "voice_checks" not in sc.prompt_values()
    qs = S.scenario_questions()
    assert len(qs) >= 40 and len({q.id for q in qs}) == len(qs)
    assert S.scenario_questions(limit=2) == qs[:2]


@pytest.mark.parametrize("text, match", [
    ("product: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    ("voice_checks:\n  - name: g\n    pattern: '(unclosed'\n", "invalid regex"),
    ("voice_checks:\n  - name: g\n", "needs a `pattern`"),
    ("finetune: [a, b]\n", "must map names to file paths"),
])
def test_invalid_scenario_files_raise_scenario_error(tmp_path, text, match):
    p = tmp_path / "scenario.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=match):
        S.load_scenario(p)


def test_scenario_paths_are_relative_to_its_file(tmp_path):
    (tmp_path / "qs").mkdir()
    (tmp_path / "qs" / "set.jsonl").write_text(json.dumps({"question": "Hello?"}) + "\n", encoding="utf-8")
    p = tmp_path / "scenario.yaml"
    p.write_text("product: Acme\ncollection: acme\nquestions: qs/set.jsonl\n", encoding="utf-8")
    sc = S.load_scenario(p)
    assert sc.collection == "acme" and [q.id for q in sc.questions()] == ["q1"]
    (tmp_path / "qs" / "set.jsonl").unlink()
    with pytest.raises(DatasetError, match="missing"):
        sc.questions()


# ---- question / voice-check patterns: compiled by core.safe_regex, the same path the scores use ------------------
def test_question_patterns_are_checked_like_the_scores_run_them(monkeypatch):
    from core import safe_regex
    from core.compare import scores

    long_pattern = "a" * (safe_regex.MAX_PATTERN_CHARS + 1)
    data = "\n".join(json.dumps(r) for r in [
        {"id": "q1", "question": "Ok?", "patterns": ["monthly"]},
        {"id": "q2", "question": "Too long?", "patterns": [long_pattern]},
        {"id": "q3", "question": "Invalid?", "patterns": ["(unclosed"]}])
    with pytest.raises(DatasetError) as err:
        S.parse_questions(data, "set.jsonl")
    problems = dict(err.value.problems)
    assert sorted(problems) == [2, 3]
    assert "characters long" in problems[2] and "not a valid regular expression" in problems[3]
    # one compile path: what the loader accepted, the scores find in the same cache (no second compile)
    calls = []
    real = safe_regex._compile.__wrapped__
    safe_regex._compile.cache_clear()
    monkeypatch.setattr(safe_regex, "_compile", __import__("functools").lru_cache(maxsize=64)(
        lambda p, f: calls.append((p, f)) or real(p, f)))
    q = S.parse_questions(json.dumps({"id": "q1", "question": "Ok?", "patterns": ["month(ly)?"]}), "ok.jsonl")[0]
    assert scores.patterns("It resets monthly.", q.patterns).value == 1.0
    assert calls == [("month(ly)?", safe_regex.QUESTION_FLAGS)]


def test_voice_check_pattern_over_the_cap_is_a_scenario_error(tmp_path):
    from core import safe_regex
    p = tmp_path / "scenario.yaml"
    p.write_text("voice_checks:\n  - name: g\n    pattern: '" + "b" * (safe_regex.MAX_PATTERN_CHARS + 1) + "'\n",
                 encoding="utf-8")
    with pytest.raises(ScenarioError, match="invalid regex.*characters long"):
        S.load_scenario(p)
