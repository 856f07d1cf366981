"""core.safe_text.escape_markdown: hostile strings never form an image, link, autolink or HTML tag, rendered by a
real CommonMark parser (markdown-it-py), whole or split into chunks at every position."""
from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from core.safe_text import escape_markdown

HOSTILE = [
    "![](https://evil.example/?q=x)",
    "![alt text](https://evil.example/pixel.png \"title\")",
    "[a](http://x)",
    "[click](javascript:alert(1))",
    "<img src=https://evil.example/i.png onerror=alert(1)>",
    "<a href='https://evil.example'>x</a>",
    "<https://evil.example/auto>",
    "report`](https://evil.example/x.png)`.md",          # a backtick in a file name
    "``code`` ` open span",
    "![ref][r]\n\n[r]: https://evil.example/ref.png",    # a reference-style image
    "&#33;&#91;&#93;&#40;https://evil.example&#41;",     # entities spelling ![](...)
    "https://evil.example/bare www.evil.example user@evil.example",
    "# heading\n- list\n1. item\n> quote\n---\n| a | b |\n|---|---|",
    ":red[coloured] :material/home: $x^2$ **bold** _it_ ~~s~~",
    "trailing backslash \\",
]


def _html(md_text: str) -> str:
    # commonmark + GFM tables and strikethrough; linkify (bare URLs) checked separately below
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md_text)


def _assert_inert(md_text: str) -> None:
    html = _html(md_text)
    assert "<img" not in html and "<a " not in html, html
    for tag in ("<h1", "<ul", "<ol", "<blockquote", "<hr", "<table", "<code", "<strong", "<em", "<del"):
        assert tag not in html, (tag, html)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_as_its_own_characters(text):
    esc = escape_markdown(text)
    _assert_inert(esc)
    # the reader still sees the same characters (line breaks kept as hard breaks)
    shown = MarkdownIt("commonmark").render(esc)
    for word in ("evil", "example"):
        if word in text:
            assert word in shown


def test_the_raw_hostile_strings_do_render_as_links_and_images():
    """The check above is meaningful: without escaping, the same parser produces <img> and <a>."""
    assert "<img" in _html(HOSTILE[0]) and "<a " in _html(HOSTILE[2]) and "<img" in _html(HOSTILE[9])


@pytest.mark.parametrize("text", HOSTILE)
def test_escaping_is_per_character_so_chunks_are_safe_at_every_split(text):
    whole = escape_markdown(text)
    for i in range(len(text) + 1):
        a, b = text[:i], text[i:]
        assert escape_markdown(a) + escape_markdown(b) == whole
        _assert_inert(escape_markdown(a))      # what a stream shows after the first chunk
    # three-way splits of the first hostile image
    s = HOSTILE[0]
    for i in range(len(s)):
        for j in range(i, len(s)):
            assert "".join(escape_markdown(p) for p in (s[:i], s[i:j], s[j:])) == escape_markdown(s)


def test_bare_urls_are_not_autolinked():
    """GFM autolinks (linkify) need a literal `http://`, `www.` or `x@y`: the escaped ':', '.', '@' break them."""
    esc = escape_markdown(HOSTILE[11])
    assert "http://" not in esc and "https://" not in esc and "www." not in esc and "user@" not in esc
    assert "https\\:\\/\\/evil" in esc and "www\\.evil" in esc and "user\\@evil" in esc


def test_lt_gt_are_entities_and_numbers_can_stay_readable():
    assert escape_markdown("<b>") == "&lt;b&gt;"
    assert escape_markdown("a | b\nc", newline="space") == "a \\| b c"
    assert escape_markdown("costs 1.25 for 10,000", keep_numbers=True) == "costs 1.25 for 10,000"
    assert escape_markdown("v1.2") == "v1\\.2"
    assert escape_markdown(None) == "" and escape_markdown(3) == "3"
