"""Past answers (CSV or JSONL) -> cleaned records -> chat-JSONL training rows.

1. `read_table` reads the file's columns and rows (CSV with , ; or tab; JSONL objects).
2. A `ColumnMapping` says which column holds the question, the answer and, optionally, context and category;
   `guess_mapping` proposes one from common column names.
3. `analyse` finds rows with no question/answer, exact and normalised duplicates (the first one is kept), the
   same question answered differently (a warning), and personal data (emails, phone numbers).
4. `import_answers` writes answers.jsonl and train.chat.jsonl into the use case, masking personal data when asked,
   dropping rows that would leak the question set into training, and runs the fine-tune dataset checks
   (core.finetune.datasets.parse_text) on the result, as the Fine-Tune page does.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field

from core.compare.scores import normalise
from core.errors import DatasetError, UseCaseError

QUESTION_NAMES = ("question", "questions", "prompt", "query", "customer_message", "customer message", "message",
                  "input", "instruction", "user", "request", "ask", "customer", "ticket", "inquiry", "enquiry")
ANSWER_NAMES = ("answer", "answers", "reply", "response", "output", "agent_reply", "agent reply", "completion",
                "assistant", "resolution", "agent", "support_reply", "support reply")
CONTEXT_NAMES = ("context", "notes", "details", "background", "account", "extra")
CATEGORY_NAMES = ("category", "categories", "tag", "tags", "topic", "type", "label", "intent", "queue")
MAX_ROWS = 50_000
MAX_FIELD_CHARS = 20_000

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
PHONE_RE = re.compile(r"(?<![\w+/.-])(?:\+|00|\()?\d(?:[\d ().-]{5,22})\d(?![\w/-])")
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"


@dataclass
class ColumnMapping:
    question: str
    answer: str
    context: str = ""
    category: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


CANONICAL = ColumnMapping("question", "answer", "context", "category")   # answers.jsonl's own keys


@dataclass
class PastAnswer:
    line: int
    question: str
    answer: str
    context: str = ""
    category: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PIIFinding:
    line: int
    field: str                 # question | answer | context
    kind: str                  # email | phone
    text: str                  # the matched text


@dataclass
class Analysis:
    records: list[PastAnswer] = field(default_factory=list)        # kept (first of each duplicate group)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, message): rows skipped
    duplicates: list[dict] = field(default_factory=list)           # {line, of_line, kind: exact|normalised}
    same_question: list[dict] = field(default_factory=list)        # {line, of_line}: one question, other answer
    pii: list[PIIFinding] = field(default_factory=list)
    rows_read: int = 0

    def to_dict(self) -> dict:
        return {"rows_read": self.rows_read, "kept": len(self.records),
                "problems": [{"line": ln, "message": m} for ln, m in self.problems],
                "duplicates": self.duplicates, "same_question": self.same_question,
                "pii": [asdict(p) for p in self.pii],
                "pii_counts": {k: sum(1 for p in self.pii if p.kind == k) for k in ("email", "phone")}}


# --- reading -------------------------------------------------------------------------------------------------------
def _decode(data: bytes | str, filename: str) -> str:
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    from core.config import get_settings
    max_mb = get_settings().max_upload_mb
    if len(data) > max_mb * 1024 * 1024:
        raise DatasetError(f"{filename} is {len(data) / 1e6:.1f} MB; the limit is {max_mb} MB (WORKBENCH_MAX_UPLOAD_MB).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{filename} is not UTF-8 text (byte {exc.start}): save it as UTF-8 CSV or JSONL.") from exc
    if "\x00" in text:
        raise DatasetError(f"{filename} looks binary: upload a CSV or JSONL text file.")
    return text


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def read_table(data: bytes | str, filename: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """(columns, [(line, {column: text})]) of a CSV or JSONL file. DatasetError lists bad JSON lines."""
    text = _decode(data, filename)
    name = filename.lower()
    rows: list[tuple[int, dict]] = []
    if name.endswith((".jsonl", ".ndjson", ".json")):
        bad = []
        cols: list[str] = []
        lines = text.splitlines()
        if name.endswith(".json") and text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise DatasetError(f"{filename} is not valid JSON ({exc}).") from exc
            parsed = [(i + 1, obj) for i, obj in enumerate(items if isinstance(items, list) else [items])]
        else:
            parsed = []
            for i, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    parsed.append((i, json.loads(line)))
                except ValueError as exc:
                    bad.append((i, f"not valid JSON ({exc})"))
        for i, obj in parsed:
            if not isinstance(obj, dict):
                bad.append((i, "each line must be a JSON object"))
                continue
            row = {str(k): _cell(v) for k, v in obj.items()}
            for k in row:
                if k not in cols:
                    cols.append(k)
            rows.append((i, row))
        if bad:
            shown = "; ".join(f"line {ln}: {m}" for ln, m in bad[:5])
            raise DatasetError(f"{filename} has {len(bad)} bad line(s): {shown}. Fix them and import again.", bad)
        columns = cols
    elif name.endswith((".csv", ".tsv", ".txt")):
        sample = text[:8192]
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if not name.endswith(".tsv") else csv.excel_tab
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        if not reader.fieldnames:
            raise DatasetError(f"{filename} is empty: it needs a header row (e.g. question,answer).")
        columns = [str(c).strip() for c in reader.fieldnames if c is not None]
        reader.fieldnames = columns
        try:
            for rownum, row in enumerate(reader, start=2):     # spreadsheet row numbers (the header is row 1)
                rows.append((rownum, {k: (v or "") for k, v in row.items() if k is not None}))
        except csv.Error as exc:
            raise DatasetError(f"{filename} line {reader.line_num}: {exc}.") from exc
    else:
        raise DatasetError(f"{filename}: unsupported file type; import .csv or .jsonl.")
    if len(rows) > MAX_ROWS:
        raise DatasetError(f"{filename} has {len(rows)} rows; the limit is {MAX_ROWS}.")
    return columns, rows


def guess_mapping(columns: list[str]) -> ColumnMapping | None:
    """The likely mapping from column names (case and spacing ignored); None when no question/answer pair is found."""
    low = {c.strip().lower().replace("-", "_"): c for c in columns}

    def pick(names, taken=()):
        for n in names:
            for key in (n, n.replace(" ", "_")):
                if key in low and low[key] not in taken:
                    return low[key]
        return ""

    q = pick(QUESTION_NAMES)
    a = pick(ANSWER_NAMES, (q,))
    if not q or not a:
        return None
    ctx = pick(CONTEXT_NAMES, (q, a))
    cat = pick(CATEGORY_NAMES, (q, a, ctx))
    return ColumnMapping(q, a, ctx, cat)


def check_mapping(mapping: ColumnMapping, columns: list[str]) -> ColumnMapping:
    for role in ("question", "answer", "context", "category"):
        col = getattr(mapping, role)
        if (col or role in ("question", "answer")) and col not in columns:
            raise UseCaseError(f"The {role} column {col!r} is not in the file; its columns are: "
                               f"{', '.join(columns) or 'none'}.")
    if mapping.question == mapping.answer:
        raise UseCaseError("The question and the answer must come from two different columns.")
    return mapping


# --- personal data -------------------------------------------------------------------------------------------------
def find_pii(text: str) -> list[tuple[str, str]]:
    """[(kind, matched text)]: email addresses and phone numbers (8-15 digits; dates, prices and versions are not)."""
    out = [("email", m.group(0)) for m in EMAIL_RE.finditer(text or "")]
    for m in PHONE_RE.finditer(EMAIL_RE.sub(" ", text or "")):
        s = m.group(0).strip()
        digits = re.sub(r"\D", "", s)
        if not 8 <= len(digits) <= 15 or _DATE_LIKE.match(s):
            continue
        if "." in s and not re.search(r"[ ()+-]", s):      # 4.4.1 / 12.50.30: versions, not phones
            continue
        if not (s.startswith(("+", "00", "(")) or re.search(r"[ ().-]", s) or len(digits) >= 9):
            continue
        out.append(("phone", s))
    return out


def mask_pii(text: str, keep: set[str] | frozenset = frozenset()) -> str:
    """Replace emails with [email] and phone numbers with [phone], except the texts in `keep` (e.g. the
    company's own support address, which the model should learn)."""
    keep_l = {k.lower() for k in keep}
    text = EMAIL_RE.sub(lambda m: m.group(0) if m.group(0).lower() in keep_l else EMAIL_MASK, text or "")
    for kind, s in sorted(find_pii(text), key=lambda x: -len(x[1])):
        if kind == "phone" and s.lower() not in keep_l:
            text = text.replace(s, PHONE_MASK)
    return text


# --- analysis --------------------------------------------------------------------------------------------------------
def analyse(rows: list[tuple[int, dict]], mapping: ColumnMapping) -> Analysis:
    an = Analysis(rows_read=len(rows))
    exact: dict[tuple[str, str], int] = {}
    norm: dict[tuple[str, str], int] = {}
    by_question: dict[str, int] = {}
    for line, row in rows:
        q = (row.get(mapping.question) or "").strip()
        a = (row.get(mapping.answer) or "").strip()
        if not q and not a:
            continue                                            # blank line in a spreadsheet export
        if not q or not a:
            an.problems.append((line, f"no {'question' if not q else 'answer'}: row skipped"))
            continue
        ctx = (row.get(mapping.context) or "").strip() if mapping.context else ""
        cat = (row.get(mapping.category) or "").strip() if mapping.category else ""
        if max(len(q), len(a), len(ctx)) > MAX_FIELD_CHARS:
            an.problems.append((line, f"a cell is longer than {MAX_FIELD_CHARS} characters: row skipped"))
            continue
        if (q, a) in exact:
            an.duplicates.append({"line": line, "of_line": exact[(q, a)], "kind": "exact"})
            continue
        nk = (normalise(q), normalise(a))
        if nk in norm:
            an.duplicates.append({"line": line, "of_line": norm[nk], "kind": "normalised"})
            continue
        exact[(q, a)] = line
        norm[nk] = line
        if nk[0] in by_question:
            an.same_question.append({"line": line, "of_line": by_question[nk[0]]})
        else:
            by_question[nk[0]] = line
        rec = PastAnswer(line, q, a, ctx, cat)
        for fname in ("question", "answer", "context"):
            for kind, s in find_pii(getattr(rec, fname)):
                an.pii.append(PIIFinding(line, fname, kind, s))
        an.records.append(rec)
    return an


def training_rows(records: list[PastAnswer], system_prompt: str = "") -> list[dict]:
    """Chat rows: [system], user (question, then its context if any), assistant (the past answer)."""
    out = []
    for r in records:
        user = r.question + (f"\n\nContext: {r.context}" if r.context else "")
        msgs = ([{"role": "system", "content": system_prompt}] if system_prompt.strip() else [])
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": r.answer}]
        out.append({"messages": msgs})
    return out


@dataclass
class ImportReport:
    analysis: Analysis
    mapping: ColumnMapping
    masked: bool
    written: int = 0                          # training rows written
    dataset: dict = field(default_factory=dict)           # core.finetune.datasets summary + problems
    leaks_dropped: list[dict] = field(default_factory=list)
    proposals: list[dict] = field(default_factory=list)   # derived checks (checks.derive_checks)

    def to_dict(self) -> dict:
        return {"mapping": self.mapping.to_dict(), "masked": self.masked, "written": self.written,
                **self.analysis.to_dict(), "dataset": self.dataset, "leaks_dropped": self.leaks_dropped,
                "proposals": self.proposals}


def import_answers(uc, data: bytes | str, filename: str, mapping: ColumnMapping | None = None, *,
                   mask: bool = False, keep: list[str] | None = None, append: bool = False,
                   dry_run: bool = False) -> ImportReport:
    """Import past answers into a use case (answers.jsonl + train.chat.jsonl + proposed_checks.json).

    `mapping` None = guessed from the column names. `mask` replaces emails/phones before anything is written
    (except the texts in `keep`). Line numbers are JSONL lines / spreadsheet rows (the CSV header is row 1).
    `append` adds to the answers already imported (duplicates across both are dropped); otherwise they are
    replaced. `dry_run` analyses and returns the report without writing."""
    from core.finetune.datasets import parse_text
    from core.fileio import write_json_atomic
    from core.usecase import checks, leakage, workspace

    columns, rows = read_table(data, filename)
    if mapping is None:
        mapping = guess_mapping(columns)
        if mapping is None:
            raise UseCaseError(f"{filename}: cannot tell which columns hold the question and the answer (columns: "
                               f"{', '.join(columns) or 'none'}); map them with --question COL --answer COL.")
    check_mapping(mapping, columns)
    canon = [(line, {k: (row.get(col, "") if col else "") for k, col in mapping.to_dict().items()})
             for line, row in rows]
    prev, prev_lines = [], {}
    if append and uc.has("answers"):
        for i, r in enumerate(workspace.read_jsonl(uc.file("answers"))):
            prev.append((-(i + 1), {k: str(r.get(k) or "") for k in CANONICAL.to_dict()}))
            prev_lines[-(i + 1)] = int(r.get("line") or 0)
    an = analyse(prev + canon, CANONICAL)
    an.rows_read = len(rows)
    kept_prev = [PastAnswer(prev_lines[r.line], r.question, r.answer, r.context, r.category)
                 for r in an.records if r.line < 0]
    an.records = [r for r in an.records if r.line > 0]
    an.duplicates = [d for d in an.duplicates if d["line"] > 0]
    an.same_question = [d for d in an.same_question if d["line"] > 0]
    rows_for_analysis = an
    if not an.records and not kept_prev:
        raise UseCaseError(f"{filename}: no row has both a question and an answer in the mapped columns "
                           f"({mapping.question!r}, {mapping.answer!r}).")
    records = kept_prev + an.records
    if mask:
        kp = set(keep or ())
        records = [PastAnswer(r.line, mask_pii(r.question, kp), mask_pii(r.answer, kp), mask_pii(r.context, kp),
                              r.category) for r in records]
    rows_out = training_rows(records, uc.system_prompt)
    questions = leakage.question_set_of(uc)
    kept_rows, leaks = leakage.drop_leaking(rows_out, questions)
    leak_lines = {l["row"] for l in leaks}
    kept_records = [r for i, r in enumerate(records) if i not in leak_lines]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept_rows)
    ds = parse_text(text, workspace.FILES["train"])
    proposals = [p.to_dict() for p in checks.derive_checks([r.answer for r in kept_records])]
    report = ImportReport(rows_for_analysis, mapping, mask, len(kept_rows), ds.to_dict(),
                          [{**l, "line": records[l["row"]].line} for l in leaks], proposals)
    if dry_run:
        return report
    if ds.errors:
        raise DatasetError(f"The training rows built from {filename} fail the dataset checks: "
                           + "; ".join(str(p) for p in ds.errors[:5]), [(p.line, p.message) for p in ds.errors])
    workspace.write_jsonl_atomic(uc.writable("answers"), [r.to_dict() for r in kept_records])
    workspace.write_text_atomic(uc.writable("train"), text)
    write_json_atomic(uc.writable("proposals"), proposals)
    _fill_few_shot(uc, kept_records)
    return report


def _fill_few_shot(uc, records: list[PastAnswer], n: int = 2) -> None:
    """Give the starter few-shot prompt two real examples in the use case's voice (only while it has none)."""
    import yaml

    from core.usecase import workspace

    p = uc.file("prompts") / "few_shot.yaml"
    if uc.read_only or not p.is_file() or not records:
        return
    try:
        spec = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, RecursionError):
        return
    if not isinstance(spec, dict) or spec.get("examples"):
        return
    short = sorted(records, key=lambda r: len(r.question) + len(r.answer))[: max(n, 0)]
    spec["examples"] = [{"user": r.question, "assistant": r.answer} for r in short]
    workspace.write_text_atomic(p, workspace._dump_yaml(spec))
