"""The demo scenario (`sample_docs/scenario.yaml`), its question sets and their one strict parser.

Every part of the workbench that needs the scenario or a question file comes here: the Compare page and CLI,
retrieval evaluation, the Prompt Lab's question picker, the RAG prompt's scenario variables, the home page.

A question: {id, question, reference, tags, source, evidence, keywords} plus optional checks: `patterns`
(regexes the answer must match), `exact` (true: the reference must appear verbatim) and `json_schema` (the
answer must be JSON valid against it). Only `question` is required; a missing `id` is made from the line
number. The parser is strict: every bad line is reported with its number (`DatasetError.problems`) and
nothing is loaded when one line is bad. A line nested too deeply for Python's JSON reader is a bad line too.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.config import SAMPLE_DOCS
from core import safe_regex
from core.errors import DatasetError, PatternError, ScenarioError
from core.jsonout import NotJSON, loads

SCENARIO_FILE = SAMPLE_DOCS / "scenario.yaml"
DEFAULT_QUESTIONS = "eval/questions.jsonl"
DEFAULT_COLLECTION = "support"
MAX_QUESTIONS = 5000
MAX_SHOWN = 5                      # bad lines spelled out in the error message (all are in `.problems`)
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


# ---- questions ---------------------------------------------------------------------------------------------
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
    # the same answer stated elsewhere in the documents: [{"evidence": ..., "source": ...}] (retrieval evaluation)
    alternatives: list[dict] = field(default_factory=list)

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
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    raise ValueError(f"`{what}` must be a list of strings")


def _optional_text(rec: dict, key: str) -> str | None:
    value = rec.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"`{key}` must be a string")
    return str(value)


def question_from_record(rec, line: int) -> Question:
    """One record (a parsed JSONL line or CSV row) -> Question. Raises ValueError saying what is wrong."""
    if not isinstance(rec, dict):
        raise ValueError("each line must be a JSON object like {\"question\": \"...\", \"reference\": \"...\"}")
    q = rec.get("question")
    if not isinstance(q, str) or not q.strip():
        raise ValueError("missing field `question` (the text to ask)")
    qid = rec.get("id")
    if qid not in (None, "") and (not isinstance(qid, (str, int)) or isinstance(qid, bool)):
        raise ValueError("`id` must be a string or a number")
    qid = str(qid).strip() if qid not in (None, "") else f"q{line}"
    if not _ID_RE.match(qid):
        raise ValueError(f"id {qid!r} must be 1-80 letters, digits or . _ : -")
    ref = rec.get("reference", rec.get("answer", ""))
    if ref is not None and (not isinstance(ref, (str, int, float)) or isinstance(ref, bool)):
        raise ValueError("`reference` must be a string")
    patterns = _as_list(rec.get("patterns"), "patterns")
    for p in patterns:      # the scores' own compile (length cap, `regex` module): PatternError is a ValueError
        safe_regex.compile_pattern(p, safe_regex.QUESTION_FLAGS)
    schema = rec.get("json_schema")
    if isinstance(schema, str) and schema.strip():
        try:
            schema = loads(schema)
        except NotJSON:
            raise ValueError("`json_schema` is nested too deeply") from None
        except ValueError as exc:
            raise ValueError(f"`json_schema` is not valid JSON ({exc})") from exc
    if schema is not None and schema != "" and not isinstance(schema, dict):
        raise ValueError("`json_schema` must be a JSON object")
    alternatives = rec.get("alternatives") or []
    if not isinstance(alternatives, list) or not all(
            isinstance(a, dict) and isinstance(a.get("evidence"), str) and a["evidence"].strip()
            and isinstance(a.get("source") or "", str) for a in alternatives):
        raise ValueError("`alternatives` must be a list of {\"evidence\": text, \"source\": file name}")
    exact = rec.get("exact", False)
    if isinstance(exact, str):
        exact = exact.strip().lower() in ("1", "true", "yes")
    return Question(
        id=qid, question=q.strip(), reference="" if ref is None else str(ref).strip(),
        tags=_as_list(rec.get("tags"), "tags"),
        source=_optional_text(rec, "source"), evidence=_optional_text(rec, "evidence"),
        keywords=_as_list(rec.get("keywords"), "keywords"),
        patterns=patterns, exact=bool(exact), json_schema=schema or None,
        alternatives=[{"evidence": a["evidence"].strip(), "source": a.get("source") or None} for a in alternatives],
    )


def _json_line(line: str):
    try:
        return loads(line)
    except NotJSON as exc:          # [[[[...]]]]: bad input, not a crash (core.jsonout.loads)
        raise ValueError(str(exc)) from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({getattr(exc, 'msg', exc)})") from None


def _bad_lines(filename: str, problems: list[tuple[int, str]]) -> DatasetError:
    problems = sorted(problems)
    shown = "; ".join(f"line {ln}: {msg}" for ln, msg in problems[:MAX_SHOWN])
    more = f" (and {len(problems) - MAX_SHOWN} more)" if len(problems) > MAX_SHOWN else ""
    return DatasetError(f"{filename} has {len(problems)} bad line(s): {shown}{more}. Fix them and load again.",
                             problems, filename)


def parse_questions(data: bytes | str, filename: str = "questions.jsonl") -> list[Question]:
    """Parse a JSONL or CSV question file. Raises DatasetError (a DatasetError) naming the file and listing
    (line, message) for every bad line; nothing is returned unless every line is good."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{filename} is not UTF-8 text: save it as UTF-8 JSONL or CSV.",
                                    [(data[:exc.start].count(b"\n") + 1, "not UTF-8")], filename) from exc
    name = filename.lower()
    problems: list[tuple[int, str]] = []
    records: list[tuple[int, object]] = []
    if name.endswith(".csv"):
        try:
            reader = csv.DictReader(io.StringIO(data))
            fieldnames = reader.fieldnames
        except csv.Error as exc:
            raise DatasetError(f"{filename}: the CSV header cannot be read ({exc}).", [(1, str(exc))],
                                    filename) from exc
        if not fieldnames or "question" not in [f.strip() for f in fieldnames if f]:
            raise DatasetError(f"{filename}: the CSV needs a header row with a `question` column "
                                    f"(optional: id, reference, tags, keywords, source, evidence).",
                                    [(1, "no `question` column")], filename)
        try:
            for row in reader:
                records.append((reader.line_num, {k.strip(): v for k, v in row.items() if k}))
        except csv.Error as exc:
            problems.append((reader.line_num, f"not valid CSV ({exc})"))
    elif name.endswith(JSONL_SUFFIXES):
        for i, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((i, _json_line(line)))
            except ValueError as exc:
                problems.append((i, str(exc)))
    else:
        raise DatasetError(f"{filename}: unsupported question file type; upload .jsonl or .csv.", [], filename)
    questions: list[Question] = []
    seen: set[str] = set()
    for line, rec in records:
        try:
            q = question_from_record(rec, line)
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        if q.id in seen:
            problems.append((line, f"duplicate id {q.id!r}"))
            continue
        seen.add(q.id)
        questions.append(q)
    if problems:
        raise _bad_lines(filename, problems)
    if not questions:
        raise DatasetError(f"{filename} has no questions: add lines like "
                                f"{{\"question\": \"...\", \"reference\": \"...\"}}.", [], filename)
    if len(questions) > MAX_QUESTIONS:
        raise DatasetError(f"{filename} has {len(questions)} questions; the limit is {MAX_QUESTIONS}.", [],
                                filename)
    return questions


