"""Static audit (issue 14): no untrusted text reaches a Markdown-rendering Streamlit call unescaped.

An AST scan of app.py, app_pages/ and ui/ finds every call whose text Streamlit renders as Markdown (st.markdown,
st.caption, st.warning/error/info/success, st.write, st.toast, st.expander/st.status/st.popover labels,
st.tabs labels, headers, st.metric labels, button/checkbox/radio labels ...), and checks each argument that
carries text:

- a string literal is fine (the source wrote it);
- an f-string is fine when every `{...}` is escaped (`md(..)`, `escape_markdown(..)`), is a number by
  construction (`len(..)`, `int(..)`, `round(..)`, a numeric format spec such as `:.2f`, `:,`, `:d`, `:%`,
  arithmetic on numbers), a literal, or an expression on the ALLOWED list below;
- any other expression (a bare variable, `str(exc)`, `"a" + name`, `"..".format(..)`) must be escaped, a
  literal, or on ALLOWED.

ALLOWED lists expressions (by their source text, per file) that are trusted by construction, each with the
reason. A new unescaped interpolation fails this test with its file, line and expression: escape it with
`ui.safe.md`/`escape_markdown` (or show it with `ui.safe.text`), or add it here with a reason a reviewer can
check.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([ROOT / "app.py", *(ROOT / "app_pages").glob("*.py"), *(ROOT / "ui").glob("*.py")])

# Streamlit calls whose text argument is rendered as Markdown: name -> positions / keywords of text arguments
MD_CALLS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "markdown": ((0,), ("body",)), "caption": ((0,), ("body",)), "write": ((0, 1, 2, 3), ()),
    "warning": ((0,), ("body",)), "error": ((0,), ("body",)), "info": ((0,), ("body",)),
    "success": ((0,), ("body",)), "toast": ((0,), ("body",)),
    "title": ((0,), ("body",)), "header": ((0,), ("body",)), "subheader": ((0,), ("body",)),
    "expander": ((0,), ("label",)), "status": ((0,), ("label",)), "popover": ((0,), ("label",)),
    "tabs": ((0,), ("tabs",)), "metric": ((0,), ("label",)),
    "button": ((0,), ("label", "help")), "download_button": ((0,), ("label",)),
    "checkbox": ((0,), ("label", "help")), "toggle": ((0,), ("label", "help")),
    "radio": ((0,), ("label", "captions", "help")), "selectbox": ((0,), ("label", "help")),
    "text_input": ((0,), ("label", "help")), "text_area": ((0,), ("label", "help")),
    "number_input": ((0,), ("label", "help")), "slider": ((0,), ("label", "help")),
    "file_uploader": ((0,), ("label", "help")), "multiselect": ((0,), ("label", "help")),
    "progress": ((1,), ("text",)), "form_submit_button": ((0,), ("label", "help")),
    "page_link": ((1,), ("label",)),
    # st.dataframe column labels are plain text in the grid; a column's `help` tooltip is Markdown
    **{c: ((), ("help",)) for c in ("Column", "TextColumn", "NumberColumn", "ProgressColumn", "CheckboxColumn",
                                    "SelectboxColumn", "ListColumn", "LinkColumn", "DatetimeColumn")},
}
# receivers that are Streamlit (st.x, a container/column/tab/slot variable c.x, st.sidebar.x ...). Calls on
# other objects with the same method names (logging.info, a dict's .write) are not Streamlit: skip those.
NOT_STREAMLIT = {"logging", "log", "logger", "LOG", "sys", "fh", "f", "out", "stream", "path", "p", "os",
                 "json", "re", "self", "parser", "ap", "args", "csv", "writer", "buf", "tmp", "zf"}
ESCAPERS = {"md", "md_escape", "escape_markdown",
            # ui functions that return Markdown built from escaped parts only (read them before adding one)
            "linked_answer",        # ui/knowledge_base.py: escapes the answer, then adds [n] anchor links
            "_title"}               # ui/knowledge_base.py: "Ingest of {md(label)} into {md(collection)}"
# helpers that build text from numbers only (a timestamp, a duration): "3 min ago", "2 min 05 s"
FORMATTERS = {"ago", "fmt_s"}
NUMERIC_CALLS = {"len", "int", "float", "round", "sum", "abs", "bool"}
NUMERIC_SPEC_END = tuple("bdeEfFgGnoxX%")

# (file relative to the repo, expression source) -> why it is trusted
# ("*", expr) trusts that expression text in every file.
_COUNT = "a count or token number computed by the workbench (an int), never text"
ALLOWED: dict[tuple[str, str], str] = {
    ("*", "get_settings().max_upload_mb"): "a validated numeric setting (core.config)",
    ("*", "summary['n_questions']"): _COUNT,
    ("*", "run.status.get('done', 0)"): _COUNT,
    ("*", "run.status.get('total', 0)"): _COUNT,
    ("*", "r.get('prompt_tokens')"): _COUNT,
    ("*", "r.get('completion_tokens')"): _COUNT,
    ("*", "usage.total_tokens"): _COUNT,
    ("*", "usage.n_ctx"): _COUNT,
    ("ui/common.py", "info.icon"): "ui/nav.py's page table (source constants)",
    ("ui/common.py", "info.heading or info.title"): "ui/nav.py's page table (source constants)",
    ("ui/home.py", "p.title"): "ui/nav.py's page table (source constants): p iterates nav.PAGES",
    ("ui/home.py", "p.description"): "ui/nav.py's page table (source constants): p iterates nav.PAGES",
    ("ui/fine_tune.py", "exc.problems[:20]"): "st.write of a list renders it as JSON (st.json), not Markdown",
    ("*", "final.get('steps')"): _COUNT,
    ("*", "s.max_upload_mb"): "a validated numeric setting (core.config)",
    ("*", "spec.max_seq_len"): "a validated int of the job spec (core.finetune.spec)",
    ("*", "spec.seed"): "a validated int of the job spec (core.finetune.spec)",
    ("*", "row['line']"): "a line number the dataset parser counted",
    ("*", "lengths[int(i) - 1]"): "a token count the tokenizer computed",
    **{("ui/jobs.py", e): "jobs.render's title / cancel_label / cancel_help / item_line / progress_text are "
                          "Markdown by contract (its docstring): the callers escape untrusted parts"
       for e in ("heading", "cancel_label", "cancel_help", "text", "line(item)")},
    ("*", "job.id"): "a generated job id (core.jobs.folder.new_id: prefix-date-time-hex)",
    **{("ui/knowledge_base.py", e): _COUNT for e in ("ij.ok", "n", "emb.dimension", "emb.max_tokens", "info.documents", "info.rows", "info.table_version", "ch['position']", "ch['tokens']", "ch['start']", "ch['end']", "first.table_version", "c.position", "c.rank", "res.table_version", "res.chunks_used", "i", "rep.n_questions", "rep.table_version")},
    ("ui/drill.py", "result.get('reingest_chunks', 0)"): _COUNT,
    ("ui/knowledge_base.py", "ch['id'][:16]"): "a chunk id: a hex content hash (core.rag)",
    ("ui/knowledge_base.py", "k"): "chunker names and descriptions: registered in the source (core.rag.chunkers)",
    ("ui/knowledge_base.py", "v"): "chunker names and descriptions: registered in the source (core.rag.chunkers)",
    ("ui/knowledge_base.py", "titles[mode]"): "a dict literal of retrieval-mode titles (the fusion method is a "
                                              "validated setting)",
    ("ui/knowledge_base.py", "m"): "a retrieval mode name (vector / bm25 / hybrid) from core.rag",
    **{("ui/prompt_lab.py", e): _COUNT for e in ("pre.prompt_tokens", "pre.params.max_tokens", "pre.needed_tokens",
                                                 "pre.n_ctx", "k", "tot")},
    ("ui/prompt_lab.py", "lab"): "a variant label A-D: lab iterates the picked LABELS (a source constant)",
    **{("ui/usecase.py", e): _COUNT for e in ("job.done", "job.ok", "job.failed", "counts['pending']", "counts['accepted']",
                                              "counts['rejected']", "res.changed", "rep.saved")},
    ("ui/usecase.py", "label"): "pick()'s label: its callers pass literals (question / answer / context)",
    ("ui/safe.py", '"".join(shown)'): "the escaped chunks of safe.stream (escape_markdown per chunk)",
    ("ui/compare.py", "diff['baseline_run']"): "a generated run id (core.jobs.folder.new_id), in a code span",
    ("ui/compare.py", "run.run_id"): "a generated job id (core.jobs.folder.new_id: prefix-date-time-hex), shown in "
                                     "a code span as a CLI command",
}
USED: set[tuple[str, str]] = set()      # ALLOWED entries that suppressed a finding in this process


def _file_key(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _receiver_root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _call_name(node: ast.AST) -> str:
    if not isinstance(node, ast.Call):
        return ""
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _is_escaped(node: ast.AST) -> bool:
    return _call_name(node) in ESCAPERS or _call_name(node) in FORMATTERS


def _is_numeric(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool) or node.value is None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in NUMERIC_CALLS:
        return True
    if isinstance(node, ast.BinOp) and not isinstance(node.op, (ast.Add, ast.Mod)):
        return True                     # -, *, /, //, ** never yield text from text
    if isinstance(node, ast.BinOp):     # + and % : numeric only when both sides are
        return _is_numeric(node.left) and _is_numeric(node.right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return True
    if isinstance(node, ast.Compare):
        return True
    return False


def _is_constant_name(node: ast.AST) -> bool:
    """A module constant written in the source: NAME, mod.NAME, NAME[...] (ALL_CAPS identifiers)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
            and all(isinstance(a, ast.Constant) for a in node.args[1:]):
        node = node.func.value          # CONSTANT.get(key, "literal default")
    while isinstance(node, ast.Subscript):
        node = node.value
    ident = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return bool(ident) and ident.isupper() and len(ident) > 1


