"""Checks for the Tidewave demo scenario in sample_docs/ and the bad-input fixtures (issue 3).

Fast: no model is loaded. Regenerate the derived files with scripts/make_sample_docs.py.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_docs"
KNOWLEDGE = SAMPLE / "knowledge"
FINETUNE = SAMPLE / "finetune"
PROMPTS = SAMPLE / "prompts"
BAD = ROOT / "tests" / "fixtures" / "bad"

TAGS = {"fact_lookup", "updated_fact", "brand_voice", "out_of_scope", "reasoning"}
DOC_EXTS = {".md", ".txt", ".html", ".pdf", ".docx"}
QUESTION_KEYS = {"id", "question", "reference", "tags", "source", "evidence", "keywords"}
PROMPT_KEYS = {"name", "description", "system", "template", "examples", "chain_of_thought", "params", "json_schema"}
PARAM_KEYS = {"temperature", "top_p", "max_tokens", "seed", "stop"}
REQUIRED_PROMPTS = {"zero_shot", "few_shot", "chain_of_thought", "guardrail", "guardrail_json"}


# ---------------------------------------------------------------- helpers
def norm(text: str) -> str:
    return " ".join(text.split())


class _TagStripper(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def extract_text(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".md", ".txt"):
        return path.read_text(encoding="utf-8")
    if ext == ".html":
        p = _TagStripper()
        p.feed(path.read_text(encoding="utf-8"))
        return " ".join(p.parts)
    if ext == ".pdf":
        from pypdf import PdfReader

        return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    if ext == ".docx":
        import docx

        return "\n".join(p.text for p in docx.Document(str(path)).paragraphs)
    raise ValueError(f"unsupported document type: {path}")


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"{path.name}:{n} is blank"
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:  # pragma: no cover - reported as a failure
            pytest.fail(f"{path.name}:{n} is not valid JSON: {e}")
    return rows


@pytest.fixture(scope="module")
def scenario() -> dict:
    from core.scenario import load_scenario      # the one reader of scenario.yaml
    return load_scenario(SAMPLE / "scenario.yaml").raw


@pytest.fixture(scope="module")
def docs() -> list[Path]:
    return sorted(p for p in KNOWLEDGE.iterdir() if p.is_file())


@pytest.fixture(scope="module")
def doc_text(docs) -> dict[str, str]:
    return {p.name: extract_text(p) for p in docs}


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return read_jsonl(SAMPLE / "eval" / "questions.jsonl")


@pytest.fixture(scope="module")
def voice_checks(scenario) -> list[tuple[str, re.Pattern]]:
    return [(c["name"], re.compile(c["pattern"])) for c in scenario["voice_checks"]]


def voice_failures(text: str, checks) -> list[str]:
    return [name for name, rx in checks if not rx.search(text)]


# ---------------------------------------------------------------- scenario.yaml
def test_scenario_contract(scenario):
    for key in ("product", "company", "collection", "knowledge_dir", "questions", "finetune", "system_prompt",
                "voice_checks"):
        assert key in scenario, key
    assert scenario["product"] == "Tidewave"
    assert scenario["collection"] == "support"
    assert (SAMPLE / scenario["knowledge_dir"]).is_dir()
    assert (SAMPLE / scenario["questions"]).is_file()
    assert (SAMPLE / scenario["finetune"]["train"]).is_file()
    assert (SAMPLE / scenario["finetune"]["heldout"]).is_file()
    for path in scenario.get("finetune_formats", {}).values():
        assert (SAMPLE / path).is_file()
    assert isinstance(scenario["system_prompt"], str) and scenario["system_prompt"].strip()
    names = [c["name"] for c in scenario["voice_checks"]]
    assert {"greeting", "numbered_steps", "signoff"} <= set(names)
    for c in scenario["voice_checks"]:
        assert set(c) == {"name", "description", "pattern"}
        re.compile(c["pattern"])


def test_voice_checks_reject_plain_answer(voice_checks):
    plain = "To reset your password, click Forgot password on the sign-in page and follow the email."
    assert voice_failures(plain, voice_checks) == [n for n, _ in voice_checks]


# ---------------------------------------------------------------- knowledge documents
def test_knowledge_docs(docs, doc_text):
    assert 15 <= len(docs) <= 30, len(docs)
    exts = Counter(p.suffix.lower() for p in docs)
    assert set(exts) <= DOC_EXTS, exts
    assert exts[".md"] and exts[".txt"] and exts[".html"], exts
    assert exts[".pdf"] >= 2, exts
    assert any("known-issues" in p.name for p in docs)
    for name, text in doc_text.items():
        words = len(text.split())
        assert 150 <= words <= 700, f"{name}: {words} words"


def test_changelog_updates_older_facts(doc_text):
    """The story of updated_fact: the old value is in an older doc, the new one in the changelog."""
    old_new = [
        ("plans-and-limits.md", "Up to 50 bookings per month", "now allows 100 bookings per month"),
        ("plans-and-limits.md", "200 SMS credits per staff member per month", "300 SMS credits per staff member"),
        ("api-and-webhooks.md", "Surge accounts may make 120 requests per minute", "from 120 to 300 requests"),
        ("pricing-sheet-2024.pdf", "Current costs €14 per staff member", "Current plan costs €15 per staff member"),
        ("mobile-app.md", "iOS 15 or later", "iOS 16 or later"),
        ("payments-and-deposits.md", "at most 50% of the service price", "up to 100% of the service price"),
    ]
    changelog = norm(doc_text["changelog.html"])
    for doc, old, new in old_new:
        assert old in norm(doc_text[doc]), (doc, old)
        assert new in changelog, new


# ---------------------------------------------------------------- evaluation questions
def test_questions_schema(questions):
    assert 40 <= len(questions) <= 60, len(questions)
    ids = [q["id"] for q in questions]
    assert len(ids) == len(set(ids)), "duplicate question ids"
    for q in questions:
        assert set(q) == QUESTION_KEYS, q["id"]
        assert re.fullmatch(r"q\d{2,3}", q["id"]), q["id"]
        assert isinstance(q["question"], str) and q["question"].strip()
        assert isinstance(q["reference"], str) and q["reference"].strip()
        assert q["tags"] and set(q["tags"]) <= TAGS, (q["id"], q["tags"])
        assert isinstance(q["keywords"], list) and all(isinstance(k, str) and k for k in q["keywords"])
        assert (q["source"] is None) == (q["evidence"] is None), q["id"]
        for k in q["keywords"]:
            assert k.lower() in q["reference"].lower(), (q["id"], k)
    per_tag = Counter(t for q in questions for t in q["tags"])
    for tag in TAGS:
        assert per_tag[tag] >= 5, per_tag


def test_evidence_occurs_in_source(questions, doc_text):
    for q in questions:
        if q["source"] is None:
            continue
        assert q["source"].startswith("knowledge/"), q["source"]
        name = q["source"].split("/", 1)[1]
        assert name in doc_text, (q["id"], q["source"])
        assert len(q["evidence"].split()) <= 60, (q["id"], "evidence too long for one chunk")
        assert norm(q["evidence"]) in norm(doc_text[name]), (q["id"], q["evidence"])


def test_updated_facts_come_from_changelog(questions):
    for q in questions:
        if "updated_fact" in q["tags"]:
            assert q["source"] == "knowledge/changelog.html", q["id"]


def test_brand_voice_references_pass_voice_checks(questions, voice_checks):
    for q in questions:
        if "brand_voice" in q["tags"]:
            assert voice_failures(q["reference"], voice_checks) == [], q["id"]


# ---------------------------------------------------------------- fine-tune data
def _check_chat(ex: dict, system_prompt: str, where: str) -> None:
    assert set(ex) == {"messages"}, where
    msgs = ex["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"], where
    for m in msgs:
        assert set(m) == {"role", "content"}, where
        assert isinstance(m["content"], str) and m["content"].strip(), where
    assert msgs[0]["content"] == system_prompt, where
    answer_words = len(msgs[2]["content"].split())
    assert answer_words <= 90, (where, answer_words)
    # SmolLM2's tokenizer gives about 4 characters per token on this text; stay well inside 256.
    approx_tokens = sum(len(m["content"]) for m in msgs) / 3.5 + 20
    assert approx_tokens <= 200, (where, approx_tokens)


def test_chat_files_validate(scenario, voice_checks):
    train = read_jsonl(FINETUNE / "train.chat.jsonl")
    held = read_jsonl(FINETUNE / "heldout.chat.jsonl")
    assert 150 <= len(train) + len(held) <= 400, (len(train), len(held))
    assert 0.10 <= len(held) / (len(train) + len(held)) <= 0.15, len(held)
    for name, rows in (("train", train), ("heldout", held)):
        for i, ex in enumerate(rows, 1):
            _check_chat(ex, scenario["system_prompt"], f"{name}:{i}")
            failed = voice_failures(ex["messages"][2]["content"], voice_checks)
            assert not failed, (f"{name}:{i}", failed)
    # the held-out split asks questions that were never answered in training
    train_users = {e["messages"][1]["content"] for e in train}
    train_answers = {e["messages"][2]["content"] for e in train}
    for e in held:
        assert e["messages"][1]["content"] not in train_users
        assert e["messages"][2]["content"] not in train_answers


def test_three_formats_hold_same_examples():
    chat = read_jsonl(FINETUNE / "train.chat.jsonl")
    alpaca = read_jsonl(FINETUNE / "train.alpaca.jsonl")
    sharegpt = read_jsonl(FINETUNE / "train.sharegpt.jsonl")
    assert len(chat) == len(alpaca) == len(sharegpt)
    frm = {"system": "system", "user": "human", "assistant": "gpt"}
    for i, (c, a, s) in enumerate(zip(chat, alpaca, sharegpt), 1):
        m = {x["role"]: x["content"] for x in c["messages"]}
        assert set(a) == {"instruction", "input", "output"}, i
        assert a == {"instruction": m["user"], "input": "", "output": m["assistant"]}, i
        assert set(s) == {"conversations"}, i
        assert [set(t) for t in s["conversations"]] == [{"from", "value"}] * 3, i
        assert [(t["from"], t["value"]) for t in s["conversations"]] == [
            (frm[x["role"]], x["content"]) for x in c["messages"]
        ], i


# ---------------------------------------------------------------- prompt library
def _prompts() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(PROMPTS.glob("*.yaml"))}


def test_prompt_files_schema():
    prompts = _prompts()
    assert REQUIRED_PROMPTS <= set(prompts), set(prompts)
    for stem, p in prompts.items():
        assert set(p) == PROMPT_KEYS, (stem, set(p) ^ PROMPT_KEYS)
        assert p["name"] == stem and re.fullmatch(r"[a-z0-9_]+", stem)
        assert isinstance(p["description"], str) and "\n" not in p["description"].strip()
        assert isinstance(p["system"], str) and p["system"].strip()
        assert "{question}" in p["template"], stem
        variables = {v for v in re.findall(r"(?<!\{)\{([a-z_]+)\}(?!\})", p["template"])}
        assert variables <= {"question", "context"}, (stem, variables)
        rendered = p["template"].format(question="Q?", context="[1] C.")  # braces are well formed
        assert "Q?" in rendered
        assert isinstance(p["examples"], list)
        for ex in p["examples"]:
            assert set(ex) == {"user", "assistant"} and all(isinstance(v, str) for v in ex.values()), stem
        assert isinstance(p["chain_of_thought"], bool)
        assert set(p["params"]) == PARAM_KEYS, stem
        assert isinstance(p["params"]["stop"], list)
        assert p["json_schema"] is None or isinstance(p["json_schema"], dict)
    assert prompts["chain_of_thought"]["chain_of_thought"] is True
    assert prompts["few_shot"]["examples"], "few_shot needs examples"
    for name in ("guardrail", "guardrail_json"):
        assert "{context}" in prompts[name]["template"]
        assert "[1]" in prompts[name]["system"] or "citations" in prompts[name]["system"]
    assert "{context}" not in prompts["zero_shot"]["template"]


def test_few_shot_examples_use_the_voice(voice_checks):
    for ex in _prompts()["few_shot"]["examples"]:
        assert voice_failures(ex["assistant"], voice_checks) == []


def test_guardrail_json_schema():
    schema = _prompts()["guardrail_json"]["json_schema"]
    assert schema["type"] == "object"
    assert {"answer", "citations", "in_scope"} <= set(schema["properties"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    assert v.is_valid({"answer": "300 credits [1]", "citations": [1], "in_scope": True})
    assert not v.is_valid({"answer": "x", "citations": ["one"], "in_scope": True})


# ---------------------------------------------------------------- bad fixtures
def test_bad_fixtures_exist_with_claimed_properties():
    from pypdf import PdfReader

    names = ["empty.txt", "binary.pdf", "corrupt.pdf", "encrypted.pdf", "malformed.jsonl", "mixed_formats.jsonl",
             "huge_line.txt", "odd name (copy) #2.md", "not_utf8.txt", "README.md"]
    for n in names:
        assert (BAD / n).is_file(), n
    assert (BAD / "empty.txt").stat().st_size == 0
    assert not (BAD / "binary.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(Exception):
        PdfReader(str(BAD / "binary.pdf")).pages[0].extract_text()
    assert (BAD / "corrupt.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(Exception):
        reader = PdfReader(str(BAD / "corrupt.pdf"))
        [p.extract_text() for p in reader.pages]
    assert PdfReader(str(BAD / "encrypted.pdf")).is_encrypted
    lines = (BAD / "malformed.jsonl").read_text(encoding="utf-8").splitlines()
    bad_lines = []
    for n, line in enumerate(lines, 1):
        try:
            json.loads(line)
        except json.JSONDecodeError:
            bad_lines.append(n)
    assert bad_lines == [3]
    mixed = [json.loads(x) for x in (BAD / "mixed_formats.jsonl").read_text(encoding="utf-8").splitlines()]
    kinds = {"chat" if "messages" in r else "alpaca" if "instruction" in r else "?" for r in mixed}
    assert kinds == {"chat", "alpaca"}
    huge = (BAD / "huge_line.txt").read_bytes()
    assert 1_500_000 <= len(huge) <= 2_000_000 and b"\n" not in huge
    with pytest.raises(UnicodeDecodeError):
        (BAD / "not_utf8.txt").read_bytes().decode("utf-8")
    assert (BAD / "odd name (copy) #2.md").read_text(encoding="utf-8").strip()


def test_bad_fixtures_stay_out_of_sample_docs():
    for p in SAMPLE.rglob("*"):
        if p.is_file():
            assert p.stat().st_size > 0, p
            assert p.stat().st_size < 1_000_000, p


# ---------------------------------------------------------------- generator and files agree
def test_generated_files_match_generator():
    """Derived files must be regenerated, not hand-edited: run scripts/make_sample_docs.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample_docs", ROOT / "scripts" / "make_sample_docs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    train, held = gen.build_examples()
    assert read_jsonl(FINETUNE / "train.chat.jsonl") == train
    assert read_jsonl(FINETUNE / "heldout.chat.jsonl") == held
    assert read_jsonl(SAMPLE / "eval" / "questions.jsonl") == gen.build_questions()
    from core.scenario import load_scenario
    assert gen.SYSTEM_PROMPT == load_scenario(SAMPLE / "scenario.yaml").system_prompt
    assert (KNOWLEDGE / "pricing-sheet-2024.pdf").read_bytes() == gen.make_pdf(
        gen.PRICING_SHEET, "Tidewave pricing sheet PS-2024-06")
    assert (KNOWLEDGE / "refund-and-cancellation-policy.pdf").read_bytes() == gen.make_pdf(
        gen.REFUND_POLICY, "Tidewave refund and cancellation policy POL-07")
