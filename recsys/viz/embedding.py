"""Embedding maps: item scatter (2-D/3-D) coloured by any item column, sprite layer, trailer trajectories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from recsys.data.dataset import Dataset

CONTINUOUS_SCALE = "Viridis"
CATEGORICAL = px.colors.qualitative.Alphabet
HOVER_COLUMNS = ("title", "year", "mean_rating", "n_ratings", "genres")


def item_table(dataset: Dataset, item_ids=None) -> pd.DataFrame:
    """Per item: title, year, genres (text), first genre, mean rating, number of ratings."""
    items = dataset.items if item_ids is None else dataset.items.loc[np.asarray(item_ids)]
    stats = dataset.ratings.groupby("item_id")["rating"].agg(mean_rating="mean", n_ratings="size")
    genres = dataset.genres.loc[items.index]
    names = np.array(genres.columns)
    labels = [", ".join(names[row.astype(bool)]) or "(none)" for row in genres.to_numpy()]
    first = [names[row.astype(bool)][0] if row.any() else "(none)" for row in genres.to_numpy()]
    table = pd.DataFrame(
        {
            "item_id": items.index.to_numpy(),
            "title": items["title"].astype(str).to_numpy(),
            "year": pd.to_numeric(items["year"], errors="coerce").astype(float).to_numpy()
            if "year" in items
            else np.nan,
            "genres": labels,
            "first genre": first,
        }
    )
    table = table.join(stats, on="item_id")
    table["n_ratings"] = table["n_ratings"].fillna(0).astype(int)
    for column in items.columns:
        if column not in ("title", "year") and column not in table.columns:
            table[column] = items[column].to_numpy()
    return table


def colour_options(table: pd.DataFrame, genre_names: list[str]) -> list[str]:
    """Columns one can colour by: first genre, "genre: X" flags, and every other item column."""
    skip = {"item_id", "title", "x", "y", "z", "genres"}
    options = ["first genre"] + [c for c in table.columns if c not in skip and c != "first genre"]
    options += [f"genre: {g}" for g in genre_names]
    return options


def colour_values(table: pd.DataFrame, dataset: Dataset, option: str) -> tuple[pd.Series, bool]:
    """(values, is_continuous) for a colour option."""
    if option.startswith("genre: "):
        genre = option[len("genre: ") :]
        flags = dataset.genres.loc[table["item_id"].to_numpy(), genre].to_numpy().astype(bool)
        return pd.Series(np.where(flags, genre, "other"), index=table.index, name=option), False
    values = table[option]
    continuous = pd.api.types.is_numeric_dtype(values) and values.nunique() > 12
    return values.rename(option), continuous


def embedding_scatter(
    table: pd.DataFrame,
    colour: pd.Series,
    continuous: bool,
    dims: int = 2,
    title: str = "Item embedding",
    marker_size: int = 6,
) -> go.Figure:
    """Scatter of projected items. customdata[0] is the item id (selection maps back through it)."""
    frame = table.copy()
    frame["colour"] = colour.to_numpy()
    hover = [c for c in HOVER_COLUMNS if c in frame.columns]
    common = dict(
        custom_data=["item_id"] + hover,
        color="colour",
        labels={"colour": colour.name, "x": "component 1", "y": "component 2", "z": "component 3"},
        title=title,
    )
    if continuous:
        common["color_continuous_scale"] = CONTINUOUS_SCALE
    else:
        common["color_discrete_sequence"] = CATEGORICAL
        order = frame["colour"].value_counts().index.tolist()
        common["category_orders"] = {"colour": order}
    if dims == 3:
        fig = px.scatter_3d(frame, x="x", y="y", z="z", **common)
        fig.update_traces(marker=dict(size=max(2, marker_size - 3)))
    else:
        fig = px.scatter(frame, x="x", y="y", render_mode="webgl" if len(frame) > 3000 else "auto", **common)
        fig.update_traces(marker=dict(size=marker_size, line=dict(width=0)))
    lines = ["<b>%{customdata[1]}</b>"] + [
        f"{name}: %{{customdata[{i + 2}]}}" for i, name in enumerate(hover[1:], start=0)
    ]
    fig.update_traces(hovertemplate="<br>".join(lines) + "<br>item %{customdata[0]}<extra></extra>")
    fig.update_layout(legend_title=colour.name, dragmode="lasso" if dims == 2 else "orbit")
    if continuous:
        fig.update_layout(coloraxis_colorbar=dict(title=colour.name))
    return fig


def selected_item_ids(selection) -> list[int]:
    """Item ids of the points in a plotly selection event (customdata[0] of each point), in order, once each."""
    points = (selection or {}).get("points", []) if isinstance(selection, dict) else []
    ids = []
    for point in points:
        data = point.get("customdata") if isinstance(point, dict) else None
        if data is not None and len(data):
            ids.append(int(data[0]))
    return list(dict.fromkeys(ids))


def add_sprites(
    fig: go.Figure, table: pd.DataFrame, thumbnails: dict, max_sprites: int = 120, size_share: float = 0.045
) -> int:
    """Poster thumbnails drawn at their points (2-D only) via layout.images; returns how many.

    Plotly hover labels cannot show images, so this layer (plus the selection gallery) is how
    posters appear on the map. Sprites are spread evenly over the map, at most `max_sprites`.
    """
    rows = table[table["item_id"].isin([k for k, v in thumbnails.items() if v])]
    if rows.empty:
        return 0
    if len(rows) > max_sprites:
        rows = rows.iloc[np.linspace(0, len(rows) - 1, max_sprites).round().astype(int)]
    span_x = float(table["x"].max() - table["x"].min()) or 1.0
    span_y = float(table["y"].max() - table["y"].min()) or 1.0
    images = []
    for row in rows.itertuples():
        images.append(
            dict(
                source=thumbnails[row.item_id],
                xref="x",
                yref="y",
                x=row.x,
                y=row.y,
                sizex=span_x * size_share,
                sizey=span_y * size_share * 1.5,
                xanchor="center",
                yanchor="middle",
                layer="above",
                sizing="contain",
                opacity=0.95,
            )
        )
    fig.update_layout(images=images)
    return len(images)


def trajectory_frame(window_coords: np.ndarray, offsets: np.ndarray, item_ids, titles) -> pd.DataFrame:
    """Tidy per-window coordinates: item_id, title, window, x, y from per-movie row ranges."""
    rows = []
    for position, item_id in enumerate(item_ids):
        start, stop = int(offsets[position]), int(offsets[position + 1])
        for window, index in enumerate(range(start, stop)):
            rows.append(
                (int(item_id), titles[position], window, float(window_coords[index, 0]), float(window_coords[index, 1]))
            )
    return pd.DataFrame(rows, columns=["item_id", "title", "window", "x", "y"])


def trajectory_figure(
    frame: pd.DataFrame, title: str = "Trailer trajectories (PCA of per-window embeddings)"
) -> go.Figure:
    """One line per movie through its windows in trailer order; the start is a circle, the end a triangle."""
    fig = go.Figure()
    for index, (_item_id, group) in enumerate(frame.groupby("item_id", sort=False)):
        colour = CATEGORICAL[index % len(CATEGORICAL)]
        name = str(group["title"].iloc[0])
        group = group.sort_values("window")
        fig.add_trace(
            go.Scatter(
                x=group["x"],
                y=group["y"],
                mode="lines+markers",
                name=name,
                legendgroup=name,
                line=dict(color=colour, width=1.5),
                marker=dict(size=5, color=colour),
                customdata=group["window"],
                hovertemplate=f"{name}<br>window %{{customdata}}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=group["x"].iloc[[-1]],
                y=group["y"].iloc[[-1]],
                mode="markers",
                legendgroup=name,
                showlegend=False,
                marker=dict(symbol="triangle-up", size=11, color=colour),
                hoverinfo="skip",
            )
        )
    fig.update_layout(title=title, xaxis_title="component 1", yaxis_title="component 2", legend_title="movie")
    return fig
