"""Decision report export: a self-contained HTML file (plotly.js inlined once, no CDN: works offline) and
Markdown. Every user/model text is HTML-escaped in the HTML and table-escaped in the Markdown."""
from __future__ import annotations

import html
import time
from pathlib import Path

from core.compare import charts
from core.compare.cost import CostModel
from core.compare.runner import RunData, load_run
from core.compare.scores import EXPLAIN
from core.compare.summary import matrix_rows, summarise
from core.errors import CompareError, ExportError
from core.safe_text import escape_markdown

CONSIDERATIONS = (("accuracy", "Accuracy"), ("latency", "Latency"), ("cost", "Cost"), ("maintenance", "Maintenance"))
ANSWER_CHARS = 400


def build(run_id: str, cost_model: CostModel | None = None, baseline: str | None = None) -> tuple[RunData, dict]:
    run = load_run(run_id)
    base_id = baseline if baseline is not None else run.spec.get("baseline")
    base, problem = None, None
    if base_id:
        try:
            base = load_run(base_id)
        except CompareError as exc:          # e.g. the baseline run was deleted: show the rest anyway
            problem = f"Baseline run {base_id} cannot be read ({exc}); showing results without the diff."
    summary = summarise(run, cost_model, base)
    summary["baseline_error"] = problem
    return run, summary


# ---- Markdown ---------------------------------------------------------------------------------------------
def _md(text) -> str:
    """One line of untrusted text for a Markdown table cell or sentence: every ASCII punctuation character
    escaped (no link, image, autolink, HTML, emphasis or cell break can form; core.safe_text)."""
    return escape_markdown(text, newline="space", keep_numbers=True)


