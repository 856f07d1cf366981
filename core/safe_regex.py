"""Regular expressions that come from files (question `patterns`, scenario voice checks) and run on every answer.

Such a pattern is untrusted input: `(a+)+$` backtracks for ever on a long answer and would hang a whole comparison
run. Patterns here are compiled with a length cap and run with a time limit, using the `regex` module (its
matcher checks a deadline while it backtracks; the standard `re` cannot be interrupted). `regex` in its default
VERSION0 mode accepts the same syntax as `re`.

- `compile_pattern(p)`: the parse-time check. Raises PatternError (also a ValueError) for an empty, over-long or
  invalid pattern, so a line-by-line parser reports it as "line N: ...".
- `search(p, text)`: True/False, or PatternError when the match took longer than the limit.
"""
from __future__ import annotations

import re
from functools import lru_cache

import regex

from core.errors import PatternError

MAX_PATTERN_CHARS = 500          # longer patterns are refused at load time
MATCH_TIMEOUT_S = 0.25           # per search on one answer
QUESTION_FLAGS = re.I | re.M     # a question's `patterns` match case-insensitively, ^/$ per line (scores + loader)
MAX_SUBJECT_CHARS = 200_000      # an answer longer than this is searched in its first part only

# re flag -> regex flag (the values happen to be equal today; map them explicitly anyway)
_FLAGS = {re.I: regex.I, re.M: regex.M, re.S: regex.S, re.X: regex.X, re.A: regex.A}


def _to_regex_flags(flags: int) -> int:
    out = 0
    for re_flag, rx_flag in _FLAGS.items():
        if flags & re_flag:
            out |= rx_flag
    return out


def flags_from_letters(letters: str) -> int:
    """"ims" -> re.I | re.M | re.S (the `flags` string of a voice check); unknown letters are ignored."""
    f = 0
    for ch, val in (("i", re.I), ("m", re.M), ("s", re.S), ("x", re.X), ("a", re.A)):
        if ch in (letters or ""):
            f |= val
    return f


def _short(pattern: str, n: int = 60) -> str:
    return pattern if len(pattern) <= n else pattern[:n] + "…"


@lru_cache(maxsize=1024)
def _compile(pattern: str, flags: int):
    return regex.compile(pattern, _to_regex_flags(flags) | regex.VERSION0)


def compile_pattern(pattern, flags: int = 0):
    """The compiled pattern, or PatternError saying what is wrong with it."""
    if not isinstance(pattern, str):
        raise PatternError(f"invalid pattern {pattern!r}: it must be a string")
    if not pattern:
        raise PatternError("invalid pattern '': an empty regular expression would match every answer")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"invalid pattern {_short(pattern)!r}: {len(pattern)} characters long; the limit is "
                           f"{MAX_PATTERN_CHARS}")
    try:
        return _compile(pattern, flags)
    except (regex.error, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        raise PatternError(f"invalid pattern {_short(pattern)!r}: not a valid regular expression ({exc})") from exc


def search(pattern, text: str, flags: int = 0, timeout: float = MATCH_TIMEOUT_S) -> bool:
    """Whether `pattern` matches somewhere in `text`. PatternError when invalid or slower than `timeout` seconds."""
    rx = compile_pattern(pattern, flags)
    subject = (text or "")[:MAX_SUBJECT_CHARS]
    try:
        return rx.search(subject, timeout=timeout) is not None
    except TimeoutError as exc:
        raise PatternError(f"pattern {_short(pattern)!r} took more than {timeout:g} s on one answer and was "
                           "stopped (catastrophic backtracking, e.g. nested quantifiers like (a+)+); "
                           "rewrite it") from exc
