"""JSON output of a model: the one extractor and schema check (Prompt Lab, Compare scores, the CLI).

What counts as "the reply's JSON", in this order:
1. the whole reply (stripped) when it parses;
2. else the first fenced code block (```json, ```JSON or a bare ```) that parses;
3. else the first top-level JSON value embedded in the prose, read from its opening bracket with trailing text
   ignored - an object `{...}` is preferred over an array `[...]`, because prose brackets such as citation
   markers "[1]" are arrays too. An array is taken only when the prose holds no object.

A reply nested too deeply for the JSON reader is not JSON (never a crash). Schema checks use the validator
that the schema's `$schema` names (default: draft 2020-12) and report the best-matching error with its path.
"""
from __future__ import annotations

import json
import re
from typing import Any

_FENCE_RE = re.compile(r"```[ \t]*(?:json)?[ \t]*\r?\n?(.*?)```", re.S | re.I)
_DECODER = json.JSONDecoder()


class NotJSON(ValueError):
    """The reply holds no JSON value; the message says why (empty, where parsing failed, nested too deeply)."""


NESTED_TOO_DEEP = "nested too deeply to read (more levels of [ and { than the JSON reader allows)"


def loads(text: str | bytes) -> Any:
    """json.loads for untrusted text (model output, server replies, uploaded lines, files a user can edit).

    json's C scanner recurses once per nesting level, so `[[[[...]]]]` raises RecursionError -- not a ValueError,
    so it escaped every `except ValueError` of the callers and crashed the page or worker. Here it is NotJSON (a
    ValueError) saying so; invalid JSON still raises json.JSONDecodeError (also a ValueError) with its line and
    column."""
    try:
        return json.loads(text)
    except RecursionError:
        raise NotJSON(NESTED_TOO_DEEP) from None


_loads = loads


def _embedded_values(text: str):
    """Top-level JSON objects/arrays inside prose, in order (a value nested in another is not yielded again)."""
    i, n = 0, len(text)
    while i < n:
        j = min((k for k in (text.find("{", i), text.find("[", i)) if k >= 0), default=-1)
        if j < 0:
            return
        try:
            value, end = _DECODER.raw_decode(text, j)
        except RecursionError:
            raise NotJSON(NESTED_TOO_DEEP) from None
        except json.JSONDecodeError:
            i = j + 1
            continue
        yield value
        i = end


def extract_json(text: str) -> Any:
    """The JSON value of a model reply (see the module doc for the rules). Raises NotJSON (a ValueError)."""
    s = (text or "").strip()
    if not s:
        raise NotJSON("the reply is empty")
    try:
        return _loads(s)
    except json.JSONDecodeError as exc:
        first = exc
    for m in _FENCE_RE.finditer(s):
        try:
            return _loads(m.group(1).strip())
        except json.JSONDecodeError:
            continue
    first_array = None
    for v in _embedded_values(s):
        if isinstance(v, dict):
            return v
        if first_array is None and isinstance(v, list):
            first_array = v
    if first_array is not None:
        return first_array
    raise NotJSON(f"no JSON found ({first.msg} at line {first.lineno}, column {first.colno})")


def validator_cls(schema: dict):
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for
    return validator_for(schema, default=Draft202012Validator)


def schema_problem(schema: Any) -> str | None:
    """None when `schema` is a valid JSON Schema, else what is wrong with it and where."""
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        return f"a JSON schema must be a JSON object (got {type(schema).__name__})"
    try:
        validator_cls(schema).check_schema(schema)
    except RecursionError:
        return "nested too deeply to check"
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        return f"invalid at {where}: {exc.message}"
    return None


def validate_json_output(text: str, schema: dict | None) -> tuple[bool, str | None, Any]:
    """(ok, error, parsed). ok is True when the reply holds JSON that matches `schema` (any JSON if None)."""
    from jsonschema.exceptions import SchemaError, best_match

    try:
        parsed = extract_json(text)
    except NotJSON as exc:
        return False, f"Not valid JSON: {exc}.", None
    if schema is None:
        return True, None, parsed
    problem = schema_problem(schema)
    if problem:
        return False, f"The JSON schema itself is invalid: {problem}", parsed
    try:
        validator = validator_cls(schema)(schema)
        err = best_match(validator.iter_errors(parsed))
    except SchemaError as exc:
        return False, f"The JSON schema itself is invalid: {exc.message}", parsed
    except RecursionError:
        return False, "The JSON is nested too deeply to check against the schema.", parsed
    if err is None:
        return True, None, parsed
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    return False, f"Does not match the schema at {where}: {err.message}", parsed


__all__ = ["NotJSON", "loads", "NESTED_TOO_DEEP", "extract_json", "validate_json_output", "schema_problem", "validator_cls"]
