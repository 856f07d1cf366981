"""A use case = one named folder of plain files, so it can be diffed, versioned, exported and handed to a colleague.

    <data>/usecases/<name>/
        usecase.yaml          name, title, product, description, collection, system_prompt, created
        knowledge/            the documents of the collection (what `usecase new --docs` copied; re-ingested on import)
        prompts/*.yaml        the prompt set (PromptSpec files, the same form as sample_docs/prompts)
        answers.jsonl         imported past answers after mapping/dedup/masking (importers.py)
        train.chat.jsonl      the training dataset (chat JSONL, validated by core.finetune.datasets)
        candidates.jsonl      generated candidate questions and their review state (questions.py, review.py)
        questions.jsonl       the question set: accepted candidates only, in the compare question format
        checks.yaml           accepted voice/format checks (regexes) and refusal patterns
        proposed_checks.json  checks derived from the answers, waiting for the user to accept them

The bundled Tidewave scenario (sample_docs/) is the first use case, `tidewave`: read-only, its files mapped onto
the same logical names. Export writes the logical layout (for `tidewave` too, so a copy is editable); import
checks every member before anything lands in the data folder and moves the finished folder into place at once.
"""
from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import stat
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from core.config import SAMPLE_DOCS, get_settings
from core.errors import UnsafeArchive, UseCaseError
from core.rag.loaders import SUPPORTED

BUILTIN = "tidewave"
FORMAT = 1
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MANIFEST = "usecase.yaml"
FILES = {                                   # logical name -> path inside a use-case folder
    "manifest": MANIFEST,
    "knowledge": "knowledge",
    "prompts": "prompts",
    "answers": "answers.jsonl",
    "train": "train.chat.jsonl",
    "candidates": "candidates.jsonl",
    "questions": "questions.jsonl",
    "checks": "checks.yaml",
    "proposals": "proposed_checks.json",
}
DIRS = ("knowledge", "prompts")
DOC_SUFFIXES = tuple(SUPPORTED)           # what the RAG loaders read
MANIFEST_KEYS = ("name", "title", "product", "description", "collection", "system_prompt", "created", "format")


def _max_mb() -> int:
    return get_settings().max_upload_mb


@dataclass(frozen=True)
class Limits:
    """Caps for an import (archive or folder). Defaults follow WORKBENCH_MAX_UPLOAD_MB."""
    max_file_bytes: int = 0          # one member (0 = WORKBENCH_MAX_UPLOAD_MB)
    max_total_bytes: int = 0         # all members together, uncompressed (0 = 4 x the upload limit)
    max_members: int = 2000

    def resolved(self) -> "Limits":
        mb = _max_mb() * 1024 * 1024
        return Limits(self.max_file_bytes or mb, self.max_total_bytes or 4 * mb, self.max_members)


@dataclass
class UseCase:
    name: str
    path: Path                       # the folder (sample_docs/ for the built-in one)
    title: str = ""
    product: str = ""
    description: str = ""
    collection: str = ""
    system_prompt: str = ""
    created: str = ""
    builtin: bool = False
    paths: dict[str, Path] = field(default_factory=dict)    # logical name -> file; missing key = none

    @property
    def read_only(self) -> bool:
        return self.builtin

    def file(self, key: str) -> Path:
        """Where the logical file lives (it may not exist yet)."""
        if key not in FILES:
            raise UseCaseError(f"Unknown use-case file {key!r}; known: {', '.join(FILES)}.")
        return self.paths.get(key) or self.path / FILES[key]

    def has(self, key: str) -> bool:
        p = self.paths.get(key) if self.builtin else self.path / FILES[key]
        return bool(p) and p.exists()

    def writable(self, key: str) -> Path:
        """The path to write a logical file; raises for the read-only built-in use case."""
        if self.read_only:
            raise UseCaseError(f"The use case {self.name!r} is the bundled demo and is read-only: make an editable "
                               f"copy with `python -m core usecase new my_copy --from {self.name}`.")
        return self.path / FILES[key]

    def manifest(self) -> dict:
        return {"format": FORMAT, "name": self.name, "title": self.title, "product": self.product,
                "description": self.description, "collection": self.collection,
                "system_prompt": self.system_prompt, "created": self.created}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        d["paths"] = {k: str(v) for k, v in self.paths.items()}
        d["read_only"] = self.read_only
        return d


# --- names and folders ----------------------------------------------------------------------------------------
def validate_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise UseCaseError(f"Use-case name {name!r} must start with a lowercase letter and use only lowercase "
                           "letters, digits and '_' (max 32 characters), e.g. `acme_support`.")
    return name


def root() -> Path:
    return get_settings().data_dir / "usecases"


def _folder(name: str) -> Path:
    return root() / validate_name(name)


