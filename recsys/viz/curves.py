"""Error curves: RMSE/MAE vs K neighbours (Ben Hassen et al.) and vs fusion weight (VT2, Figs. 7-8)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from recsys.errors import InvalidInput

PALETTE = px.colors.qualitative.D3
MEAN_COLOUR = "#ff7f0e"  # VT2: orange mean line
MEDIAN_COLOUR = "#d62728"  # VT2: red median line
BAND_INNER = "rgba(31, 70, 160, 0.45)"  # 10th-90th percentile, dark blue
BAND_OUTER = "rgba(120, 170, 230, 0.30)"  # 0th-100th percentile, light blue


def _check(frame: pd.DataFrame, columns: set[str], what: str) -> None:
    missing = columns - set(frame.columns)
    if missing:
        raise InvalidInput(f"{what}: frame lacks columns {sorted(missing)}")


def mean_over_folds(frame: pd.DataFrame, by: list[str], metrics=("rmse", "mae")) -> pd.DataFrame:
    """Mean and standard deviation of each metric over folds, per group (tidy)."""
    metrics = [m for m in metrics if m in frame.columns]
    grouped = frame.groupby(by, sort=True)[metrics]
    mean = grouped.mean()
    std = grouped.std(ddof=0).add_suffix("_std")
    count = grouped.size().rename("folds")
    return pd.concat([mean, std, count], axis=1).reset_index()


def best_k_table(curves: pd.DataFrame, metric: str = "rmse") -> pd.DataFrame:
    """Ben Hassen's Table 1 style: per representation, the best mean error and the K where it occurs."""
    _check(curves, {"representation", "k", metric}, "best_k_table")
    mean = mean_over_folds(curves, ["representation", "k"])
    rows = []
    for representation, group in mean.groupby("representation", sort=False):
        best = group.loc[group[metric].idxmin()]
        row = {"representation": representation, f"best {metric.upper()}": best[metric], "best K": int(best["k"])}
        other = "mae" if metric == "rmse" else "rmse"
        if other in group.columns:
            row[f"{other.upper()} at best K"] = best[other]
        row["folds"] = int(best["folds"])
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(f"best {metric.upper()}").reset_index(drop=True)


BASELINE_STYLES = {"global mean": dict(color="#6b6b6b", dash="dot"), "user mean": dict(color="#222222", dash="dash")}


def _baseline_lines(fig: go.Figure, baselines: dict[str, float] | None) -> None:
    """Horizontal lines for the mean baselines (labelled at the right end)."""
    for name, value in (baselines or {}).items():
        if value is None or not np.isfinite(value):
            continue
        style = BASELINE_STYLES.get(name, dict(color="#444", dash="dot"))
        fig.add_hline(
            y=float(value),
            line=dict(width=2, **style),
            annotation_text=f"{name} {value:.4f}",
            annotation_position="top right",
        )


def error_vs_k(
    curves: pd.DataFrame,
    metric: str = "rmse",
    k_range: tuple[int, int] | None = None,
    baselines: dict[str, float] | None = None,
) -> go.Figure:
    """One line per representation (mean over folds, ±1 sd as a thin band), best K marked with a star;
    `baselines` (e.g. {"global mean": 1.12, "user mean": 1.04}) are drawn as horizontal lines.

    `k_range` only crops what is drawn: the curve is computed once and re-cropped on redraw.
    """
    _check(curves, {"representation", "k", metric}, "error_vs_k")
    mean = mean_over_folds(curves, ["representation", "k"])
    if k_range is not None:
        mean = mean[(mean["k"] >= k_range[0]) & (mean["k"] <= k_range[1])]
    fig = go.Figure()
    for index, (representation, group) in enumerate(mean.groupby("representation", sort=False)):
        group = group.sort_values("k")
        colour = PALETTE[index % len(PALETTE)]
        std = group.get(f"{metric}_std")
        if std is not None and group["folds"].max() > 1:
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([group["k"], group["k"][::-1]]),
                    y=np.concatenate([group[metric] + std, (group[metric] - std)[::-1]]),
                    fill="toself",
                    fillcolor=colour,
                    opacity=0.12,
                    line=dict(width=0),
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=str(representation),
                    name=f"{representation} ±1 sd",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=group["k"],
                y=group[metric],
                mode="lines+markers",
                name=str(representation),
                legendgroup=str(representation),
                line=dict(color=colour, width=2),
                marker=dict(size=5),
                hovertemplate=f"{representation}<br>K=%{{x}}<br>{metric.upper()}=%{{y:.4f}}<extra></extra>",
            )
        )
        if len(group):
            best = group.loc[group[metric].idxmin()]
            fig.add_trace(
                go.Scatter(
                    x=[best["k"]],
                    y=[best[metric]],
                    mode="markers",
                    marker=dict(symbol="star", size=15, color=colour, line=dict(color="black", width=1)),
                    name=f"best K · {representation}",
                    legendgroup=str(representation),
                    showlegend=False,
                    hovertemplate=f"best for {representation}: K=%{{x}}, {metric.upper()}=%{{y:.4f}}<extra></extra>",
                )
            )
    _baseline_lines(fig, baselines)
    fig.update_layout(
        title=f"{metric.upper()} vs number of neighbours K (★ = best K)",
        xaxis_title="K (neighbours)",
        yaxis_title=metric.upper(),
        legend_title="item representation",
        hovermode="closest",
    )
    return fig


