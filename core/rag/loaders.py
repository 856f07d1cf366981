"""Document loaders: txt / md / html / pdf / docx -> plain text with light structure (markdown-style headings).

Every failure is a typed IngestError with a message a user can act on. Nothing here writes to disk.
"""
from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from core.errors import (CorruptDocument, DocumentLimitExceeded, EmptyDocument, FileTooLarge, IngestError,
                         UnsupportedFile)

SUPPORTED = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
             ".pdf": "pdf", ".docx": "docx"}
_ODD = re.compile(r"[^A-Za-z0-9._ ()\-+#,@=]")

# Parsing limits (each breach is a per-file DocumentLimitExceeded; the rest of a batch goes on). Time and memory
# per file are limited by the parse sandbox (core.limits), which runs these loaders in a child process.
MAX_TEXT_CHARS = 10_000_000         # extracted characters per document (~4,000 pages of prose)
MAX_PDF_PAGES = 2_000
DOCX_MAX_UNCOMPRESSED = 200 * 1024 * 1024    # sum of the declared member sizes of a .docx (a zip)
DOCX_MAX_RATIO = 100                # uncompressed/compressed of one member over DOCX_RATIO_MIN_BYTES
DOCX_RATIO_MIN_BYTES = 1024 * 1024
DOCX_MAX_MEMBERS = 10_000
HTML_MAX_DEPTH = 1_000              # element nesting; block extraction costs O(elements x depth)


class EncryptedDocument(IngestError):
    """A password-protected PDF: it cannot be read without the password."""


@dataclass
class Document:
    doc_id: str               # sanitised name, used as the key in the index
    display_name: str         # original name, display only
    kind: str
    text: str
    content_hash: str         # sha256 of the raw bytes
    size_bytes: int
    meta: dict = field(default_factory=dict)


def sanitize_name(name: str) -> str:
    """A safe document name: basename only, no `..`, no path separators or control/odd characters.

    'odd name (copy) #2.md' stays readable; '../../etc/passwd' becomes 'passwd'; '' becomes 'document'.
    """
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/")
    base = PurePosixPath(name).name
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _ODD.sub("_", base).strip(" .")
    base = re.sub(r"\.{2,}", ".", base)
    base = re.sub(r"_{2,}", "_", base)
    return base[:128] or "document"