def _builtin() -> UseCase:
    from core.scenario import load_scenario   # the one scenario loader

    sc = load_scenario()
    raw = sc.raw or {}
    ft = raw.get("finetune") or {}
    paths = {"manifest": SAMPLE_DOCS / "scenario.yaml",
             "knowledge": sc.knowledge_dir or SAMPLE_DOCS / "knowledge",
             "prompts": SAMPLE_DOCS / str(raw.get("prompts_dir") or "prompts"),
             "train": SAMPLE_DOCS / str(ft.get("train") or "finetune/train.chat.jsonl"),
             "questions": sc.questions_path or SAMPLE_DOCS / "eval" / "questions.jsonl"}
    return UseCase(name=BUILTIN, path=SAMPLE_DOCS, title=f"{sc.product or 'Tidewave'} support desk (demo)",
                   product=sc.product or "Tidewave", description=" ".join(str(raw.get("description") or "").split()),
                   collection=sc.collection or "support", system_prompt=sc.system_prompt, created="bundled",
                   builtin=True, paths=paths)


def _read_manifest(folder: Path) -> dict:
    p = folder / MANIFEST
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UseCaseError(f"{folder.name}: no {MANIFEST} in {folder}.") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise UseCaseError(f"{folder.name}: {MANIFEST} is not valid YAML ({exc}).") from exc
    if not isinstance(raw, dict):
        raise UseCaseError(f"{folder.name}: {MANIFEST} must be a mapping of name, title, collection ...")
    return raw


def _from_manifest(folder: Path, raw: dict, name: str | None = None) -> UseCase:
    from core.rag.store import validate_collection

    name = validate_name(name or str(raw.get("name") or folder.name))
    collection = str(raw.get("collection") or name)
    try:
        validate_collection(collection)
    except Exception as exc:  # noqa: BLE001 - InvalidParams: re-raise as a use-case error naming the file
        raise UseCaseError(f"{name}: {MANIFEST} names an invalid collection: {exc}") from exc
    return UseCase(name=name, path=folder, title=str(raw.get("title") or name), product=str(raw.get("product") or ""),
                   description=str(raw.get("description") or ""), collection=collection,
                   system_prompt=str(raw.get("system_prompt") or ""), created=str(raw.get("created") or ""))


def get_usecase(name: str) -> UseCase:
    if (name or "").strip() == BUILTIN:
        return _builtin()
    folder = _folder(name)
    if not folder.is_dir():
        known = ", ".join(u.name for u in list_usecases())
        raise UseCaseError(f"No use case named {name!r}. Known: {known}. Create one with "
                           f"`python -m core usecase new {name}`.")
    return _from_manifest(folder, _read_manifest(folder), name)


def list_usecases() -> list[UseCase]:
    """The built-in demo first, then the data folder's use cases by name (an unreadable one is skipped)."""
    out = [_builtin()]
    base = root()
    if base.is_dir():
        for d in sorted(base.iterdir()):
            if d.is_dir() and NAME_RE.match(d.name) and d.name != BUILTIN and (d / MANIFEST).is_file():
                try:
                    out.append(_from_manifest(d, _read_manifest(d), d.name))
                except UseCaseError:
                    continue
    return out


def write_text_atomic(path: Path, text: str) -> None:
    """Temp file beside `path`, fsync, rename (a reader sees the old file or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    import json
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file written by this package ([] when missing). A corrupt line is a UseCaseError."""
    import json
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise UseCaseError(f"{p.name} line {i} is not valid JSON ({exc}); fix or delete that line.") from exc
    return rows


def _dump_yaml(data) -> str:
    from core.prompts.library import dump_yaml
    return dump_yaml(data)


def starter_prompts(product: str, system_prompt: str = "") -> dict[str, dict]:
    """A generic prompt set for a new use case: zero-shot, few-shot (examples filled from imported answers)
    and a grounded RAG prompt that cites [n] and refuses out-of-scope questions."""
    who = product or "this product"
    base = system_prompt or f"You are a helpful support assistant for {who}."
    params = {"temperature": 0.2, "top_p": 0.95, "max_tokens": 200, "seed": 42, "stop": []}
    return {
        "zero_shot": {"name": "zero_shot", "description": "Just the question and a one-line role.",
                      "system": base + "\n", "template": "{question}\n", "examples": [], "chain_of_thought": False,
                      "params": params, "json_schema": None},
        "few_shot": {"name": "few_shot", "description": "Worked examples in the voice of the past answers.",
                     "system": base + "\nAnswer in the same style as the examples.\n", "template": "{question}\n",
                     "examples": [], "chain_of_thought": False, "params": params, "json_schema": None},
        "guardrail": {
            "name": "guardrail", "description": f"Grounded answers only: cites [1], [2] and refuses questions "
                                                f"outside {who}.",
            "system": (f"{base}\nRules:\n"
                       "1. Answer only from the numbered context passages. After each fact, cite its passage number "
                       "in square brackets, like [1] or [2].\n"
                       f"2. If the context does not contain the answer, say \"I don't know based on the {who} "
                       "documentation.\" and do not guess.\n"
                       f"3. If the question is not about {who}, reply \"Sorry, I can only help with questions about "
                       f"{who}.\" and nothing else.\nKeep answers under 120 words.\n"),
            "template": "Context:\n{context}\n\nQuestion: {question}\n", "examples": [], "chain_of_thought": False,
            "params": {**params, "temperature": 0.0, "top_p": 1.0, "max_tokens": 220}, "json_schema": None},
    }


