"""Loader limits: zip bombs and huge .docx files are refused before python-docx unpacks them; PDFs have a page
and character cap; HTML has a nesting cap and block extraction no longer walks up the tree per element."""
from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from core.errors import DocumentLimitExceeded
from core.rag import loaders

KNOWLEDGE = Path(__file__).resolve().parents[2] / "sample_docs" / "knowledge"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_bomb_docx_is_refused_by_ratio_before_unpacking():
    real = (KNOWLEDGE / "onboarding-checklist.docx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(real)) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    members["word/media/bomb.bin"] = b"\0" * (20 * 1024 * 1024)     # 20 MB of zeros: ~1000:1
    data = _zip(members)
    assert len(data) < 200_000
    t0 = time.perf_counter()
    with pytest.raises(DocumentLimitExceeded, match="zip bomb") as exc:
        loaders.load_bytes(data, "bomb.docx")
    assert "word/media/bomb.bin" in str(exc.value) and time.perf_counter() - t0 < 2


def test_docx_over_the_uncompressed_total_is_refused(monkeypatch):
    monkeypatch.setattr(loaders, "DOCX_MAX_UNCOMPRESSED", 1024 * 1024)
    members = {"[Content_Types].xml": b"<Types/>", "word/document.xml": bytes(range(256)) * 8000}   # 2 MB
    with pytest.raises(DocumentLimitExceeded, match="would unpack to"):
        loaders.load_bytes(_zip(members), "huge.docx")


def test_docx_with_too_many_parts_is_refused(monkeypatch):
    monkeypatch.setattr(loaders, "DOCX_MAX_MEMBERS", 50)
    with pytest.raises(DocumentLimitExceeded, match="parts"):
        loaders.load_bytes(_zip({f"p{i}.xml": b"<x/>" for i in range(51)}), "many.docx")


def test_a_real_docx_still_loads():
    doc = loaders.load_path(KNOWLEDGE / "onboarding-checklist.docx")
    assert doc.kind == "docx" and len(doc.text) > 100


def _pdf(pages: int) -> bytes:
    from pypdf import PdfWriter
    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(width=200, height=200)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_pdf_page_cap(monkeypatch):
    monkeypatch.setattr(loaders, "MAX_PDF_PAGES", 20)
    with pytest.raises(DocumentLimitExceeded, match="21 pages; the limit is 20"):
        loaders.load_bytes(_pdf(21), "long.pdf")


def test_extracted_character_cap_for_pdf_and_text(monkeypatch):
    ref = loaders.load_path(KNOWLEDGE / "pricing-sheet-2024.pdf")
    monkeypatch.setattr(loaders, "MAX_TEXT_CHARS", len(ref.text) // 2)
    with pytest.raises(DocumentLimitExceeded, match="characters of text"):
        loaders.load_path(KNOWLEDGE / "pricing-sheet-2024.pdf")
    monkeypatch.setattr(loaders, "MAX_TEXT_CHARS", 1000)
    with pytest.raises(DocumentLimitExceeded, match="over 1,000 characters"):
        loaders.load_bytes(b"word " * 300, "long.txt")
    assert loaders.load_bytes(b"word " * 100, "short.txt").text


def test_deeply_nested_html_is_refused_quickly():
    html = "<div>" * 50_000 + "deep" + "</div>" * 50_000
    t0 = time.perf_counter()
    with pytest.raises(DocumentLimitExceeded, match="more than 1000 levels"):
        loaders.load_bytes(html.encode(), "deep.html")
    assert time.perf_counter() - t0 < 30


def test_nested_html_under_the_cap_is_linear_in_size():
    """450 <li> inside <ul> inside <li> (900 levels): the old per-element find_parent walked up to 900 ancestors."""
    html = "<ul>" + "<li>item <ul>" * 450 + "</ul></li>" * 450 + "</ul>"
    t0 = time.perf_counter()
    doc = loaders.load_bytes(html.encode(), "nested.html")
    assert time.perf_counter() - t0 < 5
    assert doc.text.startswith("- item")
    flat = loaders.load_bytes(b"<h1>T</h1><p>a <b>b</b></p><ul><li>one<p>inner</p></li><li>two</li></ul>", "f.html")
    assert flat.text == "# T\n\na b\n\n- one inner\n- two"