def load_questions(path: str | Path) -> list[Question]:
    """A question file on disk (JSONL or CSV), parsed strictly. Raises DatasetError."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"Question file {p} does not exist.", [], p.name)
    return parse_questions(p.read_bytes(), p.name)


# ---- the scenario ------------------------------------------------------------------------------------------
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
    collection: str = DEFAULT_COLLECTION
    knowledge_dir: Path | None = None
    questions_path: Path | None = None
    prompts_dir: Path | None = None
    system_prompt: str = ""
    description: str = ""
    voice_checks: list[VoiceCheck] = field(default_factory=list)
    finetune: dict[str, Path] = field(default_factory=dict)          # train / heldout chat JSONL files
    finetune_formats: dict[str, Path] = field(default_factory=dict)  # the same examples in other formats
    raw: dict = field(default_factory=dict)
    path: Path | None = None

    def prompt_values(self) -> dict[str, str]:
        """The scenario's top-level text values ({product}, {company}, {system_prompt} ...) for prompt templates."""
        return {k: str(v) for k, v in self.raw.items()
                if isinstance(v, (str, int, float)) and not isinstance(v, bool)}

    def questions(self, limit: int | None = None) -> list[Question]:
        """The scenario's question set, parsed strictly."""
        if not self.questions_path or not self.questions_path.is_file():
            raise DatasetError(f"The scenario's question set {self.questions_path} is missing: reinstall "
                                    f"sample_docs or upload a question file.", [],
                                    self.questions_path.name if self.questions_path else "")
        qs = load_questions(self.questions_path)
        return qs[:limit] if limit else qs