def _md_table(rows: list[dict], cols: list[str] | None = None) -> str:
    if not rows:
        return "_(none)_\n"
    cols = cols or list(rows[0])
    out = ["| " + " | ".join(_md(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_md(_fmt(r.get(c))) for c in cols) + " |")
    return "\n".join(out) + "\n"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _provenance(run: RunData) -> list[dict]:
    return [{"approach": a.name, "kind": a.spec.kind, "what produced it": a.describe(),
             "params": f"max_tokens={a.params.get('max_tokens')}, temperature={a.params.get('temperature')}, "
                       f"seed={a.seed}" if a.available else "-"} for a in run.approaches]


def render_markdown(run: RunData, summary: dict) -> str:
    d = summary["decision"]
    st = run.status
    lines = [f"# Decision report: {_md(run.spec.get('name') or run.run_id)}", "",
             f"Run `{run.run_id}` · {summary['n_questions']} questions · state {run.state} "
             f"({st.get('done', 0)}/{st.get('total', 0)} answers, {st.get('errors', 0)} errors) · "
             f"generated {time.strftime('%Y-%m-%d %H:%M')}", ""]
    ov = d.get("overall", {})
    lines += ["## Recommendation", "", ov.get("text", ""), ""]
    if ov.get("rule"):
        lines += [f"_{ov['rule']}_", ""]
    lines += _md_sections(verdict_sections(run))
    for key, title in CONSIDERATIONS:
        part = d.get(key)
        if not part:
            continue
        lines += [f"## {title}", "", part["text"], "", _md_table(part.get("table", []))]
        for extra in part.get("extra", []):
            lines += [_md(extra["caption"]), "", _md_table(extra["rows"])]
        if part.get("by_tag"):
            lines += ["Quality per question tag (mean [95% CI] (n)):", "", _md_table(part["by_tag"])]
        if key == "cost" and part.get("break_even"):
            lines += ["Break-even of fine-tuning (one-off training cost / per-query saving):", "",
                      _md_table([{"fine-tuned": b["fine_tuned"], "versus": b["versus"],
                                  "queries": f"{b['queries']:,.0f}" if b["queries"] is not None else "never",
                                  "why": b["reason"]} for b in part["break_even"]])]
    if d.get("unavailable"):
        lines += ["## Approaches that could not run", "",
                  _md_table([{"approach": u["name"], "reason": u["reason"]} for u in d["unavailable"]])]
    lines += _md_sections(evidence_sections(run))
    lines += ["## What produced these answers", "", _md_table(_provenance(run))]
    if summary.get("diff"):
        diff = summary["diff"]
        lines += [f"## Against baseline run `{diff['baseline_run']}`", "",
                  _md_table([{"approach": k, "vs": v["vs"], "better": v["better"], "worse": v["worse"],
                              "same": v["same"], "no baseline": v["missing"]} for k, v in diff["counts"].items()])]
    lines += ["## Per-question quality", ""]
    rows = matrix_rows(run, summary.get("diff"))
    names = [a.name for a in run.approaches]
    wide = {}
    for r in rows:
        w = wide.setdefault(r["qid"], {"question": r["question"][:80], "tags": r["tags"]})
        w[r["approach"]] = r.get("quality") if r["status"] == "ok" else r["status"]
    lines.append(_md_table([{"id": k, **v} for k, v in wide.items()], ["id", "question", "tags", *names]))
    lines += ["## Answers", ""]
    for r in rows:
        if r["status"] == "ok":
            ans = r["answer"] if len(r["answer"]) <= ANSWER_CHARS else r["answer"][:ANSWER_CHARS] + "…"
            lines.append(f"- **{_md(r['qid'])} · {_md(r['approach'])}** (quality {_fmt(r.get('quality'))}): {_md(ans)}")
    lines += ["", "## How the scores are computed", ""]
    lines += [f"- **{k}**: {v}" for k, v in EXPLAIN.items()]
    return "\n".join(lines) + "\n"


# ---- HTML -------------------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#1d2330}h1{font-size:1.6em}h2{border-bottom:1px solid #dde;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #dde;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f5f9}.rec{background:#eef7ee;border-left:4px solid #3a3;
padding:.6em 1em}.rule{color:#555;font-style:italic}.muted{color:#667}.ans{white-space:pre-wrap;max-width:520px}
.better{color:#1a7f37}.worse{color:#c62828}details{margin:.3em 0}"""


def _e(v) -> str:
    return html.escape(_fmt(v))


def _html_table(rows: list[dict], cols: list[str] | None = None, cls: dict | None = None) -> str:
    if not rows:
        return "<p class='muted'>(none)</p>"
    cols = cols or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            css = (cls or {}).get(c, "")
            v = r.get(c)
            extra = f" class='{css}'" if css else ""
            if c == "vs baseline" and v in ("better", "worse"):
                extra = f" class='{v}'"
            cells.append(f"<td{extra}>{_e(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(run: RunData, summary: dict, include_charts: bool = True) -> str:
    d = summary["decision"]
    st = run.status
    parts = [f"<h1>Decision report: {html.escape(str(run.spec.get('name') or run.run_id))}</h1>",
             f"<p class='muted'>Run {html.escape(run.run_id)} · {summary['n_questions']} questions · state "
             f"{html.escape(run.state)} ({st.get('done', 0)}/{st.get('total', 0)} answers, {st.get('errors', 0)} "
             f"errors) · generated {time.strftime('%Y-%m-%d %H:%M')}</p>"]
    ov = d.get("overall", {})
    parts.append(f"<div class='rec'><h2 style='border:0;margin-top:.2em'>Recommendation</h2><p>{html.escape(ov.get('text', ''))}</p>"
                 + (f"<p class='rule'>{html.escape(ov['rule'])}</p>" if ov.get("rule") else "") + "</div>")
    parts += _html_sections(verdict_sections(run))
    figs = {}
    if include_charts and any(s.n_answers for s in summary["approaches"]):
        figs = charts.all_figures(run, summary["approaches"])
    fig_for = {"accuracy": ["scores", "tags"], "latency": ["latency"], "cost": ["tokens", "cost"]}
    for key, title in CONSIDERATIONS:
        part = d.get(key)
        if not part:
            continue
        parts.append(f"<h2>{title}</h2><p>{html.escape(part['text'])}</p>")
        parts.append(_html_table(part.get("table", [])))
        for extra in part.get("extra", []):
            parts.append(f"<p>{html.escape(extra['caption'])}</p>" + _html_table(extra["rows"]))
        if part.get("by_tag"):
            parts.append("<p>Quality per question tag (mean [95% CI] (n)):</p>" + _html_table(part["by_tag"]))
        if key == "cost" and part.get("break_even"):
            parts.append("<p>Break-even of fine-tuning (one-off training cost / per-query saving):</p>")
            parts.append(_html_table([{"fine-tuned": b["fine_tuned"], "versus": b["versus"],
                                       "queries": f"{b['queries']:,.0f}" if b["queries"] is not None else "never",
                                       "why": b["reason"]} for b in part["break_even"]]))
        for f in fig_for.get(key, []):
            if f in figs:
                parts.append(figs[f].to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))
    if d.get("unavailable"):
        parts.append("<h2>Approaches that could not run</h2>")
        parts.append(_html_table([{"approach": u["name"], "reason": u["reason"]} for u in d["unavailable"]]))
    parts += _html_sections(evidence_sections(run))
    parts.append("<h2>What produced these answers</h2>" + _html_table(_provenance(run)))
    if summary.get("diff"):
        diff = summary["diff"]
        parts.append(f"<h2>Against baseline run {html.escape(diff['baseline_run'])}</h2>")
        parts.append(_html_table([{"approach": k, "vs": v["vs"], "better": v["better"], "worse": v["worse"],
                                   "same": v["same"], "no baseline": v["missing"]} for k, v in diff["counts"].items()]))
    rows = matrix_rows(run, summary.get("diff"))
    parts.append("<h2>Results matrix</h2>")
    mrows = [{"id": r["qid"], "question": r["question"][:120], "approach": r["approach"], "quality": r.get("quality"),
              "vs baseline": r.get("vs_baseline"), "latency s": r.get("latency_s"), "tokens": r.get("tokens"),
              "answer": r["answer"]} for r in rows]
    parts.append(_html_table(mrows, cls={"answer": "ans"}))
    parts.append("<h2>How the scores are computed</h2><ul>" +
                 "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in EXPLAIN.items()) + "</ul>")
    js = ""
    if figs:
        from plotly.offline import get_plotlyjs
        js = f"<script type='text/javascript'>{get_plotlyjs()}</script>"
    title = html.escape(f"Decision report · {run.spec.get('name') or run.run_id}")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{_CSS}</style>{js}</head><body>{''.join(parts)}</body></html>")


def export(run_id: str, fmt: str, out: str | Path | None = None, cost_model: CostModel | None = None,
           baseline: str | None = None) -> Path:
    """Render and write the report; also keeps a copy in the run folder. Returns the written path."""
    if fmt not in ("html", "md"):
        raise CompareError(f"Unknown report format {fmt!r}: use html or md.")
    run, summary = build(run_id, cost_model, baseline)
    text = render_html(run, summary) if fmt == "html" else render_markdown(run, summary)
    targets = [run.dir / f"report.{fmt}"]
    if out:
        targets.insert(0, Path(out))
    for t in targets:
        try:
            t.parent.mkdir(parents=True, exist_ok=True)
            tmp = t.with_name(f".{t.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(t)
        except OSError as exc:
            raise ExportError(f"Could not write the report to {t}: {exc}") from exc
    return targets[0]


# ---- evidence sections: advisor vs measured, paired intervals, repeat spread, judge agreement ---------------------
def evidence_sections(run: RunData) -> list[dict]:
    """The sections core.compare.evidence builds for this run ({title, paragraphs, tables: [{caption, rows}]}),
    only those that apply (advice stored with the run, two or more approaches, repeats, human ratings)."""
    from core.compare.evidence import report_sections

    return report_sections(run)


# ---- verdicts per question type (core/compare/verdicts.py), rendered as generic sections -------------------------
def verdict_sections(run: RunData) -> list[dict]:
    """{title, paragraphs, tables: [{caption, rows}]} per section; none when the run's questions carry no tags."""
    from core.compare.verdicts import report_sections

    return report_sections(run) if any(q.tags for q in run.questions) else []


def _md_sections(sections: list[dict]) -> list[str]:
    lines = []
    for sec in sections:
        lines += [f"## {_md(sec['title'])}", ""]
        for p in sec["paragraphs"]:
            lines += [_md(p), ""]
        for t in sec["tables"]:
            if t.get("caption"):
                lines += [_md(t["caption"]), ""]
            lines.append(_md_table(t["rows"]))
    return lines


def _html_sections(sections: list[dict]) -> list[str]:
    parts = []
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec['title'])}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in sec["paragraphs"]]
        for t in sec["tables"]:
            if t.get("caption"):
                parts.append(f"<p>{html.escape(t['caption'])}</p>")
            parts.append(_html_table(t["rows"]))
    return parts


def _report_key(run_id: str, fmt: str, cost_model: CostModel | None, baseline: str | None) -> str:
    """What the report depends on: the run's files (mtime + size), its baseline's, the cost model, the renderer."""
    import hashlib
    import json

    from core.compare.runner import runs_root

    run = runs_root() / run_id
    base = baseline if baseline is not None else (load_run(run_id).spec.get("baseline") or "")
    parts = [fmt, json.dumps((cost_model or CostModel()).to_dict(), sort_keys=True), str(base),
             str(Path(__file__).stat().st_mtime_ns)]
    for d in [run] + ([runs_root() / base] if base else []):
        for name in ("spec.json", "status.json", "results.jsonl"):
            try:
                st = (d / name).stat()
                parts.append(f"{d.name}/{name}:{st.st_mtime_ns}:{st.st_size}")
            except OSError:
                parts.append(f"{d.name}/{name}:-")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def cached(run_id: str, fmt: str, cost_model: CostModel | None = None, baseline: str | None = None) -> Path:
    """The run's report file in its folder, rendered only when the run, its baseline or the cost model changed
    since the last rendering (so a page can offer it on every rerun and build it only when asked)."""
    from core.compare.runner import run_dir
    from core.fileio import read_json, write_json_atomic

    d = run_dir(run_id)
    key = _report_key(run_id, fmt, cost_model, baseline)
    path, key_path = d / f"report.{fmt}", d / f".report.{fmt}.key.json"
    if path.is_file() and (read_json(key_path, {}) or {}).get("key") == key:
        return path
    out = export(run_id, fmt, None, cost_model, baseline)
    write_json_atomic(key_path, {"key": key, "built": time.time()})
    return out

