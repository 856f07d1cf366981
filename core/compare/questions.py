"""Question sets (JSONL or CSV) and the sample scenario (sample_docs/scenario.yaml).

A question: {id, question, reference, tags, source, evidence, keywords} plus optional checks:
`patterns` (regexes the answer must match), `exact` (true: the reference must appear verbatim) and
`json_schema` (the answer must be JSON valid against it). Only `question` is required; a missing `id` is made
from the line number. Every problem is reported with its line, and nothing is loaded when one line is bad.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.config import SAMPLE_DOCS
from core.errors import CompareError, DatasetError

MAX_QUESTIONS = 5000
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


@dataclass
class Question:
    id: str
    question: str
    reference: str = ""
    tags: list[str] = field(default_factory=list)
    source: str | None = None
    evidence: str | None = None
    keywords: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    exact: bool = False
    json_schema: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Question":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _as_list(value, what: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        # CSV cells: "a; b" or "a|b"
        return [v.strip() for v in re.split(r"[;|]", value) if v.strip()]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    raise ValueError(f"`{what}` must be a list of strings")


def _question_from_record(rec, line: int) -> Question:
    if not isinstance(rec, dict):
        raise ValueError("each line must be a JSON object like {\"question\": \"...\", \"reference\": \"...\"}")
    q = rec.get("question")
    if not isinstance(q, str) or not q.strip():
        raise ValueError("missing field `question` (the text to ask)")
    qid = rec.get("id")
    qid = str(qid).strip() if qid not in (None, "") else f"q{line}"
    if not _ID_RE.match(qid):
        raise ValueError(f"id {qid!r} must be 1-80 letters, digits or . _ : -")
    ref = rec.get("reference", rec.get("answer", ""))
    if ref is not None and not isinstance(ref, (str, int, float)):
        raise ValueError("`reference` must be a string")
    patterns = _as_list(rec.get("patterns"), "patterns")
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"pattern {p!r} is not a valid regular expression ({exc})") from exc
    schema = rec.get("json_schema")
    if isinstance(schema, str) and schema.strip():
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise ValueError(f"`json_schema` is not valid JSON ({exc})") from exc
    if schema is not None and schema != "" and not isinstance(schema, dict):
        raise ValueError("`json_schema` must be a JSON object")
    exact = rec.get("exact", False)
    if isinstance(exact, str):
        exact = exact.strip().lower() in ("1", "true", "yes")
    return Question(
        id=qid, question=q.strip(), reference="" if ref is None else str(ref).strip(),
        tags=_as_list(rec.get("tags"), "tags"),
        source=(str(rec["source"]) if rec.get("source") else None),
        evidence=(str(rec["evidence"]) if rec.get("evidence") else None),
        keywords=_as_list(rec.get("keywords"), "keywords"),
        patterns=patterns, exact=bool(exact), json_schema=schema or None,
    )


def parse_questions(data: bytes | str, filename: str = "questions.jsonl") -> list[Question]:
    """Parse a JSONL or CSV question file. Raises DatasetError listing (line, message) for every bad line."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{filename} is not UTF-8 text: save it as UTF-8 JSONL or CSV.") from exc
    name = filename.lower()
    problems: list[tuple[int, str]] = []
    records: list[tuple[int, object]] = []
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(data))
        if not reader.fieldnames or "question" not in [f.strip() for f in reader.fieldnames]:
            raise DatasetError(f"{filename}: the CSV needs a header row with a `question` column "
                               f"(optional: id, reference, tags, keywords, source, evidence).", [(1, "no `question` column")])
        for i, row in enumerate(reader, start=2):
            records.append((i, {k.strip(): v for k, v in row.items() if k}))
    elif name.endswith((".jsonl", ".json", ".ndjson")):
        for i, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((i, json.loads(line)))
            except ValueError as exc:
                problems.append((i, f"not valid JSON ({exc.msg})"))
    else:
        raise DatasetError(f"{filename}: unsupported question file type; upload .jsonl or .csv.")
    questions: list[Question] = []
    seen: set[str] = set()
    for line, rec in records:
        try:
            q = _question_from_record(rec, line)
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        if q.id in seen:
            problems.append((line, f"duplicate id {q.id!r}"))
            continue
        seen.add(q.id)
        questions.append(q)
    if problems:
        problems.sort()
        shown = "; ".join(f"line {ln}: {msg}" for ln, msg in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise DatasetError(f"{filename} has {len(problems)} bad line(s): {shown}{more}. Fix them and load again.",
                           problems)
    if not questions:
        raise DatasetError(f"{filename} has no questions: add lines like {{\"question\": \"...\", \"reference\": \"...\"}}.")
    if len(questions) > MAX_QUESTIONS:
        raise DatasetError(f"{filename} has {len(questions)} questions; the limit is {MAX_QUESTIONS}.")
    return questions


def load_questions(path: str | Path) -> list[Question]:
    p = Path(path)
    if not p.is_file():
        raise CompareError(f"Question file {p} does not exist.")
    return parse_questions(p.read_bytes(), p.name)


# ---- scenario --------------------------------------------------------------------------------------------
@dataclass
class VoiceCheck:
    name: str
    pattern: str
    description: str = ""
    tags: list[str] = field(default_factory=list)   # only for questions with one of these tags (empty = all)
    flags: str = "i"


@dataclass
class Scenario:
    product: str = ""
    collection: str = "support"
    knowledge_dir: Path | None = None
    questions_path: Path | None = None
    system_prompt: str = ""
    voice_checks: list[VoiceCheck] = field(default_factory=list)
    raw: dict = field(default_factory=dict)


def load_scenario(path: str | Path | None = None) -> Scenario:
    """sample_docs/scenario.yaml (or another). A missing file gives an empty scenario with defaults."""
    import yaml

    p = Path(path) if path else SAMPLE_DOCS / "scenario.yaml"
    if not p.is_file():
        return Scenario(questions_path=(SAMPLE_DOCS / "eval" / "questions.jsonl"))
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CompareError(f"{p} is not valid YAML: {exc}") from exc
    base = p.parent
    checks = []
    for i, c in enumerate(raw.get("voice_checks") or []):
        if not isinstance(c, dict) or not c.get("pattern"):
            continue
        try:
            re.compile(str(c["pattern"]))
        except re.error as exc:
            raise CompareError(f"{p}: voice check {c.get('name') or i + 1} has an invalid regex ({exc}).") from exc
        tags = c.get("tags") or c.get("applies_to") or []
        checks.append(VoiceCheck(name=str(c.get("name") or f"check{i + 1}"), pattern=str(c["pattern"]),
                                 description=str(c.get("description") or ""),
                                 tags=[str(t) for t in (tags if isinstance(tags, list) else [tags])],
                                 flags=str(c.get("flags", "i"))))
    qpath = raw.get("questions") or "eval/questions.jsonl"
    kdir = raw.get("knowledge_dir") or "knowledge"
    return Scenario(product=str(raw.get("product") or ""), collection=str(raw.get("collection") or "support"),
                    knowledge_dir=base / kdir, questions_path=base / qpath,
                    system_prompt=str(raw.get("system_prompt") or ""), voice_checks=checks, raw=raw)


def scenario_questions(limit: int | None = None) -> list[Question]:
    sc = load_scenario()
    if not sc.questions_path or not sc.questions_path.is_file():
        raise CompareError(f"The scenario's question set {sc.questions_path} is missing: reinstall sample_docs or upload a question file.")
    qs = load_questions(sc.questions_path)
    return qs[:limit] if limit else qs
