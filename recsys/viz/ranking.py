"""Figures of the ranking study and the feature control (tidy frames of recsys.eval.ranking_study in,
plotly Figures out): models x metric bars with 95 % intervals, metric vs K, the control's paired
differences, head vs tail recall."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from recsys.errors import InvalidInput, InvalidParameter
from recsys.eval.ranking import metric_label

PALETTE = px.colors.qualitative.D3
ZERO_COLOUR = "#757575"


def _rows(summary: pd.DataFrame, metric: str, k: int | None, what: str) -> pd.DataFrame:
    missing = {"model", "metric", "k", "mean", "ci_low", "ci_high"} - set(summary.columns)
    if missing:
        raise InvalidInput(f"{what}: frame lacks columns {sorted(missing)}")
    rows = summary[summary["metric"] == metric]
    if k is not None:
        rows = rows[rows["k"] == k]
    if rows.empty:
        raise InvalidParameter(
            f"{what}: no {metric_label(metric, k or 0)} in the frame (have {sorted(summary['metric'].unique())})"
        )
    return rows


def _error_y(rows: pd.DataFrame) -> dict:
    return {
        "type": "data",
        "symmetric": False,
        "array": (rows["ci_high"] - rows["mean"]).clip(lower=0),
        "arrayminus": (rows["mean"] - rows["ci_low"]).clip(lower=0),
    }


def metric_bars(summary: pd.DataFrame, metric: str = "recall", k: int = 20) -> go.Figure:
    """One bar per model: mean over users with its 95 % interval (model order as in the frame)."""
    k = 0 if metric == "auc" else k
    rows = _rows(summary, metric, k, "metric_bars")
    models = list(dict.fromkeys(rows["model"]))
    rows = rows.set_index("model").loc[models].reset_index()
    label = metric_label(metric, k)
    fig = go.Figure(
        go.Bar(
            x=rows["model"],
            y=rows["mean"],
            marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(rows))],
            error_y=_error_y(rows),
            text=[f"{m:.3f}" for m in rows["mean"]],
            textposition="outside",
            customdata=rows[["ci_low", "ci_high", "n_users"]].to_numpy(),
            hovertemplate="%{x}<br>%{y:.4f} [%{customdata[0]:.4f}, %{customdata[1]:.4f}]"
            "<br>%{customdata[2]} users<extra></extra>",
        )
    )
    n_users = int(rows["n_users"].max()) if "n_users" in rows else None
    fig.update_layout(
        title=f"{label} per model (mean over {n_users:,} users, 95 % interval)" if n_users else label,
        yaxis_title=label,
        xaxis_title=None,
        showlegend=False,
    )
    return fig


def metric_vs_k(summary: pd.DataFrame, metric: str = "recall") -> go.Figure:
    """One line per model: the metric at each K with 95 % intervals."""
    if metric == "auc":
        raise InvalidParameter("AUC has no K: use metric_bars")
    rows = _rows(summary, metric, None, "metric_vs_k").sort_values("k")
    fig = go.Figure()
    for index, model in enumerate(dict.fromkeys(rows["model"])):
        group = rows[rows["model"] == model]
        fig.add_trace(
            go.Scatter(
                x=group["k"],
                y=group["mean"],
                mode="lines+markers",
                name=model,
                line={"color": PALETTE[index % len(PALETTE)]},
                error_y=_error_y(group),
                hovertemplate="K=%{x}<br>%{y:.4f}<extra>" + model + "</extra>",
            )
        )
    fig.update_layout(
        title=f"{metric_label(metric, 0)}@K per model (95 % intervals)",
        xaxis_title="K (list length)",
        yaxis_title=metric_label(metric, 0),
        legend_title="model",
    )
    fig.update_xaxes(tickvals=sorted(rows["k"].unique()))
    return fig


def control_differences(paired: pd.DataFrame, metric: str = "recall", k: int = 20) -> go.Figure:
    """Paired differences 'real features minus X' with 95 % intervals; the zero line marks "no gain"."""
    missing = {"model_a", "model_b", "metric", "k", "mean_diff", "diff_ci_low", "diff_ci_high"} - set(paired.columns)
    if missing:
        raise InvalidInput(f"control_differences: frame lacks columns {sorted(missing)}")
    rows = paired[(paired["metric"] == metric) & (paired["k"] == (0 if metric == "auc" else k))]
    if rows.empty:
        raise InvalidParameter(f"control_differences: no paired {metric_label(metric, k)} in the frame")
    label = metric_label(metric, 0 if metric == "auc" else k)
    colours = [
        ZERO_COLOUR if low <= 0 <= high else ("#2ca02c" if mean > 0 else "#d62728")
        for mean, low, high in rows[["mean_diff", "diff_ci_low", "diff_ci_high"]].itertuples(index=False)
    ]
    fig = go.Figure(
        go.Scatter(
            x=rows["mean_diff"],
            y=[f"real − {b.split(' · ')[-1]}" for b in rows["model_b"]],
            mode="markers",
            marker={"size": 12, "color": colours},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": rows["diff_ci_high"] - rows["mean_diff"],
                "arrayminus": rows["mean_diff"] - rows["diff_ci_low"],
            },
            customdata=rows[["diff_ci_low", "diff_ci_high", "n_users"]].to_numpy(),
            hovertemplate="%{y}: %{x:+.4f} [%{customdata[0]:+.4f}, %{customdata[1]:+.4f}]"
            "<br>%{customdata[2]} users<extra></extra>",
        )
    )
    fig.add_vline(x=0, line={"color": ZERO_COLOUR, "dash": "dash"})
    fig.update_layout(
        title=f"What the features add: paired {label} differences (95 % intervals; grey = includes 0)",
        xaxis_title=f"difference in {label}",
        yaxis={"autorange": "reversed"},
        showlegend=False,
    )
    return fig


def head_tail_bars(breakdown: pd.DataFrame, k: int = 20) -> go.Figure:
    """Recall@K on head (most-rated) and tail items, grouped by model, with 95 % intervals."""
    missing = {"model", "group", "k", "mean", "ci_low", "ci_high"} - set(breakdown.columns)
    if missing:
        raise InvalidInput(f"head_tail_bars: frame lacks columns {sorted(missing)}")
    rows = breakdown[breakdown["k"] == k]
    if rows.empty:
        raise InvalidParameter(f"head_tail_bars: no K={k} in the frame (have {sorted(breakdown['k'].unique())})")
    fig = go.Figure()
    for index, group in enumerate(("head", "tail")):
        part = rows[rows["group"] == group]
        fig.add_trace(
            go.Bar(
                x=part["model"],
                y=part["mean"],
                name=f"{group} items",
                marker_color=PALETTE[index],
                error_y=_error_y(part),
                hovertemplate="%{x}<br>%{y:.4f}<extra>" + group + "</extra>",
            )
        )
    head = breakdown.attrs.get("head_items")
    fig.update_layout(
        barmode="group",
        title=f"Recall@{k} on head items{f' (the {head} most-rated)' if head else ''} and on the tail",
        yaxis_title=f"Recall@{k}",
        legend_title=None,
    )
    return fig
