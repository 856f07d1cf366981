#!/usr/bin/env python3
"""Build the outside retrieval-evaluation corpus from a Debian documentation package.

The corpus is the GNU Bash Reference Manual (Bash 5.2) as Debian's `bash-doc` package installs it
(`/usr/share/doc/bash/bashref.html`), split into one plain-text file per manual node (chapter, section,
subsection: ~140 files, ~100k words), rendered the way Texinfo's own plain-text output looks: titles underlined,
examples and definition-list bodies indented, paragraphs wrapped at 72 columns. Nothing large is committed: the
questions (`tests/data/bashref/questions.jsonl`) name these files and quote sentences of them verbatim.

    apt-get install bash-doc
    .venv/bin/python scripts/build_manual_corpus.py [--out DIR] [--source FILE] [--format txt|md]

Default output: <WORKBENCH_DATA>/corpora/bashref/ (replaced atomically: built in a temp folder, then renamed).
Licence: the manual is under the GNU Free Documentation License 1.3 or later, with no Invariant Sections, no
Front-Cover Texts and no Back-Cover Texts (see tests/data/bashref/LICENSE.md); the built files keep that notice
in `manifest.json` and the licence itself (the manual's Appendix C) as one of the corpus files.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PACKAGE = "bash-doc"
SOURCE = Path("/usr/share/doc/bash/bashref.html")
NAME = "bashref"
LICENCE = ("GNU Bash Reference Manual, Edition 5.2. Copyright (C) 1988-2022 Free Software Foundation, Inc. "
           "Permission is granted to copy, distribute and/or modify this document under the terms of the GNU Free "
           "Documentation License, Version 1.3 or any later version published by the Free Software Foundation; "
           "with no Invariant Sections, no Front-Cover Texts, and no Back-Cover Texts.")
# Texinfo node kinds, and the underline character of each level (as in makeinfo's plain-text output).
_NODE_CLASSES = {"top": "*", "chapter": "*", "appendix": "*", "unnumbered": "*",
                 "section": "=", "appendixsec": "=", "unnumberedsec": "=",
                 "subsection": "-", "appendixsubsec": "-", "unnumberedsubsec": "-",
                 "subsubsection": ".", "appendixsubsubsec": ".", "unnumberedsubsubsec": "."}
_SKIP_NODES = {"Indexes"}          # the index appendix: tables of links, no prose
WIDTH = 72


class CorpusError(Exception):
    """The documentation package is missing or its file is not what this script expects."""


def source_path(explicit: Path | None = None) -> Path:
    """The installed manual (plain or gzipped); a CorpusError naming the package when it is absent."""
    for p in ([explicit] if explicit else [SOURCE, SOURCE.with_name(SOURCE.name + ".gz")]):
        if p and Path(p).is_file():
            return Path(p)
    raise CorpusError(f"{explicit or SOURCE} not found: install the Debian package `{PACKAGE}` "
                      f"(apt-get install {PACKAGE}).")


def _read(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def _inline(el) -> str:
    return " ".join(el.get_text("").split())


def _wrap(text: str, indent: str = "", first: str | None = None) -> list[str]:
    if not text:
        return []
    return textwrap.wrap(text, width=WIDTH, initial_indent=indent if first is None else first,
                         subsequent_indent=indent, break_long_words=False, break_on_hyphens=False) or [indent + text]


def _pre(el, indent: str) -> list[str]:
    lines = el.get_text("").strip("\n").split("\n")
    return [(indent + ln).rstrip() for ln in lines]


def _blocks(el, indent: str, md: bool) -> list[list[str]]:
    """The children of `el` as blocks of lines (blocks are separated by a blank line)."""
    from bs4 import NavigableString, Tag

    out: list[list[str]] = []
    loose: list[str] = []

    def flush_loose():
        txt = " ".join("".join(loose).split())
        loose.clear()
        if txt:
            out.append(_wrap(txt, indent))

    for child in el.children:
        if isinstance(child, NavigableString):
            loose.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name, classes = child.name, set(child.get("class") or [])
        if name in ("span", "a", "code", "samp", "var", "em", "strong", "b", "i", "kbd", "small", "cite", "dfn",
                    "abbr", "acronym", "sup", "sub", "q", "tt"):
            loose.append(child.get_text(""))
            continue
        flush_loose()
        if name == "div" and (classes & set(_NODE_CLASSES) or "header" in classes or "contents" in classes):
            continue                                   # nested nodes are files of their own; navigation skipped
        if name in ("hr", "br", "script", "style") or (name == "ul" and "section-toc" in classes):
            continue
        if name == "p":
            txt = _inline(child)
            if txt:
                out.append(_wrap(txt, indent))
        elif name == "pre":
            lines = _pre(child, indent + ("" if md else "     "))
            out.append((["```"] + lines + ["```"]) if md else lines)
        elif name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            txt = _inline(child)
            if txt:
                out.append([("#" * min(6, int(name[1]) + 1) + " " + txt)] if md else [txt, "-" * len(txt)])
        elif name == "dl":
            for item in child.find_all(["dt", "dd"], recursive=False):
                if item.name == "dt":
                    txt = _inline(item).replace(" ¶", "").strip()
                    if txt:
                        out.append([indent + (f"**{txt}**" if md else txt)])
                else:
                    sub = _blocks(item, indent + ("" if md else "     "), md)
                    out.extend(sub)
        elif name in ("ul", "ol"):
            n = 0
            for li in child.find_all("li", recursive=False):
                n += 1
                mark = f"{n}. " if name == "ol" else ("- " if md else "* ")
                sub = _blocks(li, indent + "     ", md)
                if not sub:
                    continue
                first = sub[0]
                head = " ".join(" ".join(ln.strip() for ln in first).split())
                out.append(_wrap(head, indent + "     ", first=indent + "   " + mark))
                out.extend(sub[1:])
        elif name == "table":
            for tr in child.find_all("tr"):
                cells = [_inline(td) for td in tr.find_all(["td", "th"], recursive=False)]
                cells = [c for c in cells if c]
                if cells:
                    out.append([indent + ("| " + " | ".join(cells) + " |" if md else "  ".join(cells))])
        elif name in ("blockquote", "div", "dd", "li"):
            out.extend(_blocks(child, indent + ("" if name == "div" or md else "     "), md))
        else:
            txt = _inline(child)
            if txt:
                out.append(_wrap(txt, indent))
    flush_loose()
    return [b for b in out if any(ln.strip() for ln in b)]


def _slug(title: str) -> str:
    s = re.sub(r"[^a-z0-9.]+", "-", title.lower()).strip("-.")
    return re.sub(r"-{2,}", "-", s)[:80] or "node"


def convert(html: str, fmt: str = "txt") -> list[tuple[str, str]]:
    """(file name, text) for every node of the manual, in document order."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    files: list[tuple[str, str]] = []
    seen: set[str] = set()
    md = fmt == "md"
    for node in soup.find_all("div", class_=list(_NODE_CLASSES)):
        if node.get("id") in _SKIP_NODES or any(p.get("id") in _SKIP_NODES for p in node.find_parents("div")):
            continue
        kind = next(c for c in node.get("class") if c in _NODE_CLASSES)
        head = node.find(["h1", "h2", "h3", "h4"], class_=kind, recursive=False)
        if head is None:
            continue
        title = _inline(head)
        head.extract()                                  # the title is written once, above the body
        body = _blocks(node, "", md)
        if md:
            level = {"*": 1, "=": 2, "-": 3, ".": 4}[_NODE_CLASSES[kind]]
            lines = ["#" * level + " " + title, ""]
        else:
            lines = [title, _NODE_CLASSES[kind] * len(title), ""]
        for b in body:
            lines += b + [""]
        name = _slug(title)
        while name in seen:
            name += "-2"
        seen.add(name)
        files.append((f"{name}.{fmt}", "\n".join(lines).rstrip() + "\n"))
    if len(files) < 50:
        raise CorpusError(f"Only {len(files)} manual nodes found: the file does not look like the Bash reference "
                          "manual that Texinfo writes.")
    return files