def _is_literal(node: ast.AST) -> bool:
    """A literal (or a tuple/list of literals, nested), e.g. the loop `for key, title in (("a", "A"), ...)`."""
    if isinstance(node, ast.Constant):
        return True
    return isinstance(node, (ast.Tuple, ast.List)) and all(_is_literal(e) for e in node.elts)


class _Scope:
    """Assignments to plain local names in one function (or the module), to follow `label = "x" if a else "y"`
    and `msg = md(job.message)` to their sources. A name with any untrusted assignment (or a parameter, which
    has none here) stays untrusted."""

    def __init__(self, tree: ast.AST):
        self.sources: dict[str, list[ast.AST]] = {}
        body = tree.body if isinstance(tree, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef)) else []
        for stmt in body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Assign):
                    for t in node.targets:
                        if isinstance(t, ast.Name):
                            self.sources.setdefault(t.id, []).append(node.value)
                        elif isinstance(t, ast.Tuple):
                            paired = isinstance(node.value, ast.Tuple) and len(node.value.elts) == len(t.elts)
                            for j, e in enumerate(t.elts):
                                if isinstance(e, ast.Name):   # a, b = x, y pairs up; other unpacking: unknown
                                    self.sources.setdefault(e.id, []).append(node.value.elts[j] if paired else None)
                elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name):
                    self.sources.setdefault(node.target.id, []).append(node.value)
                elif isinstance(node, (ast.For, ast.comprehension)):
                    it = node.iter
                    if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) \
                            and it.func.attr in ("items", "keys", "values"):
                        it = it.func.value
                    trusted = _is_constant_name(it) or _is_literal(it)
                    target = node.target
                    rows = it.elts if isinstance(it, (ast.Tuple, ast.List)) else []
                    if not trusted and rows and isinstance(target, ast.Tuple) and all(
                            isinstance(r, ast.Tuple) and len(r.elts) == len(target.elts) for r in rows):
                        for j, e in enumerate(target.elts):      # for a, b in ((x, "lit"), (y, "lit")): by position
                            if isinstance(e, ast.Name):
                                self.sources.setdefault(e.id, []).extend(r.elts[j] for r in rows)
                        continue
                    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate" \
                            and isinstance(target, ast.Tuple) and len(target.elts) == 2:
                        if isinstance(target.elts[0], ast.Name):      # the index of enumerate(): a number
                            self.sources.setdefault(target.elts[0].id, []).append(ast.Constant(0))
                        target = target.elts[1]
                    for t in ast.walk(target):
                        if isinstance(t, ast.Name):
                            self.sources.setdefault(t.id, []).append(ast.Constant("") if trusted else None)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not tree:
                    for a in ast.walk(node.args):
                        if isinstance(a, ast.arg):
                            self.sources.setdefault(a.arg, []).append(None)
        if isinstance(tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for a in ast.walk(tree.args):
                if isinstance(a, ast.arg):
                    self.sources.setdefault(a.arg, []).append(None)


def _problems(node: ast.AST, key: str, src: str, scope: _Scope | None = None, seen: frozenset = frozenset()):
    """Expressions inside `node` (a text argument) that are neither literal, escaped, numeric nor allowed."""
    if node is None:
        yield 0, "<unknown>"
        return
    if isinstance(node, ast.Constant):
        return
    if _is_escaped(node) or _is_numeric(node) or _is_constant_name(node):
        return
    seg = ast.get_source_segment(src, node) or ast.dump(node)
    for k in ((key, seg), ("*", seg)):
        if k in ALLOWED:
            USED.add(k)
            return
    if isinstance(node, ast.Name) and scope is not None and node.id in scope.sources and node.id not in seen:
        srcs = scope.sources[node.id]
        if all(s is not None and not list(_problems(s, key, src, scope, seen | {node.id})) for s in srcs):
            return
        yield node.lineno, seg
        return
    if isinstance(node, ast.JoinedStr):
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                spec = part.format_spec
                spec_text = "".join(v.value for v in spec.values if isinstance(v, ast.Constant)) if spec else ""
                if spec_text.endswith(NUMERIC_SPEC_END) or spec_text in (",", "_"):
                    continue            # a numeric format spec raises on a str: the value is a number
                yield from _problems(part.value, key, src, scope, seen)
        return
    if isinstance(node, ast.IfExp):
        yield from _problems(node.body, key, src, scope, seen)
        yield from _problems(node.orelse, key, src, scope, seen)
        return
    if isinstance(node, (ast.List, ast.Tuple)):
        for elt in node.elts:
            yield from _problems(elt, key, src, scope, seen)
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        yield from _problems(node.left, key, src, scope, seen)
        yield from _problems(node.right, key, src, scope, seen)
        return
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            yield from _problems(v, key, src, scope, seen)
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and isinstance(node.func.value, ast.Constant) and node.args:
        arg = node.args[0]
        if _is_constant_name(arg):      # ", ".join(review.TAGS)
            return
        if isinstance(arg, (ast.GeneratorExp, ast.ListComp)):
            yield from _problems(arg.elt, key, src, scope, seen)
            return
    yield node.lineno, seg


def scan(path: Path) -> list[tuple[str, int, str, str]]:
    return scan_source(path.read_text(encoding="utf-8"), _file_key(path))


def scan_source(src: str, key: str) -> list[tuple[str, int, str, str]]:
    tree = ast.parse(src)
    scopes: dict[int, _Scope] = {}
    parent_fn: dict[int, ast.AST] = {}
    for fn in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
        for n in ast.walk(fn):
            parent_fn[id(n)] = fn          # walked outer first: the innermost function wins
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in MD_CALLS):
            continue
        root = _receiver_root(node.func.value)
        if root in NOT_STREAMLIT:
            continue
        fn = parent_fn.get(id(node), tree)
        scope = scopes.setdefault(id(fn), _Scope(fn))
        positions, keywords = MD_CALLS[node.func.attr]
        args = [a for i, a in enumerate(node.args) if i in positions and not isinstance(a, ast.Starred)]
        args += [k.value for k in node.keywords if k.arg in keywords]
        for arg in args:
            for line, seg in _problems(arg, key, src, scope):
                out.append((key, line or node.lineno, node.func.attr, seg))
    return out


