"""core.safe_regex: patterns from files are length-capped, checked at load time and time-limited at match time."""
from __future__ import annotations

import re
import time

import pytest

from core import safe_regex
from core.errors import PatternError

EVIL = r"(a|aa)+$"                 # exponential backtracking in both `re` and `regex`
EVIL_SUBJECT = "a" * 60 + "!"


def test_ordinary_patterns_behave_like_re():
    for pat, text, flags in [(r"TW-\d{4}", "Order TW-4020 failed", 0), (r"^refund", "x\nRefund due", re.I | re.M),
                             (r"a.b", "a\nb", re.S), (r"(?<!\w)SMS(?!\w)", "SMS codes", 0)]:
        assert safe_regex.search(pat, text, flags) == (re.search(pat, text, flags) is not None)
    assert safe_regex.flags_from_letters("ims") == re.I | re.M | re.S


def test_invalid_empty_and_long_patterns_are_pattern_errors_and_value_errors():
    for pat, words in [("(", "not a valid regular expression"), ("", "empty"),
                       ("a" * (safe_regex.MAX_PATTERN_CHARS + 1), "characters long"), (42, "must be a string")]:
        with pytest.raises(PatternError, match=words) as exc:
            safe_regex.compile_pattern(pat)
        assert isinstance(exc.value, ValueError)      # a line-by-line parser reports it as "line N: ..."


def test_catastrophic_backtracking_is_stopped_within_the_limit():
    t0 = time.perf_counter()
    with pytest.raises(PatternError, match="took more than 0.2 s"):
        safe_regex.search(EVIL, EVIL_SUBJECT, timeout=0.2)
    assert time.perf_counter() - t0 < 5
    assert safe_regex.search(EVIL, "aaaa") is True          # the same pattern on a harmless answer still works


def test_scores_use_the_limit(monkeypatch):
    from core.compare import scores
    from core.compare.questions import VoiceCheck

    t0 = time.perf_counter()
    s = scores.patterns(EVIL_SUBJECT, [r"a", EVIL])
    assert s.value is None and "took more than" in s.reason
    v = scores.voice(EVIL_SUBJECT, [VoiceCheck(name="evil", pattern=EVIL, description="", tags=[], flags="i")])
    assert v.value is None and "voice check evil" in v.reason and "took more than" in v.reason
    assert time.perf_counter() - t0 < 10
    ok = scores.voice("Thanks for asking!", [VoiceCheck(name="thanks", pattern=r"^thanks", description="",
                                                        tags=[], flags="i")])
    assert ok.value == 1.0
