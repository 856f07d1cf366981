"""Plotly figures shared by the Compare page and the exported report (plotly is imported lazily)."""
from __future__ import annotations

from core.compare.runner import RunData
from core.compare.summary import ApproachSummary

SCORE_ORDER = ("quality", "similarity", "keywords", "voice", "context_hit", "groundedness", "citations", "judge",
               "exact", "json_valid", "patterns")
_LAYOUT = dict(template="plotly_white", height=400, margin=dict(l=50, r=20, t=50, b=90),
               legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))


def _err(est):
    if est.mean is None or est.lo is None:
        return 0.0, 0.0
    return max(0.0, est.hi - est.mean), max(0.0, est.mean - est.lo)


def scores_by_approach(sums: list[ApproachSummary]):
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in sums:
        if not s.n_answers:
            continue
        names, vals, up, down, texts = [], [], [], [], []
        for k in SCORE_ORDER:
            est = s.quality if k == "quality" else s.scores.get(k)
            if est is None or est.mean is None:
                continue
            names.append(k)
            vals.append(est.mean)
            u, d = _err(est)
            up.append(u)
            down.append(d)
            texts.append(f"n={est.n}")
        fig.add_bar(name=s.name, x=names, y=vals, text=texts, hovertemplate="%{x}: %{y:.2f} (%{text})", textposition="none",
                    error_y=dict(type="data", symmetric=False, array=up, arrayminus=down))
    fig.update_layout(title="Scores by approach (mean, 95% bootstrap CI)", barmode="group",
                      yaxis=dict(range=[0, 1.05], title="score"), **_LAYOUT)
    return fig


def scores_by_tag(sums: list[ApproachSummary]):
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in sums:
        tags = [t for t, e in s.by_tag.items() if e.mean is not None]
        if not tags:
            continue
        ests = [s.by_tag[t] for t in tags]
        fig.add_bar(name=s.name, x=tags, y=[e.mean for e in ests], text=[f"n={e.n}" for e in ests],
                    hovertemplate="%{x}: %{y:.2f} (%{text})", textposition="none",
                    error_y=dict(type="data", symmetric=False, array=[_err(e)[0] for e in ests],
                                 arrayminus=[_err(e)[1] for e in ests]))
    fig.update_layout(title="Quality by question tag", barmode="group", yaxis=dict(range=[0, 1.05], title="quality"),
                      **_LAYOUT)
    return fig


def latency_distribution(run: RunData):
    import plotly.graph_objects as go

    fig = go.Figure()
    for a in run.approaches:
        ok = [r for r in run.results if r["approach"] == a.name and r.get("ok")]
        if not ok:
            continue
        fig.add_box(name=f"{a.name} latency", y=[r.get("latency_s") for r in ok], boxpoints="all",
                    legendgroup=a.name)
        fig.add_box(name=f"{a.name} TTFT", y=[r.get("ttft_s") for r in ok], boxpoints="all", legendgroup=a.name)
    fig.update_layout(title="Latency and time to first token (s, end to end incl. retrieval)",
                      yaxis=dict(title="seconds"), showlegend=False, **{k: v for k, v in _LAYOUT.items() if k != "legend"})
    return fig


def tokens_per_query(sums: list[ApproachSummary]):
    import plotly.graph_objects as go

    have = [s for s in sums if s.n_answers]
    fig = go.Figure()
    fig.add_bar(name="prompt tokens", x=[s.name for s in have], y=[s.prompt_tokens or 0 for s in have])
    fig.add_bar(name="completion tokens", x=[s.name for s in have], y=[s.completion_tokens or 0 for s in have])
    fig.update_layout(title="Tokens per query (mean)", barmode="stack", yaxis=dict(title="tokens"), **_LAYOUT)
    return fig


def quality_vs_cost(sums: list[ApproachSummary]):
    import plotly.graph_objects as go

    have = [s for s in sums if s.n_answers and s.cost and s.quality.mean is not None]
    fig = go.Figure()
    for s in have:
        u, d = _err(s.quality)
        fig.add_scatter(name=s.name, x=[s.cost["per_1k"]], y=[s.quality.mean], mode="markers+text",
                        text=[s.name], textposition="top center", marker=dict(size=14),
                        error_y=dict(type="data", symmetric=False, array=[u], arrayminus=[d]),
                        hovertemplate=f"{s.name}<br>$%{{x:.4f}} per 1k queries<br>quality %{{y:.2f}}")
    fig.update_layout(title="Quality vs cost (up and left is better)", xaxis=dict(title="$ per 1,000 queries"),
                      yaxis=dict(title="quality", range=[0, 1.05]), showlegend=False,
                      **{k: v for k, v in _LAYOUT.items() if k != "legend"})
    return fig


def all_figures(run: RunData, sums: list[ApproachSummary]) -> dict:
    return {"scores": scores_by_approach(sums), "tags": scores_by_tag(sums), "latency": latency_distribution(run),
            "tokens": tokens_per_query(sums), "cost": quality_vs_cost(sums)}
