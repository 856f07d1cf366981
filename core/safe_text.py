"""Escaping untrusted text (model output, document text, questions, file names, run names) for Markdown.

The one escaping function of the project: `ui.safe` (every page) and the Markdown report (core.compare.report)
use it. It backslash-escapes EVERY ASCII punctuation character -- CommonMark and GFM allow a backslash before any
of them -- so no image `![..](..)`, link, autolink (`<http://..>`, bare `http://`, `www.`, `user@host`), raw
HTML tag, entity, code span, emphasis, heading, list, table cell break, math (`$`) or Streamlit directive
(`:red[..]`, `:material/..:`) can form from the text.

`<` and `>` become the entities `&lt;` `&gt;`, and an invisible word joiner (U+2060) goes after each `:` and
before each `.` and `@`, because Streamlit's renderer finds bare URLs and e-mail addresses in the text after
the escapes are resolved (copying such text copies the joiners too: show bodies with st.text instead).

It maps each character on its own, so escape(a + b) == escape(a) + escape(b): a stream can be escaped chunk by
chunk and an image split across chunks still never renders. (`keep_numbers=True` is the exception: it looks at
neighbours, so use it only on whole strings, never on stream chunks.)
"""
from __future__ import annotations

import re
import string

WJ = "\u2060"                         # WORD JOINER: invisible, no line-break opportunity
_BASE = {ord(ch): "\\" + ch for ch in string.punctuation}
_BASE[ord("<")] = "&lt;"             # entities, so even a renderer that ignores backslash escapes before
_BASE[ord(">")] = "&gt;"             # < and > (or a plain HTML view) never sees a tag
# Renderers that find bare URLs in the text AFTER escapes are resolved (Streamlit's frontend: remark-gfm's
# autolink-literal regexes `https?://`, `www(?=\.)`, `[-.\w+]+@domain`) would still link them: an invisible
# word joiner after every ':' and before every '.' and '@' breaks each of those patterns.
_BASE[ord(":")] = "\\:" + WJ
_BASE[ord(".")] = WJ + "\\."
_BASE[ord("@")] = WJ + "\\@"
_BASE[ord("\r")] = ""
_BASE[ord("\t")] = " "
_BREAK = dict(_BASE)
_BREAK[ord("\n")] = "  \n"          # a hard line break: the line stays a line, never a block-syntax trigger
_SPACE = dict(_BASE)
_SPACE[ord("\n")] = " "              # one line (a table cell, a title)
_NUMBER_SEP = re.compile("(?<=\\d)" + WJ + "?" + r"\\([.,])(?=\d)")


def escape_markdown(text, *, newline: str = "break", keep_numbers: bool = False) -> str:
    """`text` (any object; None = "") safe to embed in Markdown. newline: "break" (keep line breaks) or
    "space" (one line). keep_numbers: leave `.`/`,` between two digits unescaped (1.25, 10,000) for a readable
    raw file; whole strings only."""
    if text is None:
        return ""
    out = str(text).translate(_SPACE if newline == "space" else _BREAK)
    return _NUMBER_SEP.sub(r"\1", out) if keep_numbers else out


_UNESCAPE = re.compile("\\\\([!-/:-@\\[-`{-~])|&lt;|&gt;|" + WJ + "|  \n")
_UNESCAPED = {"&lt;": "<", "&gt;": ">", WJ: "", "  \n": "\n"}


def unescape_markdown(text: str) -> str:
    """The original text of `escape_markdown(text)` (for tests and logs that read rendered element bodies);
    one left-to-right pass, so an escaped `&` before `lt;` stays literal."""
    return _UNESCAPE.sub(lambda m: m.group(1) if m.group(1) is not None else _UNESCAPED[m.group(0)], str(text or ""))
