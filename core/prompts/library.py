"""The prompt library: every prompt is a folder of immutable, diff-friendly YAML versions.

    <prompts_dir>/<name>/v0001.yaml, v0002.yaml, ...   one file per saved version (never rewritten)
    <prompts_dir>/<name>/labels.json                   {"baseline": 3, ...} (a label moves; written atomically)

A version file is the PromptSpec dict (the same form as sample_docs/prompts/*.yaml) preceded by a small `meta`
block (message, created). The version number is the file name, so a save never has to rewrite a file: it writes a
temp file, then hard-links it to the next free `vNNNN.yaml` (exclusive: two concurrent saves get two numbers).
A corrupt file is reported by `errors()` and skipped; every other version still loads.
"""
from __future__ import annotations

import contextlib
import copy
import difflib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from core.config import SAMPLE_DOCS, get_settings
from core.errors import PromptError
from core.jsonout import NESTED_TOO_DEEP, loads
from core.fileio import file_lock, write_text_atomic
from core.prompts.spec import NAME_RE, PromptSpec

VERSION_RE = re.compile(r"^v(\d{4,})\.yaml$")
LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")
MAX_SPEC_BYTES = 1_000_000          # a prompt file larger than this is refused (and reported when found on disk)
MAX_MESSAGE_CHARS = 500
RESERVED_REFS = {"latest"}
_PARSED: dict[tuple, tuple[dict, dict]] = {}     # (path, size, mtime_ns) -> (spec dict, meta): files are immutable
_PARSED_MAX = 5000


class PromptNotFound(PromptError):
    """No prompt, version or label under that reference."""


@dataclass
class VersionInfo:
    name: str
    version: int
    message: str
    created: str                      # ISO 8601, UTC
    labels: list[str] = field(default_factory=list)
    path: Path = Path()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "message": self.message, "created": self.created,
                "labels": list(self.labels), "path": str(self.path)}


