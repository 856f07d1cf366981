"""Loaders and name sanitising on the real sample documents and the bad-input fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import CorruptDocument, EmptyDocument, FileTooLarge, UnsupportedFile
from core.rag.loaders import EncryptedDocument, expand_paths, load_bytes, load_path, sanitize_name


ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "sample_docs" / "knowledge"
BAD = ROOT / "tests" / "fixtures" / "bad"


@pytest.mark.parametrize("raw,expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("odd name (copy) #2.md", "odd name (copy) #2.md"),
    ("a<b>c|d?.md", "a_b_c_d_.md"),
    ("....", "document"),
    ("", "document"),
    ("evil\x00name.txt", "evilname.txt"),
    ("x/../../y..md", "y.md"),
])
def test_sanitize_name(raw, expected):
    out = sanitize_name(raw)
    assert out == expected
    assert "/" not in out and "\\" not in out and ".." not in out


@pytest.mark.parametrize("name,kind,needle", [
    ("plans-and-limits.md", "markdown", "## Surge"),
    ("error-codes.txt", "text", "TW-3402"),
    ("changelog.html", "html", "# Tidewave changelog"),
    ("pricing-sheet-2024.pdf", "pdf", "top-up"),
    ("onboarding-checklist.docx", "docx", "#"),
])
def test_sample_formats_load(name, kind, needle):
    doc = load_path(KNOWLEDGE / name)
    assert doc.kind == kind
    assert needle in doc.text
    assert len(doc.content_hash) == 64 and doc.doc_id == name


def test_html_drops_scripts_and_styles():
    html = b"<html><head><style>body{color:red}</style></head><body><h2>Title</h2><script>alert(1)</script>" \
           b"<p>Visible <b>text</b>.</p><ul><li>one</li><li>two</li></ul></body></html>"
    doc = load_bytes(html, "page.html", max_mb=1)
    assert "alert" not in doc.text and "color:red" not in doc.text
    assert doc.text.startswith("## Title") and "Visible text ." in doc.text and "- one\n- two" in doc.text


@pytest.mark.parametrize("fixture,error,words", [
    ("empty.txt", EmptyDocument, "empty"),
    ("binary.pdf", CorruptDocument, "not a PDF"),
    ("corrupt.pdf", CorruptDocument, "damaged"),
    ("encrypted.pdf", EncryptedDocument, "password-protected"),
    ("malformed.jsonl", UnsupportedFile, "unsupported file type"),
])
def test_bad_files_raise_clear_errors(fixture, error, words):
    with pytest.raises(error) as exc:
        load_path(BAD / fixture)
    assert words in str(exc.value) and fixture in str(exc.value)


def test_binary_renamed_txt_is_refused():
    data = (BAD / "binary.pdf").read_bytes()
    with pytest.raises(UnsupportedFile, match="binary"):
        load_bytes(data, "notes.txt", max_mb=1)


def test_cp1252_text_is_decoded():
    doc = load_path(BAD / "not_utf8.txt")
    assert "Café" in doc.text and "€" in doc.text


def test_file_over_the_limit_is_refused_before_reading(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:           # sparse 51 MB file: the size check must not read it
        f.truncate(51 * 1024 * 1024)
    with pytest.raises(FileTooLarge, match="over the 50 MB limit"):
        load_path(big, max_mb=50)
    with pytest.raises(FileTooLarge):
        load_bytes(b"x" * (2 * 1024 * 1024), "b.md", max_mb=1)


def test_expand_folder_sanitises_relative_ids(tmp_path):
    (tmp_path / "sub dir").mkdir()
    (tmp_path / "sub dir" / "a #1.md").write_text("# A\n\ntext")
    (tmp_path / ".hidden.md").write_text("hidden")
    (tmp_path / "skip.bin").write_bytes(b"\x00")
    items = expand_paths([tmp_path])
    assert [doc_id for _, doc_id in items] == ["sub dir/a #1.md"]