def sanitize_rel_path(rel: str) -> str:
    """A relative path under an ingested folder, each part sanitised (keeps sub-folder names as context)."""
    parts = [sanitize_name(p) for p in str(rel).replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "document"


def clean_text(text: str) -> str:
    """Normalise unicode, drop control characters, trim trailing spaces, collapse runs of blank lines."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = text.replace("\t", "    ")
    lines = [re.sub(r"[ \u00a0]+$", "", ln) for ln in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _decode_text(data: bytes, name: str) -> str:
    if b"\x00" in data[:65536]:
        raise UnsupportedFile(f"{name}: the file contains binary data (NUL bytes), not text. "
                              "Upload a text, Markdown, HTML, PDF or DOCX file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:   # the usual non-UTF-8 text on Windows; fails on bytes it does not define
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") + sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
    if bad > max(8, len(text) // 100):
        raise UnsupportedFile(f"{name}: the file is not UTF-8 text (looks binary or uses another encoding). "
                              "Save it as UTF-8 and upload it again.")
    return text


def _too_many_chars(name: str, n: int) -> DocumentLimitExceeded:
    return DocumentLimitExceeded(f"{name}: over {MAX_TEXT_CHARS:,} characters of text ({n:,} so far); split the "
                                 "document into smaller files.")


_HTML_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td", "th", "blockquote", "dt", "dd")
_HTML_CONTAINERS = frozenset(("li", "p", "td", "th", "blockquote", "dd"))


def _html_to_text(html: str, name: str = "document") -> str:
    from bs4 import BeautifulSoup, Tag

    soup = BeautifulSoup(html, "html.parser")
    # One pass in document order (parents come before children): nesting depth and "inside a container" per
    # element, so the block loop below never walks up the tree (that was O(elements x depth)).
    depth: dict[int, int] = {id(soup): 0}
    inside: dict[int, bool] = {id(soup): False}
    for el in soup.descendants:
        if not isinstance(el, Tag):
            continue
        par = el.parent
        d = depth[id(par)] + 1
        if d > HTML_MAX_DEPTH:
            raise DocumentLimitExceeded(f"{name}: the HTML nests elements more than {HTML_MAX_DEPTH} levels deep; "
                                        "it cannot be read safely. Save it as plain text or re-export it.")
        depth[id(el)] = d
        inside[id(el)] = inside[id(par)] or par.name in _HTML_CONTAINERS
    for tag in soup(["script", "style", "noscript", "template", "head", "svg", "iframe"]):
        tag.decompose()
    blocks: list[str] = []
    total = 0
    for el in soup.find_all(list(_HTML_BLOCKS)):
        if el.name in ("p", "li") and inside.get(id(el)):
            continue  # nested block: its text is part of the parent
        txt = " ".join(el.get_text(" ", strip=True).split())
        if not txt:
            continue
        total += len(txt)
        if total > MAX_TEXT_CHARS:
            raise _too_many_chars(name, total)
        if el.name[0] == "h":
            blocks.append("#" * int(el.name[1]) + " " + txt)
        elif el.name == "li":
            blocks.append("- " + txt)
        else:
            blocks.append(txt)
    if not blocks:  # no block elements: fall back to the raw text
        blocks = [" ".join(soup.get_text(" ", strip=True).split())]
    out: list[str] = []
    for b in blocks:   # list items of one list stay in one paragraph
        if out and b.startswith("- ") and out[-1].split("\n")[-1].startswith("- "):
            out[-1] += "\n" + b
        else:
            out.append(b)
    return "\n\n".join(out)


def _pdf_to_text(data: bytes, name: str) -> tuple[str, dict]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise CorruptDocument(f"{name}: this is not a PDF file (no %PDF header). If it is another format, "
                              "rename it with the right extension.")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception:  # noqa: BLE001 - unsupported encryption algorithm etc.
                ok = 0
            if not ok:
                raise EncryptedDocument(f"{name}: the PDF is password-protected. Remove the password "
                                        "(print to PDF or `qpdf --decrypt`) and upload it again.")
        n_pages = len(reader.pages)
        if n_pages > MAX_PDF_PAGES:
            raise DocumentLimitExceeded(f"{name}: the PDF has {n_pages:,} pages; the limit is {MAX_PDF_PAGES:,}. "
                                        "Split it into smaller files.")
        pages = []
        total = 0
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            total += len(pages[-1])
            if total > MAX_TEXT_CHARS:
                raise _too_many_chars(name, total)
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError,
            RecursionError, AssertionError) as exc:
        raise CorruptDocument(f"{name}: the PDF is damaged and cannot be read ({type(exc).__name__}: {exc}). "
                              "Re-export it from the original application.") from exc
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on broken files
        raise CorruptDocument(f"{name}: the PDF cannot be read ({type(exc).__name__}: {exc}).") from exc
    # De-hyphenate words broken across lines, keep page breaks as paragraph breaks.
    text = "\n\n".join(re.sub(r"(\w)-\n(\w)", r"\1\2", p) for p in pages)
    return text, {"pages": len(pages)}


def check_docx_container(data: bytes, name: str) -> None:
    """Refuse a .docx (a zip) whose members would unpack to too much, before python-docx reads any of them
    whole: too many members, too many declared uncompressed bytes, or one member compressed more than
    DOCX_MAX_RATIO:1 (a zip bomb). zipfile never returns more than a member's declared size, so checking the
    declared sizes is enough."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise CorruptDocument(f"{name}: the DOCX file is damaged or not a Word document ({exc}).") from exc
    if len(infos) > DOCX_MAX_MEMBERS:
        raise DocumentLimitExceeded(f"{name}: the DOCX holds {len(infos):,} parts; the limit is {DOCX_MAX_MEMBERS:,}.")
    total = sum(max(0, i.file_size) for i in infos)
    if total > DOCX_MAX_UNCOMPRESSED:
        raise DocumentLimitExceeded(f"{name}: the DOCX would unpack to {total / 1024 / 1024:,.0f} MB; the limit is "
                                    f"{DOCX_MAX_UNCOMPRESSED // (1024 * 1024)} MB (a zip bomb, or a huge document: "
                                    "split it).")
    for i in infos:
        if i.file_size > DOCX_RATIO_MIN_BYTES and i.file_size > DOCX_MAX_RATIO * max(1, i.compress_size):
            raise DocumentLimitExceeded(
                f"{name}: the DOCX part {i.filename[:80]!r} is compressed {i.file_size / max(1, i.compress_size):,.0f}:1 "
                f"(limit {DOCX_MAX_RATIO}:1), which is how a zip bomb looks; it was not unpacked.")


def _docx_to_text(data: bytes, name: str) -> str:
    import zipfile

    check_docx_container(data, name)
    try:
        import docx  # python-docx
        d = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise CorruptDocument(f"{name}: the DOCX file is damaged or not a Word document ({exc}).") from exc
    except Exception as exc:  # noqa: BLE001
        raise CorruptDocument(f"{name}: the DOCX file cannot be read ({type(exc).__name__}: {exc}).") from exc
    blocks = []
    for p in d.paragraphs:
        txt = p.text.strip()
        if not txt:
            continue
        style = (p.style.name if p.style is not None else "") or ""
        m = re.match(r"Heading (\d)", style)
        if m:
            blocks.append("#" * int(m.group(1)) + " " + txt)
        elif style == "Title":
            blocks.append("# " + txt)
        elif "List" in style:
            blocks.append("- " + txt)
        else:
            blocks.append(txt)
    for table in d.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                blocks.append(" | ".join(cells))
    return "\n\n".join(blocks)


def load_bytes(data: bytes, name: str, max_mb: int | None = None, doc_id: str | None = None) -> Document:
    """Parse one document from memory. `name` is the (untrusted) original file name."""
    safe = doc_id or sanitize_name(name)
    display = str(name)
    if max_mb is None:
        from core.config import get_settings
        max_mb = get_settings().max_upload_mb
    if len(data) > max_mb * 1024 * 1024:
        raise FileTooLarge(f"{display}: {len(data) / 1024 / 1024:.1f} MB is over the {max_mb} MB limit. "
                           "Split the document or raise WORKBENCH_MAX_UPLOAD_MB.")
    ext = Path(safe).suffix.lower()
    kind = SUPPORTED.get(ext)
    if kind is None:
        raise UnsupportedFile(f"{display}: unsupported file type {ext or '(none)'}; use "
                              f"{', '.join(sorted(set(SUPPORTED)))}.")
    if not data.strip():
        raise EmptyDocument(f"{display}: the file is empty.")
    meta: dict = {}
    if kind in ("text", "markdown"):
        text = _decode_text(data, display)
    elif kind == "html":
        text = _html_to_text(_decode_text(data, display), display)
    elif kind == "pdf":
        text, meta = _pdf_to_text(data, display)
    else:
        text = _docx_to_text(data, display)
    if len(text) > MAX_TEXT_CHARS:
        raise _too_many_chars(display, len(text))
    text = clean_text(text)
    if not text:
        hint = " (a scanned PDF has no text layer: run OCR first)" if kind == "pdf" else ""
        raise EmptyDocument(f"{display}: no text could be extracted{hint}.")
    return Document(doc_id=safe, display_name=display, kind=kind, text=text,
                    content_hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data), meta=meta)