def fusion_bands_frame(curve: pd.DataFrame, metric: str = "rmse", subset: str | None = None) -> pd.DataFrame:
    """Per fusion weight: mean, median and the 0/10/90/100th percentiles of `metric` across folds."""
    _check(curve, {"weight", metric}, "fusion_bands_frame")
    if subset is not None and "subset" in curve.columns:
        curve = curve[curve["subset"] == subset]
    grouped = curve.groupby("weight")[metric]
    return pd.DataFrame(
        {
            "mean": grouped.mean(),
            "median": grouped.median(),
            "p0": grouped.min(),
            "p10": grouped.quantile(0.10),
            "p90": grouped.quantile(0.90),
            "p100": grouped.max(),
            "folds": grouped.size(),
        }
    ).reset_index()


def _band(x, low, high, colour, name) -> go.Scatter:
    return go.Scatter(
        x=np.concatenate([x, x[::-1]]),
        y=np.concatenate([high, low[::-1]]),
        fill="toself",
        fillcolor=colour,
        line=dict(width=0),
        hoverinfo="skip",
        name=name,
    )


def fusion_curve_figure(
    curve: pd.DataFrame,
    metric: str = "rmse",
    subset: str | None = None,
    title: str | None = None,
    baselines: dict[str, float] | None = None,
) -> go.Figure:
    """VT2's fusion figure: error vs fusion weight w of w·CF + (1−w)·content across folds.

    Light band = 0-100th percentile, dark band = 10-90th, orange = mean, red = median; the best mean
    weight is marked.
    """
    bands = fusion_bands_frame(curve, metric, subset)
    x = bands["weight"].to_numpy()
    fig = go.Figure()
    fig.add_trace(_band(x, bands["p0"].to_numpy(), bands["p100"].to_numpy(), BAND_OUTER, "0–100th percentile"))
    fig.add_trace(_band(x, bands["p10"].to_numpy(), bands["p90"].to_numpy(), BAND_INNER, "10–90th percentile"))
    fig.add_trace(
        go.Scatter(
            x=x,
            y=bands["mean"],
            mode="lines",
            name="mean",
            line=dict(color=MEAN_COLOUR, width=2.5),
            hovertemplate="w=%{x:.2f}<br>mean=%{y:.4f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=bands["median"],
            mode="lines",
            name="median",
            line=dict(color=MEDIAN_COLOUR, width=2, dash="dash"),
            hovertemplate="w=%{x:.2f}<br>median=%{y:.4f}<extra></extra>",
        )
    )
    if len(bands):
        best = bands.loc[bands["mean"].idxmin()]
        fig.add_trace(
            go.Scatter(
                x=[best["weight"]],
                y=[best["mean"]],
                mode="markers",
                name=f"best w = {best['weight']:.2f}",
                marker=dict(symbol="star", size=16, color=MEAN_COLOUR, line=dict(color="black", width=1)),
            )
        )
    _baseline_lines(fig, baselines)
    label = f" — {subset} items" if subset else ""
    fig.update_layout(
        title=title or f"{metric.upper()} vs fusion weight w{label} (w=1: CF only, w=0: content only)",
        xaxis_title="fusion weight w  (prediction = w·CF + (1−w)·content)",
        yaxis_title=metric.upper(),
        xaxis_range=[float(x.min()), float(x.max())] if len(x) else None,
    )
    return fig


