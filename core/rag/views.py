"""Tables and charts of the Knowledge Base, shaped here so the page only lays them out (no streamlit here)."""
from __future__ import annotations

import time


def file_result_rows(results: list[dict]) -> list[dict]:
    """One row per ingested file (FileResult dicts): status, chunks, tokens, embedded chunks, seconds, error."""
    return [{"file": r["file"], "status": "unchanged" if r.get("skipped_unchanged") else ("ok" if r.get("ok") else "error"),
             "chunks": r.get("chunks", 0), "tokens": r.get("tokens", 0), "embedded": r.get("embedded", 0),
             "seconds": round(float(r.get("seconds") or 0), 2), "error": r.get("error", "")} for r in results]


def document_rows(docs: list[dict]) -> list[dict]:
    """One row per document of a collection (store.list_documents), with its measured ingest time when known."""
    return [{"document": d["doc_id"], "source": d["source"], "chunks": d["chunks"], "tokens": d["tokens"],
             "ingest s": None if d.get("ingest_s") is None else round(float(d["ingest_s"]), 2),
             "ingested": time.strftime("%Y-%m-%d %H:%M", time.gmtime(d["ingested_at"] or 0))} for d in docs]


def eval_label(rep) -> str:
    return f"{rep.index.get('chunker')} {rep.index.get('chunk_size')}/{rep.index.get('overlap')}"


def eval_chart_rows(runs: list) -> list[dict]:
    """hit@1, hit@5 and MRR per mode for each evaluation run (EvalReport), for a grouped bar chart."""
    rows = []
    for i, r in enumerate(runs):
        label = f"run {i + 1}: {eval_label(r)}"
        for m, s in r.modes.items():
            for metric, val in (("hit@1", s.hit_at_1), ("hit@5", s.hit_at_5), ("MRR", s.mrr)):
                rows.append({"run": label, "mode": m, "metric": metric, "value": val})
    return rows


def eval_figure(runs: list, height: int = 360):
    import pandas as pd
    import plotly.express as px

    return px.bar(pd.DataFrame(eval_chart_rows(runs)), x="mode", y="value", color="metric", barmode="group",
                  facet_col="run" if len(runs) > 1 else None, range_y=[0, 1], height=height)