def load_path(path: Path, max_mb: int | None = None, doc_id: str | None = None, display: str | None = None) -> Document:
    """Parse one file on disk (the size is checked before reading it). `display`: the name to show and store as
    the source (default: the file's name), e.g. an upload's original name when it was saved under a safe one."""
    path = Path(path)
    shown = display or path.name
    if max_mb is None:
        from core.config import get_settings
        max_mb = get_settings().max_upload_mb
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IngestError(f"{shown}: cannot read the file ({exc.strerror or exc}).") from exc
    if not path.is_file():
        raise IngestError(f"{shown}: not a regular file.")
    if size > max_mb * 1024 * 1024:
        raise FileTooLarge(f"{shown}: {size / 1024 / 1024:.1f} MB is over the {max_mb} MB limit. "
                           "Split the document or raise WORKBENCH_MAX_UPLOAD_MB.")
    return load_bytes(path.read_bytes(), shown, max_mb=max_mb, doc_id=doc_id or sanitize_name(path.name))


def expand_paths(paths: list[Path]) -> list[tuple[Path, str]]:
    """Files to ingest with their doc ids: a folder contributes its supported files (recursively, sorted),
    keyed by their sanitised path relative to that folder. Hidden files are skipped."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.is_file() and f.suffix.lower() in SUPPORTED and not any(x.startswith(".") for x in rel.parts):
                    out.append((f, sanitize_rel_path(rel.as_posix())))
        else:
            out.append((p, sanitize_name(p.name)))
    return out