# ---- YAML: block style for multi-line strings so a diff shows changed lines, not one long escaped string ----
class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, data: str):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(data) -> str:
    """Safe YAML (only plain types), keys in insertion order, multi-line strings as `|` blocks."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)


def spec_yaml(spec: PromptSpec) -> str:
    return dump_yaml(spec.to_dict())


def parse_ref(ref: str) -> tuple[str, str | None]:
    """'name' -> (name, None); 'name@3' / 'name@v3' -> (name, '3'); 'name@baseline' -> (name, 'baseline')."""
    if not isinstance(ref, str) or not ref.strip():
        raise PromptError("A prompt reference is empty: write NAME, NAME@VERSION or NAME@LABEL.")
    name, sep, sel = ref.strip().partition("@")
    if not NAME_RE.match(name):
        raise PromptError(f"Prompt name {name!r} must be 1-64 characters of a-z, 0-9 and _ (reference {ref!r}).")
    if sep and not sel:
        raise PromptError(f"Reference {ref!r} ends with '@': add a version number or a label, e.g. {name}@1.")
    if sel and re.fullmatch(r"v?\d+", sel):
        sel = sel.lstrip("v")
    return name, (sel or None)


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def validate_spec(spec: PromptSpec) -> PromptSpec:
    """Everything a saved or run prompt must satisfy; raises PromptError / InvalidParams with a clear message."""
    from core.prompts.run import check_schema

    if not isinstance(spec, PromptSpec):
        raise PromptError("Only a PromptSpec can be saved.")
    spec = PromptSpec.from_dict(spec.to_dict())         # name, examples, schema type checks
    if not spec.template.strip():
        raise PromptError(f"Prompt {spec.name!r} has an empty user template: write at least {{question}}.")
    spec.variables()                                      # balanced braces, valid variable names
    spec.params.validate()
    if spec.json_schema is not None:
        check_schema(spec.json_schema)
    size = len(spec_yaml(spec).encode("utf-8"))
    if size > MAX_SPEC_BYTES:
        raise PromptError(f"Prompt {spec.name!r} is {size // 1000} kB; the library keeps prompts up to "
                          f"{MAX_SPEC_BYTES // 1000} kB. Move long reference text into a RAG collection instead.")
    return spec


class PromptLibrary:
    """Versioned prompts on disk. Cheap to create: nothing is cached between calls, so several processes and
    Streamlit sessions can share one folder and always see each other's saves."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else get_settings().prompts_dir
        self._errors: dict[str, str] = {}

    # ---- listing -----------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Prompts that have at least one readable version, sorted."""
        if not self.root.is_dir():
            return []
        out = []
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and NAME_RE.match(d.name) and self.versions(d.name):
                out.append(d.name)
        return out

    def _version_files(self, name: str) -> list[tuple[int, Path]]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        out = []
        for p in folder.iterdir():
            m = VERSION_RE.match(p.name)
            if m and p.is_file():
                out.append((int(m.group(1)), p))
        return sorted(out)

    def _read(self, name: str, version: int, path: Path) -> tuple[PromptSpec, dict]:
        """Parse one version file; raise PromptError naming the file on any problem (and remember it).
        Version files are immutable, so a parse is cached per (path, size, mtime) for the whole process."""
        try:
            st = path.stat()
            key = (str(path), st.st_size, st.st_mtime_ns)
            cached = _PARSED.get(key)
            if cached is None:
                if st.st_size > MAX_SPEC_BYTES * 2:
                    raise PromptError("file is too large")
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise PromptError("not a YAML mapping")
                meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
                body = {k: v for k, v in data.items() if k != "meta"}
                body.setdefault("name", name)
                spec = PromptSpec.from_dict(body)
                spec.name = name
                spec.variables()
                cached = (spec.to_dict(), dict(meta))
                if len(_PARSED) >= _PARSED_MAX:
                    _PARSED.clear()
                _PARSED[key] = cached
            spec = PromptSpec.from_dict(copy.deepcopy(cached[0]))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, PromptError, TypeError, ValueError,
                RecursionError) as exc:     # RecursionError: YAML nested too deeply
            detail = " ".join(str(exc).split())
            msg = f"{path.name}: {detail[:300]}"
            self._errors[str(path)] = msg
            raise PromptError(f"Version {version} of prompt {name!r} is unreadable ({msg}); "
                              f"pick another version or restore an older one.") from exc
        self._errors.pop(str(path), None)
        return spec, dict(cached[1])

    def labels_of(self, name: str) -> dict[str, int]:
        """{label: version} for a prompt (empty when none or when labels.json is corrupt — that is reported)."""
        path = self.root / name / "labels.json"
        if not path.is_file():
            return {}
        try:
            data = loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in data.items()):
                raise ValueError("expected {label: version number}")
        except (OSError, ValueError) as exc:
            self._errors[str(path)] = f"labels.json: {exc}"
            return {}
        self._errors.pop(str(path), None)
        return data

    def versions(self, name: str) -> list[VersionInfo]:
        """Readable versions of a prompt, oldest first. Corrupt files are skipped and listed by `errors()`."""
        labels = self.labels_of(name)
        by_version: dict[int, list[str]] = {}
        for lab, v in labels.items():
            by_version.setdefault(v, []).append(lab)
        out = []
        for v, path in self._version_files(name):
            try:
                _, meta = self._read(name, v, path)
            except PromptError:
                continue
            out.append(VersionInfo(name=name, version=v, message=str(meta.get("message") or ""),
                                   created=str(meta.get("created") or ""), labels=sorted(by_version.get(v, [])),
                                   path=path))
        return out

    def errors(self) -> list[tuple[Path, str]]:
        """Corrupt files found in the library (scans every prompt folder)."""
        self._errors.clear()
        if self.root.is_dir():
            for d in sorted(self.root.iterdir()):
                if d.is_dir():
                    if not NAME_RE.match(d.name):
                        continue
                    self.versions(d.name)
        return [(Path(p), m) for p, m in sorted(self._errors.items())]

    # ---- reading -----------------------------------------------------------------------------------------------
    def resolve(self, ref: str) -> tuple[PromptSpec, int]:
        """'name' (latest), 'name@3', 'name@latest' or 'name@<label>' -> (spec, version)."""
        name, sel = parse_ref(ref)
        files = dict(self._version_files(name))
        if not files:
            known = ", ".join(self.names()) or "none yet"
            raise PromptNotFound(f"No prompt named {name!r} in the library ({self.root}); known: {known}.")
        if sel is None or sel == "latest":
            # the newest readable version
            last_exc: PromptError | None = None
            for v in sorted(files, reverse=True):
                try:
                    return self._read(name, v, files[v])[0], v
                except PromptError as exc:
                    last_exc = exc
            raise PromptError(f"No readable version of prompt {name!r}: {last_exc}")
        if sel.isdigit():
            v = int(sel)
        else:
            labels = self.labels_of(name)
            if sel not in labels:
                have = ", ".join(sorted(labels)) or "none"
                raise PromptNotFound(f"Prompt {name!r} has no label {sel!r} (labels: {have}). "
                                     f"Label a version on the Versions tab or with a version number.")
            v = labels[sel]
        if v not in files:
            raise PromptNotFound(f"Prompt {name!r} has no version {v}; versions: "
                                 f"{', '.join(str(x) for x in sorted(files))}.")
        return self._read(name, v, files[v])[0], v

    def get(self, ref: str) -> PromptSpec:
        return self.resolve(ref)[0]

    def latest_version(self, name: str) -> int:
        files = self._version_files(name)
        return files[-1][0] if files else 0

    # ---- writing -----------------------------------------------------------------------------------------------
    def save(self, spec: PromptSpec, message: str) -> int:
        """Save `spec` as a new immutable version of `spec.name` and return its number.

        Validates first (nothing is written for an invalid spec), writes a temp file, then hard-links it to the
        next free vNNNN.yaml; a link never replaces an existing file, so a concurrent save takes the next number.
        """
        message = (message or "").strip()
        if not message:
            raise PromptError("Write a short message that says what changed in this version.")
        if len(message) > MAX_MESSAGE_CHARS:
            raise PromptError(f"The version message is {len(message)} characters; keep it under {MAX_MESSAGE_CHARS}.")
        spec = validate_spec(spec)
        folder = self.root / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        text = dump_yaml({"meta": {"message": message, "created": _now_iso()}, **spec.to_dict()})
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".yaml", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            v = self.latest_version(spec.name) + 1
            for _ in range(10_000):
                target = folder / f"v{v:04d}.yaml"
                try:
                    _link_exclusive(Path(tmp), target, text)
                    return v
                except FileExistsError:
                    v += 1
            raise PromptError(f"Could not find a free version number for {spec.name!r}.")  # pragma: no cover
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def label(self, name: str, version: int, label: str) -> None:
        """Point `label` (e.g. 'baseline') at `version`; a label that existed moves."""
        if not LABEL_RE.match(label or "") or label.isdigit() or label in RESERVED_REFS:
            raise PromptError(f"Label {label!r} must start with a letter and use letters, digits, '.', '_' or '-' "
                              f"(max 32); 'latest' is reserved.")
        files = dict(self._version_files(name))
        if int(version) not in files:
            raise PromptNotFound(f"Prompt {name!r} has no version {version} to label.")
        self._read(name, int(version), files[int(version)])    # never label an unreadable version
        folder = self.root / name
        with file_lock(folder / ".labels.lock"):
            labels = self.labels_of(name)
            labels[label] = int(version)
            _atomic_write(folder / "labels.json", json.dumps(dict(sorted(labels.items())), indent=2) + "\n")

    def unlabel(self, name: str, label: str) -> None:
        folder = self.root / name
        with file_lock(folder / ".labels.lock"):
            labels = self.labels_of(name)
            if labels.pop(label, None) is not None:
                _atomic_write(folder / "labels.json", json.dumps(dict(sorted(labels.items())), indent=2) + "\n")

    def restore(self, ref: str, message: str | None = None) -> int:
        """Save an old version again as the newest one (history is never rewritten)."""
        spec, v = self.resolve(ref)
        return self.save(spec, message or f"restore of {spec.name}@{v}")

    def diff(self, ref_a: str, ref_b: str) -> str:
        """Unified diff of two versions' YAML (the prompt itself; meta lines left out). '' when identical."""
        spec_a, va = self.resolve(ref_a)
        spec_b, vb = self.resolve(ref_b)
        a = spec_yaml(spec_a).splitlines(keepends=True)
        b = spec_yaml(spec_b).splitlines(keepends=True)
        return "".join(difflib.unified_diff(a, b, fromfile=f"{spec_a.name}@{va}", tofile=f"{spec_b.name}@{vb}"))

    # ---- starter ---------------------------------------------------------------------------------------------
    def ensure_starter(self, source: Path | None = None) -> list[str]:
        """If the library is empty, copy <source or sample_docs/prompts>/*.yaml as version 1 ('starter') of each
        prompt. Returns the names added. Unreadable starter files are skipped (reported in errors())."""
        src = Path(source) if source is not None else SAMPLE_DOCS / "prompts"
        self.root.mkdir(parents=True, exist_ok=True)
        added: list[str] = []
        with file_lock(self.root / ".starter.lock"):
            if self.names():
                return added
            for path in sorted(src.glob("*.yaml")):
                try:
                    data = yaml.safe_load(path.read_text(encoding="utf-8"))
                    if isinstance(data, dict):
                        data.setdefault("name", path.stem)
                    spec = PromptSpec.from_dict(data)
                    self.save(spec, "starter")
                    added.append(spec.name)
                except (OSError, yaml.YAMLError, PromptError, ValueError, TypeError, RecursionError) as exc:
                    self._errors[str(path)] = f"starter {path.name}: {exc}"
        return added


def _atomic_write(path: Path, text: str) -> None:
    write_text_atomic(path, text)      # fsync + atomic replace (core.fileio)


def _link_exclusive(tmp: Path, target: Path, text: str) -> None:
    """Make `target` hold `text` without ever replacing an existing file (raises FileExistsError if taken)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:
        # file systems without hard links: exclusive create, then write (a reader may briefly see it partial)
        with open(target, "x", encoding="utf-8") as fh:
            fh.write(text)


def load_spec_file(path: Path) -> PromptSpec:
    """Read one prompt YAML/JSON file (e.g. a starter prompt) outside the library."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except RecursionError:      # YAML nested too deeply (the JSON reader reports that as a ValueError)
        raise PromptError(f"Cannot read prompt file {Path(path).name}: {NESTED_TOO_DEEP}") from None
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise PromptError(f"Cannot read prompt file {Path(path).name}: {exc}") from exc
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "meta"}
        data.setdefault("name", Path(path).stem)
    return PromptSpec.from_dict(data)


__all__ = ["PromptLibrary", "VersionInfo", "PromptNotFound", "parse_ref", "dump_yaml", "spec_yaml", "validate_spec",
           "load_spec_file", "MAX_SPEC_BYTES"]