def fusion_summary_table(curve: pd.DataFrame) -> pd.DataFrame:
    """Per subset and metric: best w (lowest mean), its error, CF alone (w=1), content alone (w=0), gain."""
    rows = []
    subsets = curve["subset"].unique() if "subset" in curve.columns else [None]
    for subset in subsets:
        for metric in ("rmse", "mae"):
            if metric not in curve.columns:
                continue
            bands = fusion_bands_frame(curve, metric, subset)
            if bands.empty:
                continue
            best = bands.loc[bands["mean"].idxmin()]
            cf_only = bands.loc[(bands["weight"] - 1.0).abs().idxmin()]
            content_only = bands.loc[bands["weight"].abs().idxmin()]
            rows.append(
                {
                    "subset": subset or "all",
                    "metric": metric.upper(),
                    "best w": round(float(best["weight"]), 3),
                    "fused": float(best["mean"]),
                    "CF only (w=1)": float(cf_only["mean"]),
                    "content only (w=0)": float(content_only["mean"]),
                    "gain over CF": float(cf_only["mean"] - best["mean"]),
                    "gain over CF %": float(100 * (cf_only["mean"] - best["mean"]) / cf_only["mean"])
                    if cf_only["mean"]
                    else np.nan,
                    "folds": int(best["folds"]),
                }
            )
    return pd.DataFrame(rows)


def r2_bars(table: pd.DataFrame, value: str = "r2_cv", label: str = "representation") -> go.Figure:
    """Cross-validated R² per representation with its 95 % interval (error bars) and the in-sample R²
    (what VT2 reports, an optimistic number) as a hollow marker beside it."""
    fig = go.Figure()
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(table))]
    error = None
    if {"r2_cv_low", "r2_cv_high"} <= set(table.columns) and value == "r2_cv":
        error = dict(
            type="data",
            symmetric=False,
            array=(table["r2_cv_high"] - table[value]).to_numpy(),
            arrayminus=(table[value] - table["r2_cv_low"]).to_numpy(),
            thickness=2,
            width=8,
            color="#222",
        )
    fig.add_trace(
        go.Bar(
            x=table[label],
            y=table[value],
            marker_color=colours,
            error_y=error,
            text=[f"{v:.3f}" for v in table[value]],
            textposition="outside",
            cliponaxis=False,
            name="cross-validated R² (95 % interval)",
        )
    )
    if "r2_in_sample" in table.columns:
        fig.add_trace(
            go.Scatter(
                x=table[label],
                y=table["r2_in_sample"],
                mode="markers",
                marker=dict(symbol="diamond-open", size=14, color="#222", line=dict(width=2)),
                name="in-sample R² (optimistic)",
            )
        )
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_layout(
        title="How much of an item's mean rating do its features explain? (ridge, strength by inner CV)",
        yaxis_title="R²",
        xaxis_title=None,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    return fig


def genre_precision_figure(frame: pd.DataFrame) -> go.Figure:
    """genre precision@N vs N per representation, with each one's chance level dotted."""
    _check(frame, {"representation", "n", "genre_precision", "chance"}, "genre_precision_figure")
    fig = go.Figure()
    for index, (representation, group) in enumerate(frame.groupby("representation", sort=False)):
        colour = PALETTE[index % len(PALETTE)]
        if {"low", "high"} <= set(group.columns):
            band = _band(group["n"].to_numpy(), group["low"].to_numpy(), group["high"].to_numpy(), colour, "")
            band.update(opacity=0.18, showlegend=False, legendgroup=str(representation))
            fig.add_trace(band)
        fig.add_trace(
            go.Scatter(
                x=group["n"],
                y=group["genre_precision"],
                legendgroup=str(representation),
                mode="lines+markers",
                name=str(representation),
                line=dict(color=colour),
                hovertemplate="N=%{x}<br>precision=%{y:.3f}<extra></extra>",
            )
        )
    chance = float(frame["chance"].iloc[0]) if len(frame) else None
    if chance is not None:
        fig.add_hline(y=chance, line=dict(color="grey", dash="dot"), annotation_text=f"chance {chance:.3f}")
    fig.update_layout(
        title="genre precision@N (band: 95 % interval over query movies)",
        xaxis_title="N neighbours",
        yaxis_title="share of neighbours sharing a genre",
        yaxis_range=[0, 1.02],
    )
    return fig
