"""Plotly figures of the Audience page: faces with labels, elbow curve, cluster composition,
precision/recall/F1 by group. Builders take the tidy frames `recsys.models.groups` returns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

METRIC_LABELS = {"precision": "Precision@N", "recall": "Recall@N", "f1": "F1@N"}


def faces_figure(image: np.ndarray, faces, title: str | None = None) -> go.Figure:
    """The image with one numbered box per face and its age band, gender, emotion + confidences."""
    fig = px.imshow(image)
    colours = px.colors.qualitative.Bold
    for i, face in enumerate(faces):
        x1, y1, x2, y2 = face.box
        colour = colours[i % len(colours)]
        fig.add_shape(type="rect", x0=x1, y0=y1, x1=x2, y1=y2, line=dict(color=colour, width=3))
        fig.add_annotation(
            x=x1,
            y=y1,
            text=f"#{i + 1} {face.label()}",
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font=dict(color="white", size=12),
            bgcolor=colour,
            opacity=0.9,
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(margin=dict(l=0, r=0, t=30 if title else 0, b=0), title=title)
    return fig


def elbow_figure(elbow: pd.DataFrame, chosen_k: int) -> go.Figure:
    fig = px.line(
        elbow,
        x="k",
        y="wcss",
        markers=True,
        labels={"k": "number of clusters k", "wcss": "within-cluster sum of squares"},
        title="Elbow curve of k-means on genre vectors",
    )
    chosen = elbow[elbow["k"] == chosen_k]
    fig.add_scatter(
        x=chosen["k"],
        y=chosen["wcss"],
        mode="markers",
        marker=dict(size=14, symbol="star"),
        name=f"chosen k = {chosen_k}",
    )
    ends = elbow.iloc[[0, -1]]
    fig.add_scatter(
        x=ends["k"],
        y=ends["wcss"],
        mode="lines",
        line=dict(dash="dot", color="grey"),
        name="chord (knee = farthest point)",
    )
    return fig


def cluster_composition_figure(composition: pd.DataFrame, names: dict | None = None) -> go.Figure:
    """Heatmap: share of each cluster's movies carrying each genre; rows named by their top genres
    (`names`: cluster -> 'cluster 3 (Horror, Thriller)') with the cluster's size."""
    sizes = composition.groupby("cluster")["n_movies"].first()
    pivot = composition.pivot(index="cluster", columns="genre", values="share")
    names = names or {}
    pivot.index = [f"{names.get(int(c), f'cluster {c}')} · {sizes[c]} movies" for c in pivot.index]
    fig = px.imshow(
        pivot,
        color_continuous_scale="Blues",
        zmin=0,
        zmax=1,
        aspect="auto",
        labels=dict(color="share of movies"),
        title="Cluster composition (genres)",
    )
    fig.update_xaxes(tickangle=-45)
    return fig


def evaluation_bars(table: pd.DataFrame, facet: str = "age band") -> go.Figure:
    """Grouped bars of precision, recall and F1 per group: group recommender vs. popular-in-group."""
    part = table[table["facet"] == facet]
    long = part.melt(
        id_vars=["group", "method", "n_users"], value_vars=list(METRIC_LABELS), var_name="metric", value_name="value"
    )
    long["metric"] = long["metric"].map(METRIC_LABELS)
    methods = list(dict.fromkeys(part["method"]))  # the table's order: paper's method first
    fig = px.bar(
        long,
        x="group",
        y="value",
        color="method",
        barmode="group",
        facet_col="metric",
        hover_data=["n_users"],
        labels={"group": facet, "value": ""},
        category_orders={"method": methods, "metric": list(METRIC_LABELS.values())},
        title=f"Group recommender vs. most popular in the group, by {facet}",
    )
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    return fig


def emotion_bars(face) -> go.Figure:
    frame = pd.DataFrame({"emotion": list(face.emotion_probs), "probability": list(face.emotion_probs.values())})
    return px.bar(frame, x="emotion", y="probability", range_y=[0, 1], title="Emotion probabilities")
