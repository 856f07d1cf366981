"""core.llm.token_memo: the embedded model's prompt token counts and rendered prompts are remembered on disk, so a
page's first render in a new process needs neither llama_cpp nor the model; every key part (model file, messages)
changes the answer, and a broken memo file costs only a recount."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.config import PROJECT_ROOT, get_settings
from core.llm import embedded, token_memo
from core.llm.registry import get_backend

MESSAGES = [{"role": "system", "content": "You are Pip, Tidewave's support assistant."},
            {"role": "user", "content": "How do I reset my password?"}]


@pytest.fixture
def fresh(data_dir):
    token_memo.forget()
    embedded.unload_all()
    yield data_dir
    token_memo.forget()


@pytest.mark.slow
def test_a_remembered_count_is_the_exact_count_and_needs_no_model(fresh):
    backend = get_backend("embedded")
    n = backend.count_tokens(MESSAGES)
    text = backend.render_prompt(MESSAGES)
    lm = backend.load()
    assert n == embedded._count_prompt(lm, MESSAGES) and text == embedded._prompt_text(lm, MESSAGES)[0]
    rows = [json.loads(x) for x in (get_settings().cache_dir / token_memo.FILE).read_text().splitlines() if x]
    assert sorted(r["kind"] for r in rows) == ["text", "tokens"]
    token_memo.forget()
    embedded.unload_all()
    assert backend.count_tokens(MESSAGES) == n and backend.render_prompt(MESSAGES) == text
    assert embedded.loaded_models() == []                       # answered from the file, no model loaded
    other = MESSAGES[:1] + [{"role": "user", "content": "How do I reset my password??"}]
    m = backend.count_tokens(other)
    assert embedded.loaded_models() != []                       # a new prompt is counted by the model
    assert m == embedded._count_prompt(backend.load(), other)


@pytest.mark.slow
def test_a_new_process_counts_a_remembered_prompt_without_importing_llama_cpp(fresh):
    n = get_backend("embedded").count_tokens(MESSAGES)
    code = ("import json, sys\nfrom core.llm.registry import get_backend\n"
            f"n = get_backend('embedded').count_tokens({MESSAGES!r})\n"
            "print(json.dumps([n, 'llama_cpp' in sys.modules]))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, WORKBENCH_DATA=str(fresh)))
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == [n, False]


def test_the_key_holds_the_model_digest_and_the_messages_and_bad_lines_are_skipped(data_dir):
    token_memo.forget()
    calls = []

    def compute(v):
        return lambda: calls.append(v) or v

    assert token_memo.remembered("sha256:a", "tokens", MESSAGES, compute(7)) == 7
    assert token_memo.remembered("sha256:a", "tokens", MESSAGES, compute(8)) == 7     # remembered
    assert token_memo.remembered("sha256:b", "tokens", MESSAGES, compute(9)) == 9     # another model file
    assert token_memo.remembered("sha256:a", "tokens", MESSAGES[1:], compute(3)) == 3  # other messages
    assert calls == [7, 9, 3]
    path = get_settings().cache_dir / token_memo.FILE
    key = token_memo.memo_key("sha256:c", "tokens", MESSAGES)
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"key": "cut off\n')
        fh.write(json.dumps({"key": key, "kind": "tokens", "value": "not a number"}) + "\n")
    token_memo.forget()
    assert token_memo.remembered("sha256:a", "tokens", MESSAGES, compute(0)) == 7     # the good lines still read
    assert token_memo.remembered("sha256:c", "tokens", MESSAGES, compute(5)) == 5     # the mistyped one ignored
    with pytest.raises(ValueError):
        token_memo.remembered("sha256:a", "bogus", MESSAGES, compute(1))
    token_memo.forget()
