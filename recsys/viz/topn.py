"""Figures of the top-N study: metric vs α per K with 95% CIs, α × K heatmap, Guo's table, cold start.

Every builder takes the tidy frames of `recsys.eval.topn_study` and returns a plotly Figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from recsys.errors import InvalidInput, InvalidParameter
from recsys.eval.ranking_metrics import METRIC_LABELS

PALETTE = px.colors.qualitative.D3
PAPER_COLOUR = "#9e9e9e"
PAPER_WITH_COLOUR = "#616161"


def _check(frame: pd.DataFrame, columns: set[str], what: str) -> None:
    missing = columns - set(frame.columns)
    if missing:
        raise InvalidInput(f"{what}: frame lacks columns {sorted(missing)}")


def _rows_for(summary: pd.DataFrame, metric: str, what: str) -> pd.DataFrame:
    _check(summary, {"alpha", "k", "metric", "mean", "ci_low", "ci_high"}, what)
    rows = summary[summary["metric"] == metric]
    if rows.empty:
        raise InvalidParameter(
            f"{what}: metric {metric!r} not in the frame (have {sorted(summary['metric'].unique())})"
        )
    return rows.sort_values(["k", "alpha"])


def metric_vs_alpha(summary: pd.DataFrame, metric: str = "precision") -> go.Figure:
    """One line per K: mean metric over users against α, with 95% CI error bars (α = 1 is plain CF)."""
    rows = _rows_for(summary, metric, "metric_vs_alpha")
    fig = go.Figure()
    for index, (k, group) in enumerate(rows.groupby("k", sort=True)):
        fig.add_trace(
            go.Scatter(
                x=group["alpha"],
                y=group["mean"],
                mode="lines+markers",
                name=f"K={k}",
                line={"color": PALETTE[index % len(PALETTE)]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": group["ci_high"] - group["mean"],
                    "arrayminus": group["mean"] - group["ci_low"],
                },
                hovertemplate="α=%{x}<br>%{y:.4f}<extra>K=" + str(k) + "</extra>",
            )
        )
    fig.update_layout(
        title=f"{METRIC_LABELS.get(metric, metric)} vs α (mean over users, 95% CI)",
        xaxis_title="α  (1 = ratings only, plain CF · 0 = poster profiles only)",
        yaxis_title=METRIC_LABELS.get(metric, metric),
        legend_title="neighbours",
    )
    fig.update_xaxes(tickvals=sorted(rows["alpha"].unique()))
    return fig


def study_figure(summary: pd.DataFrame, metric: str = "precision") -> go.Figure:
    """The study's main figure for the Recommend page: `metric_vs_alpha`."""
    return metric_vs_alpha(summary, metric)


def alpha_k_heatmap(summary: pd.DataFrame, metric: str = "precision") -> go.Figure:
    """α × K heatmap of the mean; each cell's text shows mean and its 95% CI."""
    rows = _rows_for(summary, metric, "alpha_k_heatmap")
    mean = rows.pivot(index="alpha", columns="k", values="mean")
    low = rows.pivot(index="alpha", columns="k", values="ci_low")
    high = rows.pivot(index="alpha", columns="k", values="ci_high")
    text = [
        [
            f"{m:.3f}<br>[{lo:.3f}, {hi:.3f}]" if not np.isnan(lo) else f"{m:.3f}"
            for m, lo, hi in zip(mean.loc[a], low.loc[a], high.loc[a])
        ]
        for a in mean.index
    ]
    fig = go.Figure(
        go.Heatmap(
            z=mean.to_numpy(),
            x=[f"K={k}" for k in mean.columns],
            y=[f"α={a:g}" for a in mean.index],
            text=text,
            texttemplate="%{text}",
            colorscale="Viridis",
            colorbar={"title": metric},
            hovertemplate="%{y} %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{METRIC_LABELS.get(metric, metric)}: α × K (mean [95% CI])", xaxis_title="neighbours K", yaxis_title="α"
    )
    return fig


def paired_difference(paired: pd.DataFrame, metric: str = "precision") -> go.Figure:
    """Difference to plain CF (α minus α=1) per α and K with its 95% CI; zero line = no change."""
    _check(paired, {"alpha", "k", "metric", "mean_diff", "diff_ci_low", "diff_ci_high"}, "paired_difference")
    rows = paired[paired["metric"] == metric].sort_values(["k", "alpha"])
    if rows.empty:
        raise InvalidParameter(f"paired_difference: metric {metric!r} not in the frame")
    fig = go.Figure()
    for index, (k, group) in enumerate(rows.groupby("k", sort=True)):
        hover = [
            f"p(t)={t:.3g} · p(Wilcoxon)={w:.3g}"
            for t, w in zip(group.get("t_p", np.nan), group.get("wilcoxon_p", np.nan))
        ]
        fig.add_trace(
            go.Scatter(
                x=group["alpha"],
                y=group["mean_diff"],
                mode="markers+lines",
                name=f"K={k}",
                line={"color": PALETTE[index % len(PALETTE)], "dash": "dot"},
                text=hover,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": group["diff_ci_high"] - group["mean_diff"],
                    "arrayminus": group["mean_diff"] - group["diff_ci_low"],
                },
                hovertemplate="α=%{x}<br>Δ=%{y:.4f}<br>%{text}<extra>K=" + str(k) + "</extra>",
            )
        )
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    fig.update_layout(
        title=f"Change in {METRIC_LABELS.get(metric, metric)} vs plain CF (paired, 95% CI)",
        xaxis_title="α",
        yaxis_title="α minus α=1",
        legend_title="neighbours",
    )
    return fig


