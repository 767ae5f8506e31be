"""Figures and tidy frames describing a dataset: ratings, activity per user/item, media coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

RATING_COLOUR = "#4C78A8"


def rating_histogram_frame(ratings: pd.DataFrame) -> pd.DataFrame:
    """rating, count, share: one row per distinct rating value."""
    counts = ratings["rating"].value_counts().sort_index()
    return pd.DataFrame(
        {"rating": counts.index.astype(float), "count": counts.to_numpy(), "share": (counts / counts.sum()).to_numpy()}
    )


def rating_histogram(frame: pd.DataFrame, title: str = "Rating distribution") -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=frame["rating"],
            y=frame["count"],
            marker_color=RATING_COLOUR,
            customdata=frame["share"] * 100,
            hovertemplate="rating %{x}<br>%{y:,} ratings (%{customdata:.1f} %)<extra></extra>",
            name="ratings",
        )
    )
    fig.update_layout(title=title, xaxis_title="rating", yaxis_title="number of ratings", bargap=0.15)
    return fig


def activity_frame(ratings: pd.DataFrame) -> pd.DataFrame:
    """Long frame: entity ("user"/"item"), id, n_ratings — for the long-tail plots."""
    users = ratings.groupby("user_id").size().rename("n_ratings").reset_index().rename(columns={"user_id": "id"})
    items = ratings.groupby("item_id").size().rename("n_ratings").reset_index().rename(columns={"item_id": "id"})
    users.insert(0, "entity", "user")
    items.insert(0, "entity", "item")
    return pd.concat([users, items], ignore_index=True)


def activity_histogram(frame: pd.DataFrame, entity: str, log_x: bool = True) -> go.Figure:
    """Distribution of ratings per user (or per item) on log-spaced bins: the long tail."""
    counts = frame.loc[frame["entity"] == entity, "n_ratings"].to_numpy()
    if len(counts) == 0:
        return go.Figure()
    if log_x:
        edges = np.unique(np.round(np.logspace(0, np.log10(counts.max() + 1), 30)).astype(int))
    else:
        edges = np.linspace(counts.min(), counts.max() + 1, 31)
    hist, edges = np.histogram(counts, bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(
        go.Bar(
            x=centres,
            y=hist,
            width=np.diff(edges),
            marker_color="#72B7B2" if entity == "item" else "#F58518",
            customdata=np.stack([edges[:-1], edges[1:] - 1], axis=1),
            hovertemplate="%{customdata[0]:.0f}–%{customdata[1]:.0f} ratings: %{y} " + entity + "s<extra></extra>",
            name=entity,
        )
    )
    fig.update_layout(
        title=f"Ratings per {entity} (median {np.median(counts):.0f})",
        xaxis_title=f"ratings per {entity}",
        yaxis_title=f"number of {entity}s",
        xaxis_type="log" if log_x else "linear",
        bargap=0,
    )
    return fig


def coverage_frame(coverages: list[dict]) -> pd.DataFrame:
    """Tidy table from Dataset.media_coverage() dicts."""
    rows = []
    for c in coverages:
        rows.append(
            {
                "media": c["kind"],
                "items covered": c["items"],
                "items total": c["items_total"],
                "items %": round(100 * c["items_share"], 1),
                "ratings covered": c["ratings"],
                "ratings total": c["ratings_total"],
                "ratings %": round(100 * c["ratings_share"], 1),
            }
        )
    return pd.DataFrame(rows)


def coverage_bars(frame: pd.DataFrame) -> go.Figure:
    long = frame.melt(id_vars="media", value_vars=["items %", "ratings %"], var_name="share of", value_name="percent")
    fig = px.bar(long, x="media", y="percent", color="share of", barmode="group", range_y=[0, 112], text="percent")
    fig.update_traces(texttemplate="%{text:.1f} %", textposition="outside", cliponaxis=False)
    fig.update_layout(title="Media coverage", yaxis_title="% covered")
    return fig


def genre_counts_frame(genres: pd.DataFrame) -> pd.DataFrame:
    counts = genres.sum(axis=0).sort_values(ascending=False)
    return pd.DataFrame({"genre": counts.index, "items": counts.to_numpy().astype(int)})


def genre_bars(frame: pd.DataFrame) -> go.Figure:
    fig = px.bar(frame, x="genre", y="items", color_discrete_sequence=[RATING_COLOUR])
    fig.update_layout(title="Items per genre (multi-label)", xaxis_title=None)
    return fig