def create_usecase(name: str, *, title: str = "", product: str = "", description: str = "", collection: str = "",
                   system_prompt: str = "", docs: list[Path] | None = None) -> UseCase:
    """A new use-case folder with a manifest, the starter prompt set, default refusal patterns and (optionally)
    copies of `docs` (files or folders of txt/md/html/pdf/docx) under knowledge/. Built in a temp folder and
    renamed into place, so a failure leaves nothing behind."""
    from core.rag import loaders
    from core.rag.store import validate_collection
    from core.usecase.checks import default_checks

    name = validate_name(name)
    if name == BUILTIN:
        raise UseCaseError(f"{BUILTIN!r} is the bundled demo; choose another name.")
    dest = _folder(name)
    if dest.exists():
        raise UseCaseError(f"A use case named {name!r} already exists ({dest}).")
    collection = validate_collection(collection or name)
    uc = UseCase(name=name, path=dest, title=title or name, product=product, description=description,
                 collection=collection, system_prompt=system_prompt,
                 created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    tmp = root() / f".new-{name}-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        (tmp / "knowledge").mkdir()
        (tmp / "prompts").mkdir()
        copied = 0
        for f, doc_id in loaders.expand_paths([Path(p) for p in (docs or [])]):
            if f.is_symlink() or not f.is_file():
                continue
            target = tmp / "knowledge" / doc_id
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
            copied += 1
        if docs and not copied:
            raise UseCaseError("No documents found in " + ", ".join(str(d) for d in docs)
                               + f" (supported: {', '.join(DOC_SUFFIXES)}).")
        for pname, spec in starter_prompts(product, system_prompt).items():
            (tmp / "prompts" / f"{pname}.yaml").write_text(_dump_yaml(spec), encoding="utf-8")
        (tmp / FILES["checks"]).write_text(_dump_yaml(default_checks()), encoding="utf-8")
        (tmp / MANIFEST).write_text(_dump_yaml(uc.manifest()), encoding="utf-8")
        os.replace(tmp, dest)
    except FileExistsError as exc:
        raise UseCaseError(f"A use case named {name!r} already exists ({dest}).") from exc
    except OSError as exc:
        raise UseCaseError(f"Could not create the use case {name!r}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return get_usecase(name)


def update_manifest(uc: UseCase, **fields) -> UseCase:
    path = uc.writable("manifest")
    data = {**uc.manifest(), **{k: v for k, v in fields.items() if k in MANIFEST_KEYS and k != "name"}}
    if "collection" in fields:
        from core.rag.store import validate_collection
        data["collection"] = validate_collection(str(fields["collection"]))
    write_text_atomic(path, _dump_yaml(data))
    return get_usecase(uc.name)


def delete_usecase(name: str) -> None:
    uc = get_usecase(name)
    if uc.read_only:
        raise UseCaseError(f"{name!r} is the bundled demo: read-only, it cannot be deleted.")
    trash = root() / f".trash-{name}-{secrets.token_hex(4)}"
    os.replace(uc.path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def knowledge_files(uc: UseCase) -> list[Path]:
    d = uc.file("knowledge")
    if not d.is_dir():
        return []
    return sorted(p for p in d.rglob("*") if p.is_file() and not p.is_symlink()
                  and p.suffix.lower() in DOC_SUFFIXES and not p.name.startswith("."))


# --- checks and the scenario view --------------------------------------------------------------------------
def load_checks(uc: UseCase) -> dict:
    """{"voice_checks": [VoiceCheck dicts], "refusal_patterns": [regex]} (validated)."""
    from core.usecase.checks import default_checks, validate_checks

    if uc.builtin:
        from core.scenario import load_scenario
        sc = load_scenario()
        data = {"voice_checks": [asdict(v) for v in sc.voice_checks],
                "refusal_patterns": list((sc.raw or {}).get("refusal_patterns") or default_checks()["refusal_patterns"])}
        return validate_checks(data, "scenario.yaml")
    p = uc.file("checks")
    if not p.is_file():
        return default_checks()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise UseCaseError(f"{uc.name}: checks.yaml is not valid YAML ({exc}).") from exc
    return validate_checks(data, f"{uc.name}/checks.yaml")


def save_checks(uc: UseCase, data: dict) -> dict:
    from core.usecase.checks import validate_checks
    data = validate_checks(data, f"{uc.name}/checks.yaml")
    write_text_atomic(uc.writable("checks"), _dump_yaml(data))
    return data


def scenario_of(uc: UseCase):
    """The use case as the Compare runner's Scenario (product, collection, questions, voice checks), so
    `runner.create_run(..., scenario=scenario_of(uc))` scores answers against this use case's checks."""
    from core.scenario import Scenario, VoiceCheck, load_scenario

    if uc.builtin:
        return load_scenario()
    checks = load_checks(uc)
    return Scenario(product=uc.product or uc.title, collection=uc.collection, knowledge_dir=uc.file("knowledge"),
                    questions_path=uc.file("questions"), system_prompt=uc.system_prompt,
                    voice_checks=[VoiceCheck(**v) for v in checks["voice_checks"]],
                    raw={"product": uc.product or uc.title, "collection": uc.collection,
                         "refusal_patterns": checks["refusal_patterns"]})


def prompt_names(uc: UseCase) -> list[str]:
    d = uc.file("prompts")
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def library_prompt_name(uc: UseCase, prompt: str) -> str:
    """The name a use case's prompt gets in the shared prompt library (the built-in demo's are the starters)."""
    return prompt if uc.builtin else f"{uc.name}__{prompt}"


def install_prompts(uc: UseCase) -> dict[str, str]:
    """Save each prompt file of the use case into the prompt library as `<usecase>__<prompt>` (a new version only
    when it changed), so Compare approaches can name them. Returns {prompt: library ref}."""
    from core.prompts.library import PromptLibrary, PromptNotFound, load_spec_file

    lib = PromptLibrary()
    lib.ensure_starter()        # first: an empty library gets the demo's starters even when a use case comes first
    if uc.builtin:
        return {p: p for p in prompt_names(uc)}
    out = {}
    for p in prompt_names(uc):
        spec = load_spec_file(uc.file("prompts") / f"{p}.yaml")
        spec.name = library_prompt_name(uc, p)
        try:
            cur = lib.get(spec.name)
            same = cur.to_dict() == spec.to_dict()
        except PromptNotFound:
            same = False
        version = lib.latest_version(spec.name) if same else lib.save(spec, f"from use case {uc.name}")
        out[p] = f"{spec.name}@{version}"
    return out


def usecase_adapter(uc: UseCase) -> str | None:
    """The newest fine-tuned adapter trained for this use case: named after it (`finetune --name NAME`) or
    trained on its train.chat.jsonl. The bundled demo takes the newest adapter (as the Compare page does)."""
    from core.llm.models import list_adapters

    train = uc.file("train").resolve()
    adapters = list_adapters()
    for a in adapters:
        spec = (a.extra or {}).get("spec") or {}
        data = str(spec.get("data") or "")
        if (a.extra or {}).get("name") == uc.name or (data and Path(data).expanduser().resolve() == train):
            return a.model_id
    if uc.builtin and adapters:
        return "ft:latest"
    return None


def approach_strings(uc: UseCase, adapter: str | None = None, k: int = 4, mode: str = "hybrid") -> list[str]:
    """The classic approaches on this use case as `compare --approach` strings: prompt only (few-shot), prompt +
    RAG (guardrail), and, once an adapter is trained for it, fine-tuned and fine-tuned + RAG."""
    from core.llm.models import DEFAULT_MODEL

    rag = f"{uc.collection}:{mode}:{k}"
    p = {n: library_prompt_name(uc, n) for n in ("few_shot", "guardrail", "zero_shot")}
    out = [f"prompt_only=model={DEFAULT_MODEL},prompt={p['few_shot']}",
           f"prompt_rag=model={DEFAULT_MODEL},prompt={p['guardrail']},rag={rag}"]
    adapter = adapter or usecase_adapter(uc)
    if adapter:
        out += [f"fine_tuned=model={adapter},prompt={p['zero_shot']}",
                f"fine_tuned_rag=model={adapter},prompt={p['guardrail']},rag={rag}"]
    return out


def compare_command(uc: UseCase) -> str:
    """The one CLI line that runs the first comparison on this use case (its question set, collection, prompt
    set and voice checks)."""
    if uc.builtin:
        return "python -m core compare --preset classic"
    return f"python -m core usecase compare {uc.name} --run"


def classic_approaches(uc: UseCase, adapter: str | None = None):
    """The classic approaches on this use case as ApproachSpecs. The bundled demo gets exactly Compare's classic
    preset (`compare --preset classic`); another use case gets `approach_strings`, with its prompts installed in
    the prompt library first (so the approaches can name them)."""
    from core.compare.approach import classic_presets, parse_approach

    if uc.builtin:
        return classic_presets(uc.collection)
    install_prompts(uc)
    return [parse_approach(a) for a in approach_strings(uc, adapter)]


@dataclass(frozen=True)
class PageInputs:
    """What every page reads from the selected use case: its collection, prompt set, training dataset, question
    set and checks (as the Compare runner's Scenario). For the bundled demo these are exactly the scenario's."""
    name: str
    title: str
    builtin: bool
    collection: str
    prompts_dir: Path
    prompts: tuple[str, ...]          # the prompt set as prompt-library names (`NAME__few_shot`; the demo's plain)
    train: Path                       # chat JSONL (may not exist yet)
    questions: Path                   # the question set (may not exist yet)
    system_prompt: str
    scenario: object                  # core.scenario.Scenario: product, collection, voice checks, refusal patterns

    @property
    def has_questions(self) -> bool:
        return self.questions.is_file()

    def question_set(self, limit: int | None = None) -> list:
        """The question set, parsed strictly (DatasetError naming what to do when there is none yet)."""
        from core.errors import DatasetError
        from core.scenario import load_questions

        if not self.builtin and not self.questions.is_file():
            raise DatasetError(f"The use case {self.name!r} has no question set yet: generate candidate questions "
                               "and save the reviewed ones on the Use Case page "
                               f"(`python -m core usecase review {self.name} --save`).", [], self.questions.name)
        if self.builtin:
            return self.scenario.questions(limit)
        qs = load_questions(self.questions)
        return qs[:limit] if limit else qs

    def prompt_values(self) -> dict:
        """{product}, {system_prompt} ... for prompt templates (the scenario's top-level values)."""
        return dict(self.scenario.raw or {})


def page_inputs(name: str | None = None) -> PageInputs:
    """The one place pages learn what the selected use case (default: the bundled demo) gives them. Cheap: reads
    files only (no model, no embedder, nothing written)."""
    uc = get_usecase(name or BUILTIN)
    sc = scenario_of(uc)
    raw = sc.raw or {}
    return PageInputs(name=uc.name, title=uc.title, builtin=uc.builtin, collection=uc.collection,
                      prompts_dir=uc.file("prompts"),
                      prompts=tuple(library_prompt_name(uc, p) for p in prompt_names(uc)),
                      train=uc.file("train"), questions=uc.file("questions"),
                      system_prompt=uc.system_prompt or str(raw.get("system_prompt") or ""), scenario=sc)


def start_comparison(uc: UseCase, adapter: str | None = None, limit: int | None = None, name: str = "") -> str:
    """Create (not run) a Compare run of the classic approaches on this use case: its prompts installed in the
    prompt library, its question set, and its own voice checks (not the demo's). Returns the run id."""
    from core.compare import runner
    from core.scenario import load_questions

    if not uc.file("questions").is_file():
        raise UseCaseError(f"{uc.name} has no question set yet: generate candidates, accept some and save them "
                           f"(`python -m core usecase review {uc.name} --save`).")
    questions = load_questions(uc.file("questions"))
    specs = classic_approaches(uc, adapter)
    return runner.create_run(specs, questions, name=name or f"{uc.name}-first", questions_source=str(uc.file("questions")),
                             limit=limit, scenario=scenario_of(uc))


# --- summary ------------------------------------------------------------------------------------------------------
def summary(uc: UseCase) -> dict:
    """What the use case holds now (cheap: no model, no embedder; the collection is only counted if it exists)."""
    from core.usecase import review

    cands = review.load_candidates(uc) if uc.has("candidates") else []
    by_status: dict[str, int] = {}
    for c in cands:
        by_status[c.status] = by_status.get(c.status, 0) + 1
    qs = uc.file("questions")
    n_questions = sum(1 for line in qs.read_text(encoding="utf-8").splitlines() if line.strip()) if qs.is_file() else 0
    tr = uc.file("train")
    n_train = sum(1 for line in tr.read_text(encoding="utf-8").splitlines() if line.strip()) if tr.is_file() else 0
    checks = load_checks(uc)
    proposals = read_proposals(uc)
    return {"name": uc.name, "title": uc.title, "product": uc.product, "collection": uc.collection,
            "read_only": uc.read_only, "path": str(uc.path), "documents": len(knowledge_files(uc)),
            "prompts": prompt_names(uc), "candidates": len(cands), "candidates_by_status": by_status,
            "questions": n_questions, "training_rows": n_train,
            "answers": len(read_jsonl(uc.file("answers"))) if uc.has("answers") else 0,
            "voice_checks": [c["name"] for c in checks["voice_checks"]],
            "refusal_patterns": len(checks["refusal_patterns"]),
            "proposed_checks": [p["name"] for p in proposals   # not accepted yet
                                if p.get("pattern") not in {c["pattern"] for c in checks["voice_checks"]}]}


def read_proposals(uc: UseCase) -> list[dict]:
    """Proposed checks (derived from the imported answers); an entry that is not a valid check is dropped (the
    file may come from someone else's archive)."""
    from core.fileio import read_json
    from core.usecase.checks import validate_checks
    if uc.builtin:
        return []
    data = read_json(uc.file("proposals"), default=[])
    out = []
    for p in data if isinstance(data, list) else []:
        try:
            validate_checks({"voice_checks": [p]})
            int(p.get("matched", 0)), int(p.get("total", 0)), float(p.get("support", 0))
        except (UseCaseError, AttributeError, TypeError, ValueError):
            continue
        out.append(p)
    return out


# --- export -------------------------------------------------------------------------------------------------------
def _export_entries(uc: UseCase) -> list[tuple[str, Path | bytes]]:
    """(relative path in the export, source file or bytes) in the logical layout."""
    entries: list[tuple[str, Path | bytes]] = [(MANIFEST, _dump_yaml(uc.manifest()).encode("utf-8"))]
    if uc.builtin:
        entries.append((FILES["checks"], _dump_yaml(load_checks(uc)).encode("utf-8")))
    for key in ("answers", "train", "candidates", "questions", "checks", "proposals"):
        if uc.builtin and key == "checks":
            continue
        p = uc.paths.get(key) if uc.builtin else uc.path / FILES[key]
        if p is not None and p.is_file():
            entries.append((FILES[key], p))
    for f in knowledge_files(uc):
        entries.append(("knowledge/" + f.relative_to(uc.file("knowledge")).as_posix(), f))
    pdir = uc.file("prompts")
    if pdir.is_dir():
        for f in sorted(pdir.glob("*.yaml")):
            if f.is_file() and not f.is_symlink():
                entries.append((f"prompts/{f.name}", f))
    return entries


def export_usecase(name: str, dest: str | Path, overwrite: bool = False) -> Path:
    """Write the use case to `dest`: a .tar.gz (or .tgz) archive holding one folder <name>/, or a folder.
    Written beside `dest` first and renamed, so `dest` is never half written."""
    uc = get_usecase(name)
    dest = Path(dest).expanduser()
    is_archive = dest.name.endswith((".tar.gz", ".tgz"))
    if dest.exists() and not overwrite:
        raise UseCaseError(f"{dest} already exists; choose another path or pass --force.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(3)}.tmp")
    try:
        if is_archive:
            with tarfile.open(tmp, "w:gz") as tar:
                for rel, src in _export_entries(uc):
                    data = src if isinstance(src, bytes) else Path(src).read_bytes()
                    info = tarfile.TarInfo(f"{uc.name}/{rel}")
                    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                    tar.addfile(info, io.BytesIO(data))
        else:
            tmp.mkdir()
            for rel, src in _export_entries(uc):
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(src, bytes):
                    target.write_bytes(src)
                else:
                    shutil.copyfile(src, target)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.{secrets.token_hex(3)}.old")
            os.replace(dest, old)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    return dest


# --- import (safe) ------------------------------------------------------------------------------------------------
def _allowed(rel: PurePosixPath) -> bool:
    parts = rel.parts
    if not parts or any(p.startswith(".") for p in parts):
        return False
    if len(parts) == 1:
        return parts[0] in {v for k, v in FILES.items() if k not in DIRS}
    if parts[0] == "prompts":
        return len(parts) == 2 and parts[1].endswith(".yaml")
    if parts[0] == "knowledge":
        return Path(parts[-1]).suffix.lower() in DOC_SUFFIXES
    return False


def _safe_rel(name: str) -> PurePosixPath:
    """A member name as a relative path that stays inside the root, or UnsafeArchive."""
    if "\\" in name or "\x00" in name:
        raise UnsafeArchive(f"Refused: the member {name!r} has a backslash or NUL in its name.")
    p = PurePosixPath(name)
    if p.is_absolute() or name.startswith("/"):
        raise UnsafeArchive(f"Refused: the member {name!r} is an absolute path.")
    parts = [x for x in p.parts if x not in ("", ".")]
    if any(x == ".." for x in parts):
        raise UnsafeArchive(f"Refused: the member {name!r} climbs out of the archive with '..'.")
    return PurePosixPath(*parts) if parts else PurePosixPath()


def _strip_top(rels: list[PurePosixPath]) -> tuple[str | None, int]:
    """If every member lives under one top folder that is not itself a layout name, strip it."""
    tops = {r.parts[0] for r in rels if r.parts}
    if len(tops) == 1:
        top = next(iter(tops))
        if top not in FILES.values() and all(len(r.parts) >= 1 for r in rels):
            return top, 1
    return None, 0


def _copy_limited(src, dst: Path, budget: list[int], per_file: int, name: str) -> int:
    """Stream `src` (a binary file object) to a new file `dst`, counting bytes against both caps."""
    n = 0
    with open(dst, "xb") as out:
        while True:
            block = src.read(1 << 16)
            if not block:
                break
            n += len(block)
            budget[0] -= len(block)
            if n > per_file:
                raise UnsafeArchive(f"Refused: {name} is larger than {per_file // (1024 * 1024)} MB "
                                    "(WORKBENCH_MAX_UPLOAD_MB).")
            if budget[0] < 0:
                raise UnsafeArchive("Refused: the files together are larger than the import limit "
                                    "(4 x WORKBENCH_MAX_UPLOAD_MB uncompressed).")
            out.write(block)
    return n


@dataclass
class ImportResult:
    usecase: UseCase
    files: int
    skipped: list[str]

    def to_dict(self) -> dict:
        return {"name": self.usecase.name, "path": str(self.usecase.path), "files": self.files,
                "skipped": self.skipped}


def _extract_archive(src: Path, into: Path, lim: Limits) -> tuple[int, list[str]]:
    try:
        tar = tarfile.open(src, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise UseCaseError(f"{src.name} is not a readable .tar.gz archive ({exc}).") from exc
    with tar:
        members = []
        try:
            for i, m in enumerate(tar):
                if i >= lim.max_members:
                    raise UnsafeArchive(f"Refused: {src.name} has more than {lim.max_members} members.")
                members.append(m)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UseCaseError(f"{src.name} is a damaged archive ({exc}).") from exc
        rels = []
        for m in members:
            rel = _safe_rel(m.name)
            if m.issym() or m.islnk():
                raise UnsafeArchive(f"Refused: {m.name!r} is a link; a use-case archive holds plain files only.")
            if not (m.isfile() or m.isdir()):
                raise UnsafeArchive(f"Refused: {m.name!r} is a device, FIFO or other special file.")
            if m.isfile() and m.size > lim.max_file_bytes:
                raise UnsafeArchive(f"Refused: {m.name!r} is larger than {lim.max_file_bytes // (1024 * 1024)} MB.")
            rels.append(rel)
        if sum(m.size for m in members if m.isfile()) > lim.max_total_bytes:
            raise UnsafeArchive("Refused: the files together are larger than the import limit.")
        _, strip = _strip_top([r for r, m in zip(rels, members) if m.isfile()])
        budget = [lim.max_total_bytes]
        n, skipped = 0, []
        for m, rel in zip(members, rels):
            if not m.isfile():
                continue
            inner = PurePosixPath(*rel.parts[strip:]) if len(rel.parts) > strip else PurePosixPath()
            if not _allowed(inner):
                skipped.append(m.name)
                continue
            dst = into / Path(*inner.parts)
            dst.parent.mkdir(parents=True, exist_ok=True)
            fh = tar.extractfile(m)
            if fh is None:
                skipped.append(m.name)
                continue
            with fh:
                _copy_limited(fh, dst, budget, lim.max_file_bytes, m.name)
            n += 1
    return n, skipped


def _copy_folder(src: Path, into: Path, lim: Limits) -> tuple[int, list[str]]:
    budget = [lim.max_total_bytes]
    n, skipped, seen = 0, [], 0
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        for d in list(dirnames):
            if (Path(dirpath) / d).is_symlink():
                raise UnsafeArchive(f"Refused: {Path(dirpath, d).relative_to(src)} is a symbolic link.")
        for fname in filenames:
            p = Path(dirpath) / fname
            rel = PurePosixPath(p.relative_to(src).as_posix())
            seen += 1
            if seen > lim.max_members:
                raise UnsafeArchive(f"Refused: {src} holds more than {lim.max_members} files.")
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeArchive(f"Refused: {rel} is a symbolic link; a use-case folder holds plain files only.")
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeArchive(f"Refused: {rel} is a device, FIFO or other special file.")
            if not _allowed(rel):
                skipped.append(str(rel))
                continue
            dst = into / Path(*rel.parts)
            dst.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "rb") as fh:
                _copy_limited(fh, dst, budget, lim.max_file_bytes, str(rel))
            n += 1
    return n, skipped


def _validate_folder(folder: Path, name: str) -> None:
    """Everything an imported use case holds must parse before it is accepted."""
    from core.scenario import parse_questions
    from core.errors import DatasetError, PromptError
    from core.finetune.datasets import parse_text
    from core.prompts.library import load_spec_file
    from core.usecase.checks import validate_checks

    q = folder / FILES["questions"]
    if q.is_file():
        try:
            parse_questions(q.read_bytes(), q.name)
        except DatasetError as exc:
            raise UseCaseError(f"The imported question set is invalid: {exc}") from exc
    t = folder / FILES["train"]
    if t.is_file():
        try:
            ds = parse_text(t.read_text(encoding="utf-8"), t.name)
        except UnicodeDecodeError as exc:
            raise UseCaseError("The imported training dataset is not UTF-8 text.") from exc
        if ds.errors:
            raise UseCaseError(f"The imported training dataset has {len(ds.errors)} problem(s): "
                               + "; ".join(str(p) for p in ds.errors[:3]))
    c = folder / FILES["checks"]
    if c.is_file():
        try:
            validate_checks(yaml.safe_load(c.read_text(encoding="utf-8")) or {}, "checks.yaml")
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
            raise UseCaseError(f"The imported checks.yaml is not valid YAML ({exc}).") from exc
    for p in sorted((folder / "prompts").glob("*.yaml")) if (folder / "prompts").is_dir() else []:
        try:
            load_spec_file(p)
        except (PromptError, ValueError, TypeError) as exc:
            raise UseCaseError(f"The imported prompt {p.name} is invalid: {exc}") from exc
    for key in ("candidates", "answers"):
        read_jsonl(folder / FILES[key])


def import_usecase(src: str | Path, name: str | None = None, overwrite: bool = False,
                   limits: Limits | None = None) -> ImportResult:
    """Import a use case from a folder or a .tar.gz archive made by export_usecase (or by hand).

    Every member is checked first: no absolute path, no '..', no link, no device, per-file and total size caps
    (uncompressed bytes are counted while extracting, so a compression bomb stops at the cap), at most
    `max_members` members. Unknown files are skipped and listed. The manifest, question set, training data,
    checks and prompts must parse. Only then is the folder moved into <data>/usecases/<name>/ in one rename;
    on any failure nothing is left behind."""
    src = Path(src).expanduser()
    lim = (limits or Limits()).resolved()
    if not src.exists():
        raise UseCaseError(f"{src}: no such file or folder.")
    if src.is_symlink():
        raise UnsafeArchive(f"Refused: {src} is a symbolic link.")
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".import-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        if src.is_dir():
            inner = src
            if not (src / MANIFEST).is_file():
                subs = [d for d in src.iterdir() if d.is_dir() and not d.is_symlink() and (d / MANIFEST).is_file()]
                if len(subs) == 1:
                    inner = subs[0]
            n, skipped = _copy_folder(inner, tmp, lim)
        else:
            if src.stat().st_size > lim.max_total_bytes:
                raise UnsafeArchive(f"Refused: {src.name} is larger than the import limit.")
            n, skipped = _extract_archive(src, tmp, lim)
        if not (tmp / MANIFEST).is_file():
            raise UseCaseError(f"{src.name} holds no {MANIFEST}: it is not a use-case export.")
        raw = _read_manifest(tmp)
        final_name = validate_name(name or str(raw.get("name") or ""))
        if final_name == BUILTIN:
            raise UseCaseError(f"{BUILTIN!r} is the bundled demo; import it under another name (--name).")
        uc = _from_manifest(tmp, raw, final_name)
        (tmp / "knowledge").mkdir(exist_ok=True)
        (tmp / "prompts").mkdir(exist_ok=True)
        _validate_folder(tmp, final_name)
        if not uc.created:
            uc.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        (tmp / MANIFEST).write_text(_dump_yaml(uc.manifest()), encoding="utf-8")
        dest = base / final_name
        if dest.exists():
            if not overwrite:
                raise UseCaseError(f"A use case named {final_name!r} already exists; pass --name NEW or --force.")
            trash = base / f".trash-{final_name}-{secrets.token_hex(4)}"
            os.replace(dest, trash)
            os.replace(tmp, dest)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, dest)
        return ImportResult(get_usecase(final_name), n, skipped)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def copy_usecase(src_name: str, new_name: str, title: str = "") -> UseCase:
    """An editable copy (e.g. of the bundled demo) under a new name."""
    validate_name(new_name)
    if (root() / new_name).exists():
        raise UseCaseError(f"A use case named {new_name!r} already exists.")
    root().mkdir(parents=True, exist_ok=True)
    tmp = root() / f".copy-{secrets.token_hex(4)}"
    try:
        export_usecase(src_name, tmp)
        res = import_usecase(tmp, name=new_name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    uc = res.usecase
    if title:
        uc = update_manifest(uc, title=title)
    return uc