def test_audit_scans_the_ui_files():
    assert len(FILES) > 10 and all(p.is_file() for p in FILES)
    # the scanner itself catches the patterns it exists for
    bad = ("import streamlit as st\nname = input()\nst.markdown(f'**{name}**')\nst.error(str(name))\n"
           "st.expander('x ' + name)\nst.tabs([name, 'ok'])\n")
    good = ("import streamlit as st\nfrom ui.safe import md\nname = input(); n = 3\nLIMIT = 5\n"
            "def f(job):\n    msg = md(job.message)\n    label = 'a' if job.ok else 'b'\n"
            "    st.error(msg); st.button(label); st.caption(f'{LIMIT} max')\n"
            "    for c, lab, x in ((1, 'A', job.a), (2, 'B', job.b)):\n        st.button(lab)\n"
            "st.markdown(f'**{md(name)}** has {n:,} rows, {len(name)} chars, {0.5:.1%}')\nst.error('static')\n"
            "st.expander(f'{md(name)} ({n * 2})')\nlogging.info(f'{name}')\n")
    found = {seg for _, _, _, seg in scan_source(bad, "probe.py")}
    assert found == {"name", "str(name)"}, found
    assert {seg for *_, seg in scan_source("def f(x):\n    st.error(x)\n    y = x\n    st.info(y)\n", "p")} \
        == {"x", "y"}
    assert scan_source(good, "probe.py") == []


def test_no_unescaped_interpolation_in_markdown_calls():
    findings = [f for p in FILES for f in scan(p)]
    msg = "\n".join(f"{k}:{line}: st.{fn}(... {seg} ...)" for k, line, fn, seg in findings)
    assert not findings, ("untrusted text may reach Markdown unescaped; wrap it in ui.safe.md()/escape_markdown "
                          "or add it to ALLOWED with a reason:\n" + msg)


def test_allowed_entries_are_all_used():
    """An entry that no longer matches anything (the code changed) is removed, so the list stays a reviewed,
    current record."""
    for p in FILES:
        scan(p)
    stale = sorted(set(ALLOWED) - USED)
    assert not stale, stale
