"""Training data: read JSONL or CSV, detect the row format, convert every row to one chat form, validate.

Accepted row formats (one per file):
- chat:     {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
- alpaca:   {"instruction": "...", "input": "..." (optional), "output": "...", "system": "..." (optional)}
- sharegpt: {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]}
CSV files use the same keys as columns (instruction/input/output, or a `messages` / `conversations` column
holding JSON).

Every problem is reported with its line number *before* any training time is spent. Over-long rows are found with
the model's own chat template and tokenizer (`check_lengths`), because the trainer would otherwise cut the
assistant answer - the very part it should learn.
"""
from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from core.errors import DatasetError
from core.fileio import atomic_writer

FORMATS = ("chat", "alpaca", "sharegpt")
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "bot": "assistant"}
MAX_PROBLEMS_LISTED = 200


@dataclass
class Problem:
    line: int
    message: str
    severity: str = "error"          # error (blocks training) | warning

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class Dataset:
    """Rows converted to chat form. Each row: {"messages": [...], "line": <line in the source file>}."""
    rows: list[dict] = field(default_factory=list)
    format: str = ""
    source: str = ""
    problems: list[Problem] = field(default_factory=list)
    n_read: int = 0                    # non-blank records read from the file
    variant: dict = field(default_factory=dict)   # how the rows were derived (core/finetune/raft.py), if they were

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.errors

    def raise_for_problems(self) -> "Dataset":
        """DatasetError listing every blocking problem by line (empty dataset included)."""
        if not self.rows and not self.errors:
            raise DatasetError(f"{self.source or 'The dataset'} has no usable rows: upload a JSONL or CSV file with at "
                               "least a few examples.", [(0, "no rows")])
        errs = self.errors
        if errs:
            shown = "; ".join(str(p) for p in errs[:5])
            more = f" (and {len(errs) - 5} more)" if len(errs) > 5 else ""
            raise DatasetError(f"{self.source or 'The dataset'} has {len(errs)} problem(s): {shown}{more}. Fix these "
                               "lines and upload again.", [(p.line, p.message) for p in errs])
        return self

    def summary(self) -> dict:
        out = {"source": self.source, "format": self.format, "rows": len(self.rows), "read": self.n_read,
               "errors": len(self.errors), "warnings": len(self.problems) - len(self.errors)}
        if self.variant:
            out["variant"] = self.variant
        return out

    def to_dict(self) -> dict:
        return {**self.summary(), "problems": [asdict(p) for p in self.problems]}


# --- reading --------------------------------------------------------------------------------------------------
# json.loads raises RecursionError (not a ValueError) on deeply nested input such as [[[[...]]]]: bad input too.
TOO_DEEP = "the JSON is nested too deeply to read (thousands of levels of [ or {); a training row is a flat object"


def _deepest_line(text: str) -> int:
    """The line where bracket nesting first gets deepest (where a too-deep JSON document goes wrong)."""
    depth = best = 0
    line = best_line = 1
    in_str = esc = False
    for ch in text:
        if ch == "\n":
            line += 1
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best, best_line = depth, line
        elif ch in "]}":
            depth -= 1
    return best_line

