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

from core.errors import CorruptDocument, EmptyDocument, FileTooLarge, IngestError, UnsupportedFile

SUPPORTED = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
             ".pdf": "pdf", ".docx": "docx"}
_ODD = re.compile(r"[^A-Za-z0-9._ ()\-+#,@=]")


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


def _html_to_text(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head", "svg", "iframe"]):
        tag.decompose()
    blocks: list[str] = []
    for el in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td", "th", "blockquote", "dt", "dd"]):
        if el.find_parent(["li", "p", "td", "th", "blockquote", "dd"]) is not None and el.name in ("p", "li"):
            continue  # nested block: its text is part of the parent
        txt = " ".join(el.get_text(" ", strip=True).split())
        if not txt:
            continue
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
        pages = []
        for page in reader.pages:
            pages.append(page.extract_text() or "")
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


def _docx_to_text(data: bytes, name: str) -> str:
    import zipfile

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
        text = _html_to_text(_decode_text(data, display))
    elif kind == "pdf":
        text, meta = _pdf_to_text(data, display)
    else:
        text = _docx_to_text(data, display)
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