def _voice_checks(raw_checks, p: Path) -> list[VoiceCheck]:
    if raw_checks is None:
        return []
    if not isinstance(raw_checks, list):
        raise ScenarioError(f"{p}: `voice_checks` must be a list of {{name, pattern, description}}.")
    checks = []
    for i, c in enumerate(raw_checks):
        if not isinstance(c, dict) or not c.get("pattern"):
            raise ScenarioError(f"{p}: voice check {i + 1} needs a `pattern` (a Python regex).")
        try:            # compiled as the scores run it (core.safe_regex: length cap; matched with a time limit)
            safe_regex.compile_pattern(str(c["pattern"]), safe_regex.flags_from_letters(str(c.get("flags", "i"))))
        except PatternError as exc:
            raise ScenarioError(f"{p}: voice check {c.get('name') or i + 1} has an invalid regex ({exc}).") from exc
        tags = c.get("tags") or c.get("applies_to") or []
        checks.append(VoiceCheck(name=str(c.get("name") or f"check{i + 1}"), pattern=str(c["pattern"]),
                                 description=str(c.get("description") or ""),
                                 tags=[str(t) for t in (tags if isinstance(tags, list) else [tags])],
                                 flags=str(c.get("flags", "i"))))
    return checks


def _paths(raw, base: Path, what: str, p: Path) -> dict[str, Path]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ScenarioError(f"{p}: `{what}` must map names to file paths (relative to the scenario file).")
    return {str(k): base / v for k, v in raw.items()}


def load_scenario(path: str | Path | None = None) -> Scenario:
    """sample_docs/scenario.yaml (or another). A missing file gives an empty scenario with defaults; an invalid
    one raises ScenarioError saying what to fix."""
    import yaml

    p = Path(path) if path else SCENARIO_FILE
    if not p.is_file():
        base = SAMPLE_DOCS
        return Scenario(knowledge_dir=base / "knowledge", questions_path=base / DEFAULT_QUESTIONS,
                        prompts_dir=base / "prompts")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise ScenarioError(f"{p} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScenarioError(f"{p} must be a YAML mapping (product, collection, questions, ...).")
    base = p.parent
    return Scenario(product=str(raw.get("product") or ""),
                    collection=str(raw.get("collection") or DEFAULT_COLLECTION),
                    knowledge_dir=base / str(raw.get("knowledge_dir") or "knowledge"),
                    questions_path=base / str(raw.get("questions") or DEFAULT_QUESTIONS),
                    prompts_dir=base / str(raw.get("prompts_dir") or "prompts"),
                    system_prompt=str(raw.get("system_prompt") or ""),
                    description=str(raw.get("description") or ""),
                    voice_checks=_voice_checks(raw.get("voice_checks"), p),
                    finetune=_paths(raw.get("finetune"), base, "finetune", p),
                    finetune_formats=_paths(raw.get("finetune_formats"), base, "finetune_formats", p),
                    raw=raw, path=p)


def scenario_questions(limit: int | None = None) -> list[Question]:
    """The sample scenario's question set (sample_docs/eval/questions.jsonl), parsed strictly."""
    return load_scenario().questions(limit)


__all__ = ["Question", "VoiceCheck", "Scenario", "parse_questions", "load_questions", "question_from_record",
           "load_scenario", "scenario_questions", "SCENARIO_FILE", "MAX_QUESTIONS"]
