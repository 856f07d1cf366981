"""Which server paths the UI may read.

A path typed in a page (ingest folder, evaluation question file, fine-tune base model or data file) is resolved
(`~` expanded, relative to the working directory, every symlink followed) and must then lie under one of the
configured roots: `WORKBENCH_PATH_ROOTS` (os.pathsep-separated), by default `sample_docs/`, the data folder and
its `import/` folder. Anything else is a `PathNotAllowed` with a message saying where to put the file instead.

The CLI and library calls are not limited (`for_ui=False`): whoever runs `python -m core` already has a shell.
"""
from __future__ import annotations

import os
from pathlib import Path

from core.config import SAMPLE_DOCS, Settings, get_settings
from core.errors import PathNotAllowed, TooManyFiles

KINDS = ("any", "file", "dir")


def path_roots(settings: Settings | None = None) -> list[Path]:
    """The resolved roots the UI may read under (the import folder is created so it can be used at once)."""
    s = settings or get_settings()
    if s.path_roots.strip():
        raw = [Path(p).expanduser() for p in s.path_roots.split(os.pathsep) if p.strip()]
    else:
        raw = [SAMPLE_DOCS, s.data_dir, s.import_dir]
        try:
            s.import_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
    out: list[Path] = []
    for r in raw:
        r = (r if r.is_absolute() else Path.cwd() / r).resolve()
        if r not in out:
            out.append(r)
    return out


def is_under(path: Path, roots: list[Path]) -> bool:
    """True when the already-resolved `path` is one of `roots` or inside one."""
    return any(path == r or path.is_relative_to(r) for r in roots)


def _describe(roots: list[Path]) -> str:
    return ", ".join(str(r) for r in roots)


def resolve_path(path: str | Path, *, for_ui: bool, kind: str = "any", must_exist: bool = True,
                 settings: Settings | None = None) -> Path:
    """The resolved path, checked. `for_ui=True` also requires it to be under `path_roots()`.

    Raises PathNotAllowed (outside the roots, or not the expected kind / missing) with a message a user can act on.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    text = str(path or "").strip()
    if not text:
        raise PathNotAllowed("No path given: type a file or folder path.")
    if "\x00" in text:
        raise PathNotAllowed("The path contains a NUL character.")
    p = Path(text).expanduser()
    p = p if p.is_absolute() else Path.cwd() / p
    try:
        resolved = p.resolve(strict=False)   # follows every symlink that exists
    except (OSError, RuntimeError) as exc:   # symlink loop
        raise PathNotAllowed(f"{text}: the path cannot be resolved ({exc}).") from exc
    if for_ui:
        s = settings or get_settings()
        roots = path_roots(s)
        if not is_under(resolved, roots):
            raise PathNotAllowed(
                f"{text} is outside the folders this app may read ({_describe(roots)}). Copy the files into "
                f"{s.import_dir} (or another folder under those), or set WORKBENCH_PATH_ROOTS; the command line "
                "(`python -m core ...`) has no such limit.")
    if must_exist:
        if not resolved.exists():
            raise PathNotAllowed(f"{text}: no such {'folder' if kind == 'dir' else 'file' if kind == 'file' else 'file or folder'}.")
        if kind == "file" and not resolved.is_file():
            raise PathNotAllowed(f"{text} is not a regular file.")
        if kind == "dir" and not resolved.is_dir():
            raise PathNotAllowed(f"{text} is not a folder.")
    return resolved


def ui_path(path: str | Path, kind: str = "any", must_exist: bool = True, settings: Settings | None = None) -> Path:
    """`resolve_path(..., for_ui=True)`: what every page calls on a path typed by the user."""
    return resolve_path(path, for_ui=True, kind=kind, must_exist=must_exist, settings=settings)


def check_batch_size(n: int, what: str = "files", settings: Settings | None = None) -> None:
    """Raise TooManyFiles when a batch is over WORKBENCH_MAX_BATCH_FILES."""
    cap = (settings or get_settings()).max_batch_files
    if cap > 0 and n > cap:
        raise TooManyFiles(f"{n} {what} in one batch is over the limit of {cap}. Send them in smaller batches, or "
                           "raise WORKBENCH_MAX_BATCH_FILES.")
