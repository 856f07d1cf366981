"""core.safe_text.escape_markdown: hostile strings never form an image, link, autolink or HTML tag, rendered by a
real CommonMark parser (markdown-it-py), whole or split into chunks at every position."""
from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from core.safe_text import WJ, escape_markdown, unescape_markdown

# The bare-URL and e-mail finders of Streamlit's frontend (remark-gfm autolink literal, copied from
# streamlit/static/.../StreamlitMarkdown*.js): they run on the text AFTER escapes are resolved.
FRONTEND_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.I)
FRONTEND_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")

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


def _unescaped(md_text: str) -> str:
    """The text nodes a renderer builds: backslash escapes and the two entities resolved."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md_text).replace("&lt;", "<").replace("&gt;", ">")


def _assert_inert(md_text: str) -> None:
    html = _html(md_text)
    assert "<img" not in html and "<a " not in html, html
    text = _unescaped(md_text)
    assert not FRONTEND_URL.search(text) and not FRONTEND_EMAIL.search(text), text
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
    """The checks above are meaningful: without escaping, the same parser produces <img> and <a>, and the
    frontend's finders match the bare URL and address."""
    assert "<img" in _html(HOSTILE[0]) and "<a " in _html(HOSTILE[2]) and "<img" in _html(HOSTILE[9])
    assert FRONTEND_URL.search(HOSTILE[11]) and FRONTEND_EMAIL.search(HOSTILE[11])
    backslash_only = re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", HOSTILE[11])     # escapes alone are not enough
    assert FRONTEND_URL.search(_unescaped(backslash_only))


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
    """Autolinks need a literal `http://`, `www.` or `x@y`, in the source (cmark-gfm, markdown-it) or in the
    unescaped text (Streamlit's frontend): the escapes and word joiners break both."""
    esc = escape_markdown(HOSTILE[11])
    assert "http://" not in esc and "https://" not in esc and "www." not in esc and "user@" not in esc
    assert f"https\\:{WJ}\\/\\/evil" in esc and f"www{WJ}\\.evil" in esc and f"user{WJ}\\@evil" in esc
    assert _unescaped(esc).replace(WJ, "") == HOSTILE[11]          # the reader sees exactly the original


def test_lt_gt_are_entities_and_numbers_can_stay_readable():
    assert escape_markdown("<b>") == "&lt;b&gt;"
    assert escape_markdown("a | b\nc", newline="space") == "a \\| b c"
    assert escape_markdown("costs 1.25 for 10,000", keep_numbers=True) == "costs 1.25 for 10,000"
    assert escape_markdown("v1.2") == f"v1{WJ}\\.2"
    assert escape_markdown(None) == "" and escape_markdown(3) == "3"


@pytest.mark.parametrize("text", HOSTILE + ["a\nb  c", "x &lt; y <z>", "tab\there"])
def test_unescape_is_the_inverse(text):
    assert unescape_markdown(escape_markdown(text)) == text.replace("\t", " ").replace("\r", "")