def _records_jsonl(text: str) -> tuple[list[tuple[int, object]], list[Problem]]:
    records, problems = [], []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((i, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(Problem(i, f"not valid JSON ({exc.msg} at column {exc.colno}); each line must be one "
                                       "JSON object"))
        except RecursionError:
            problems.append(Problem(i, TOO_DEEP))
    return records, problems


def _records_json_array(text: str) -> tuple[list[tuple[int, object]], list[Problem]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [Problem(exc.lineno, f"not valid JSON ({exc.msg}); use JSONL: one JSON object per line")]
    except RecursionError:
        return [], [Problem(_deepest_line(text), TOO_DEEP)]
    if not isinstance(data, list):
        return [(1, data)], []
    return [(i + 1, obj) for i, obj in enumerate(data)], []   # "line" = item number for a JSON array


def _records_csv(text: str) -> tuple[list[tuple[int, object]], list[Problem]]:
    records, problems = [], []
    reader = csv.DictReader(io.StringIO(text))
    try:
        if not reader.fieldnames:
            return [], []
    except csv.Error as exc:
        return [], [Problem(1, f"not a readable CSV header ({exc})")]
    cols = [c.strip().lower() for c in reader.fieldnames]
    reader.fieldnames = cols
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:   # e.g. a cell over the csv module's field size limit: the rest is unreadable
            problems.append(Problem(reader.line_num, f"not readable as CSV ({exc}); the rest of the file was skipped"))
            break
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        obj: dict = {}
        for k, v in row.items():
            if k is None:
                problems.append(Problem(line, "more cells than header columns"))
                continue
            v = v or ""
            if k in ("messages", "conversations"):
                try:
                    obj[k] = json.loads(v) if v.strip() else []
                except json.JSONDecodeError as exc:
                    problems.append(Problem(line, f"column {k!r} is not valid JSON ({exc.msg})"))
                    obj[k] = None
                except RecursionError:
                    problems.append(Problem(line, f"column {k!r}: {TOO_DEEP}"))
                    obj[k] = None
            else:
                obj[k] = v
        records.append((line, obj))
    return records, problems


def detect_row_format(obj) -> str | None:
    """chat | alpaca | sharegpt | None for one record."""
    if not isinstance(obj, dict):
        return None
    if "messages" in obj:
        return "chat"
    if "conversations" in obj:
        conv = obj.get("conversations")
        if isinstance(conv, list) and conv and all(isinstance(t, dict) and "role" in t for t in conv):
            return "chat"       # OpenAI-style turns under a "conversations" key
        return "sharegpt"
    if "instruction" in obj or "output" in obj:
        return "alpaca"
    return None


def to_messages(obj: dict, fmt: str) -> tuple[list[dict], list[str]]:
    """Convert one record to chat messages. Returns (messages, problems-in-this-row)."""
    probs: list[str] = []
    msgs: list[dict] = []
    if fmt == "chat":
        turns = obj.get("messages", obj.get("conversations"))
        if not isinstance(turns, list):
            return [], ["'messages' must be a list of {role, content} objects"]
        for j, t in enumerate(turns, start=1):
            if not isinstance(t, dict):
                probs.append(f"turn {j} is not an object with role and content")
                continue
            msgs.append({"role": str(t.get("role", "")).strip().lower(), "content": t.get("content")})
    elif fmt == "sharegpt":
        turns = obj.get("conversations")
        if not isinstance(turns, list):
            return [], ["'conversations' must be a list of {from, value} objects"]
        for j, t in enumerate(turns, start=1):
            if not isinstance(t, dict):
                probs.append(f"turn {j} is not an object with from and value")
                continue
            who = str(t.get("from", "")).strip().lower()
            role = SHAREGPT_ROLES.get(who)
            if role is None:
                probs.append(f"turn {j} has an unknown speaker from={who!r} (use human, gpt or system)")
                continue
            msgs.append({"role": role, "content": t.get("value")})
    elif fmt == "alpaca":
        instruction = obj.get("instruction")
        inp = obj.get("input") or ""
        output = obj.get("output")
        if not isinstance(instruction, str) or not instruction.strip():
            probs.append("'instruction' is missing or empty")
        if not isinstance(output, str) or not output.strip():
            probs.append("'output' is missing or empty")
        if probs:
            return [], probs
        system = obj.get("system")
        if isinstance(system, str) and system.strip():
            msgs.append({"role": "system", "content": system})
        user = instruction.strip() + (f"\n\n{inp.strip()}" if isinstance(inp, str) and inp.strip() else "")
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    else:
        return [], [f"unknown format {fmt!r}"]
    return msgs, probs


def validate_messages(msgs: list[dict]) -> list[str]:
    """Roles known, no empty turns, system only first, user/assistant alternate, ends with an assistant answer."""
    probs: list[str] = []
    if not msgs:
        return ["no turns"]
    for j, m in enumerate(msgs, start=1):
        if m["role"] not in ROLES:
            probs.append(f"turn {j} has an unknown role {m['role']!r} (use system, user or assistant)")
        content = m.get("content")
        if not isinstance(content, str):
            probs.append(f"turn {j} ({m['role']}) has no text content")
        elif not content.strip():
            probs.append(f"turn {j} ({m['role']}) is empty")
        if m["role"] == "system" and j != 1:
            probs.append(f"turn {j} is a system message; put the system message first")
    if probs:
        return probs
    convo = [m for m in msgs if m["role"] != "system"]
    if not convo:
        return ["only a system message: add a user question and an assistant answer"]
    expected = "user"
    for j, m in enumerate(convo, start=1):
        if m["role"] != expected:
            probs.append(f"turns must alternate user/assistant starting with user (turn {j + (len(msgs) - len(convo))} "
                         f"is {m['role']})")
            break
        expected = "assistant" if expected == "user" else "user"
    if convo[-1]["role"] != "assistant":
        probs.append("the last turn must be the assistant answer to learn")
    return probs


def parse_text(text: str, source: str = "data.jsonl") -> Dataset:
    """Parse JSONL (or a JSON array) / CSV text into a Dataset with per-line problems. Never raises on content."""
    text = text.lstrip("\ufeff")
    suffix = Path(source).suffix.lower()
    if suffix == ".csv":
        records, problems = _records_csv(text)
    elif suffix == ".json" or (suffix not in (".jsonl", ".ndjson") and text.lstrip().startswith("[")):
        records, problems = _records_json_array(text)
    else:
        records, problems = _records_jsonl(text)
    ds = Dataset(source=source, problems=problems, n_read=len(records) + len(problems))
    fmts = {line: detect_row_format(obj) for line, obj in records}
    counts = Counter(f for f in fmts.values() if f)
    if counts:
        ds.format = counts.most_common(1)[0][0]
    if len(counts) > 1:
        desc = ", ".join(f"{n} {f}" for f, n in counts.most_common())
        for line, f in fmts.items():
            if f and f != ds.format:
                ds.problems.append(Problem(line, f"this row is in {f} format but the file is mostly {ds.format} "
                                                 f"({desc}); use one format per file"))
    for line, obj in records:
        f = fmts[line]
        if f is None:
            ds.problems.append(Problem(line, "unrecognised row: expected keys messages (chat), instruction/output "
                                             "(alpaca) or conversations (sharegpt)"))
            continue
        if f != ds.format:
            continue
        msgs, probs = to_messages(obj, f)
        probs += validate_messages(msgs) if msgs or not probs else []
        if probs:
            ds.problems += [Problem(line, p) for p in probs]
        else:
            ds.rows.append({"messages": [{"role": m["role"], "content": m["content"]} for m in msgs], "line": line})
    ds.problems.sort(key=lambda p: p.line)
    return ds


def parse_bytes(data: bytes, filename: str, max_mb: float | None = None) -> Dataset:
    if max_mb is not None and len(data) > max_mb * 1024 * 1024:
        raise DatasetError(f"{filename} is {len(data) / 1e6:.1f} MB; the limit is {max_mb} MB "
                           "(WORKBENCH_MAX_UPLOAD_MB).", [(0, "file too large")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{filename} is not UTF-8 text (byte {exc.start}): save it as UTF-8 JSONL or CSV.",
                           [(text_line_of(data, exc.start), "not UTF-8")]) from exc
    if "\x00" in text:
        raise DatasetError(f"{filename} looks binary: upload a JSONL or CSV text file.", [(0, "binary file")])
    return parse_text(text, filename)


def text_line_of(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def load_file(path: str | Path, max_mb: float | None = None) -> Dataset:
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"Data file {p} does not exist.", [(0, "missing file")])
    return parse_bytes(p.read_bytes(), p.name, max_mb=max_mb)


# --- lengths, split, preview ---------------------------------------------------------------------------------
def check_lengths(ds: Dataset, count_tokens: Callable[[list[dict]], int], max_seq_len: int) -> list[int]:
    """Add an error for every row longer than max_seq_len tokens (chat template applied). Returns all lengths."""
    ds.problems = [p for p in ds.problems if not p.message.startswith("too long:")]
    lengths = []
    for row in ds.rows:
        n = count_tokens(row["messages"])
        lengths.append(n)
        if n > max_seq_len:
            ds.problems.append(Problem(row["line"], f"too long: {n} tokens with the chat template, max sequence "
                                                    f"length is {max_seq_len}; shorten the row or raise max length"))
    ds.problems.sort(key=lambda p: p.line)
    return lengths


def split(rows: list[dict], val_fraction: float, seed: int = 42) -> tuple[list[dict], list[dict]]:
    """Shuffled train/validation split; at least one validation row when val_fraction > 0 and there are >= 2 rows."""
    if not 0 <= val_fraction < 1:
        raise DatasetError(f"Validation fraction must be in [0, 1) (got {val_fraction}).")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_val = int(round(len(rows) * val_fraction))
    if val_fraction > 0 and len(rows) >= 2:
        n_val = max(1, min(n_val, len(rows) - 1))
    val_idx = set(order[:n_val])
    return [r for i, r in enumerate(rows) if i not in val_idx], [r for i, r in enumerate(rows) if i in val_idx]


def write_jsonl(rows: list[dict], path: Path) -> None:
    """Write rows as JSONL: a unique temp file, fsynced, then renamed over `path` (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def common_system_prompt(rows: list[dict]) -> str | None:
    """The system prompt shared by every row, if there is exactly one (used for an Ollama SYSTEM line)."""
    systems = {r["messages"][0]["content"] if r["messages"] and r["messages"][0]["role"] == "system" else None
               for r in rows}
    return systems.pop() if len(systems) == 1 else None


def render_preview(messages: list[dict], tokenizer) -> str:
    """The exact text the model is trained on (the tokenizer's chat template)."""
    return tokenizer.apply_chat_template(messages, tokenize=False)


# --- the model's tokenizer (lazy: transformers loads only when a length check or a preview is asked for) --------
_TOKENIZERS: dict[str, object] = {}


def load_tokenizer(base_model: str, settings=None):
    """The base model's Hugging Face tokenizer (the packaged model is converted once on first use)."""
    from core.finetune.convert import resolve_base_model
    folder = resolve_base_model(base_model, settings)
    key = str(folder)
    if key not in _TOKENIZERS:
        from transformers import AutoTokenizer
        _TOKENIZERS[key] = AutoTokenizer.from_pretrained(key, local_files_only=True)
    return _TOKENIZERS[key]


def light_token_tools(base_model: str) -> tuple[Callable[[list[dict]], int], Callable[[list[dict]], str]] | None:
    """(count, preview) through llama.cpp for a packaged GGUF base model: the same vocabulary and chat template
    as the converted Hugging Face tokenizer, without importing torch/transformers (so a page can validate
    lengths on first render). None for other base models, which need `load_tokenizer`."""
    from core.llm.models import PACKAGED_MODELS
    if base_model not in PACKAGED_MODELS:
        return None
    from core.llm.registry import get_backend
    backend = get_backend("embedded")

    def preview(messages: list[dict]) -> str:
        text = backend.render_prompt(messages, base_model)
        # llama.cpp always appends the generation prompt; a training row ends with the assistant's turn
        suffix = "<|im_start|>assistant\n"
        return text[: -len(suffix)] if messages and messages[-1]["role"] == "assistant" and text.endswith(suffix) else text

    return (lambda messages: backend.count_tokens(messages, base_model)), preview


def token_counter(tokenizer) -> Callable[[list[dict]], int]:
    def count(messages: list[dict]) -> int:
        out = tokenizer.apply_chat_template(messages, tokenize=True)
        if isinstance(out, dict) or hasattr(out, "input_ids"):
            out = out["input_ids"]
        return len(out)
    return count


def prepare(ds: Dataset, base_model: str, max_seq_len: int, settings=None) -> Dataset:
    """Length-check every row with the base model's chat template and tokenizer (adds 'too long' problems)."""
    if ds.rows:
        check_lengths(ds, token_counter(load_tokenizer(base_model, settings)), max_seq_len)
    return ds