def package_version() -> str:
    try:
        import subprocess
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True,
                             timeout=20)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, ValueError):
        return ""
    except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired etc.: the version is informational only
        return ""


def default_out() -> Path:
    from core.config import get_settings
    return get_settings().data_dir / "corpora" / NAME


def build(out: Path | None = None, source: Path | None = None, fmt: str = "txt") -> Path:
    """Write the corpus folder (atomically replacing an old one); returns its path."""
    if fmt not in ("txt", "md"):
        raise CorpusError(f"Unknown format {fmt!r}: use txt or md.")
    src = source_path(source)
    raw = src.read_bytes()
    files = convert(_read(src), fmt)
    out = Path(out) if out else default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, text in files:
            (tmp / name).write_text(text, encoding="utf-8")
        manifest = {"name": NAME, "package": PACKAGE, "package_version": package_version(), "source": str(src),
                    "source_sha256": hashlib.sha256(raw).hexdigest(), "format": fmt, "files": [n for n, _ in files],
                    "words": sum(len(t.split()) for _, t in files), "licence": LICENCE}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old.{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default <data>/corpora/bashref)")
    ap.add_argument("--source", type=Path, default=None, help=f"the manual's HTML (default {SOURCE})")
    ap.add_argument("--format", choices=["txt", "md"], default="txt")
    args = ap.parse_args(argv)
    try:
        out = build(args.out, args.source, args.format)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    print(f"{len(m['files'])} files, {m['words']} words -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