_PAPER_VALUES = {  # Guo, Table 1: without / with image features
    "precision": ("Recommendation accuracy", 0.70, 0.85),
    "genre_diversity": ("Recommendation diversity (genres)", 5.0, 8.0),
    "hit_rate": ("Preference fit", 0.60, 0.80),
}


def guo_comparison(summary: pd.DataFrame, k: int = 10, hybrid_alpha: float = 0.5) -> go.Figure:
    """Guo's three claims (grey bars) beside our measured counterparts at K (CI error bars)."""
    _check(summary, {"alpha", "k", "metric", "mean", "ci_low", "ci_high"}, "guo_comparison")
    at_k = summary[summary["k"] == k]
    if at_k.empty:
        raise InvalidParameter(f"guo_comparison: the study has no K={k}")
    fig = make_subplots(rows=1, cols=3, subplot_titles=[v[0] for v in _PAPER_VALUES.values()])
    for column, (metric, (_, without, with_images)) in enumerate(_PAPER_VALUES.items(), start=1):
        fig.add_trace(
            go.Bar(
                x=["paper: no posters", "paper: posters"],
                y=[without, with_images],
                marker_color=[PAPER_COLOUR, PAPER_WITH_COLOUR],
                name="Guo (paper)",
                showlegend=column == 1,
                legendgroup="paper",
            ),
            row=1,
            col=column,
        )
        ours = at_k[(at_k["metric"] == metric) & at_k["alpha"].isin([1.0, hybrid_alpha])].set_index("alpha")
        labels, values, upper, lower = [], [], [], []
        for alpha, label in ((1.0, "ours: CF α=1"), (hybrid_alpha, f"ours: hybrid α={hybrid_alpha:g}")):
            if alpha in ours.index:
                row = ours.loc[alpha]
                labels.append(label)
                values.append(row["mean"])
                upper.append(row["ci_high"] - row["mean"])
                lower.append(row["mean"] - row["ci_low"])
        fig.add_trace(
            go.Bar(
                x=labels,
                y=values,
                marker_color=[PALETTE[0], PALETTE[1]][: len(labels)],
                error_y={"type": "data", "symmetric": False, "array": upper, "arrayminus": lower},
                name="ours (measured)",
                showlegend=column == 1,
                legendgroup="ours",
            ),
            row=1,
            col=column,
        )
    fig.update_layout(
        title=f"Guo's claims vs measured (K={k}; ours: precision@N, distinct genres, hit rate)", barmode="group"
    )
    return fig


def cold_start_bars(cold: pd.DataFrame) -> go.Figure:
    """Per cold-start metric, one bar per model with its 95% CI."""
    _check(cold, {"model", "metric", "mean", "ci_low", "ci_high"}, "cold_start_bars")
    metrics = list(dict.fromkeys(cold["metric"]))
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics)
    for column, metric in enumerate(metrics, start=1):
        rows = cold[cold["metric"] == metric]
        fig.add_trace(
            go.Bar(
                x=rows["model"],
                y=rows["mean"],
                marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(rows))],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["ci_high"] - rows["mean"],
                    "arrayminus": rows["mean"] - rows["ci_low"],
                },
                showlegend=False,
            ),
            row=1,
            col=column,
        )
    fig.update_layout(title="New-item cold start: are held-out new items recommended, and liked?")
    return fig
