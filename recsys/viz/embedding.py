"""Embedding maps: a projector-style item scatter coloured by genre, year, rating or cluster; a
highlight for a searched or clicked movie; a sprite layer; trailer trajectories.

The map is 2-D with equal axes (a distance looks the same in every direction), drawn with WebGL
(``scattergl``) from :data:`WEBGL_MIN_POINTS` points on (62k items stay fluid), SVG below (crisper,
and hover works in browsers without WebGL). Every point's customdata is
``[item_id, title, year, mean rating, n ratings, genres]``: the selection maps back through
``customdata[0]`` and the hover panel (recsys.ui.hover) reads the rest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from recsys.data.dataset import Dataset
from recsys.errors import InvalidParameter
from recsys.viz import theme

CONTINUOUS_SCALE = "Viridis"  # perceptually uniform, colour-blind safe, readable on a projector
CATEGORICAL = list(theme.DISTINCT)
CUSTOM_COLUMNS = ("item_id", "title", "year", "mean_rating", "n_ratings", "genres")
HOVER_COLUMNS = ("title", "year", "mean_rating", "n_ratings", "genres")
WEBGL_MIN_POINTS = 5000
MAP_HEIGHT = 760

# What one can colour by, and the item-table column behind each choice.
COLOUR_OPTIONS = {
    "genre": "genre",
    "year": "year",
    "mean rating": "mean_rating",
    "rating count": "n_ratings",
    "cluster": "cluster",
}
CONTINUOUS_COLOURS = ("year", "mean rating", "rating count")


def main_genres(genres: pd.DataFrame) -> list[str]:
    """Each item's most specific genre: the rarest of its genres in the catalogue ("(none)" if none).

    MovieLens lists genres alphabetically, so the first genre is mostly Action or Adventure; the
    rarest one (Star Wars: War; Toy Story: Animation) says more and spreads the colours.
    """
    flags = genres.to_numpy().astype(bool)
    frequency = flags.sum(axis=0).astype(float)
    names = np.array(genres.columns)
    scores = np.where(flags, frequency[None, :], np.inf)
    rarest = scores.argmin(axis=1)
    return [names[j] if flags[i].any() else "(none)" for i, j in enumerate(rarest)]


def item_table(dataset: Dataset, item_ids=None) -> pd.DataFrame:
    """Per item: title, year, genres (text), first genre, main genre, mean rating, number of ratings."""
    items = dataset.items if item_ids is None else dataset.items.loc[np.asarray(item_ids)]
    stats = dataset.ratings.groupby("item_id")["rating"].agg(mean_rating="mean", n_ratings="size")
    genres = dataset.genres.loc[items.index]
    names = np.array(genres.columns)
    flags = genres.to_numpy().astype(bool)
    labels = [", ".join(names[row]) or "(none)" for row in flags]
    first = [names[row][0] if row.any() else "(none)" for row in flags]
    table = pd.DataFrame(
        {
            "item_id": items.index.to_numpy(),
            "title": items["title"].astype(str).to_numpy(),
            "year": pd.to_numeric(items["year"], errors="coerce").astype(float).to_numpy()
            if "year" in items
            else np.nan,
            "genres": labels,
            "first genre": first,
            "genre": main_genres(genres),
        }
    )
    table = table.join(stats, on="item_id")
    table["n_ratings"] = table["n_ratings"].fillna(0).astype(int)
    return table


def colour_options(table: pd.DataFrame | None = None, genre_names=None) -> list[str]:
    """What the map can be coloured by: genre, year, mean rating, rating count, cluster (the
    meaningful columns only; ids and URLs are not colours)."""
    return list(COLOUR_OPTIONS)


def colour_values(table: pd.DataFrame, dataset: Dataset | None, option: str) -> tuple[pd.Series, bool]:
    """(values, is_continuous) for a colour option (also "genre: X": X vs other)."""
    if option.startswith("genre: "):
        genre = option[len("genre: ") :]
        flags = dataset.genres.loc[table["item_id"].to_numpy(), genre].to_numpy().astype(bool)
        return pd.Series(np.where(flags, genre, "other"), index=table.index, name=option), False
    column = COLOUR_OPTIONS.get(option, option)
    if column not in table.columns:
        raise InvalidParameter(f"cannot colour by {option!r}; choose one of {list(COLOUR_OPTIONS)}")
    values = table[column]
    continuous = option in CONTINUOUS_COLOURS or (
        option not in COLOUR_OPTIONS and pd.api.types.is_numeric_dtype(values) and values.nunique() > 12
    )
    return values.rename(option), continuous


def item_clusters(matrix: np.ndarray, k: int = 12, seed: int = 0) -> np.ndarray:
    """k-means cluster of every item in the full feature space (mini-batch from 20k items on)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    matrix = np.asarray(matrix, dtype=np.float32)
    k = int(min(k, max(1, len(matrix) - 1)))
    if len(matrix) >= 20000:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=4)
    return model.fit_predict(matrix).astype(int)


def cluster_names(labels: np.ndarray, genres: pd.DataFrame, top: int = 2) -> dict[int, str]:
    """cluster -> 'c3 · Horror, Thriller': the genres most over-represented in it (share in the
    cluster minus share overall), so a cluster is named by what sets it apart, not by Drama."""
    flags = genres.to_numpy().astype(float)
    overall = flags.mean(axis=0)
    names = np.array(genres.columns)
    result = {}
    for cluster in np.unique(labels):
        inside = flags[labels == cluster].mean(axis=0)
        excess = inside - overall
        order = np.argsort(-excess)[:top]
        picked = [names[j] for j in order if excess[j] > 0] or [names[int(np.argmax(inside))]]
        result[int(cluster)] = f"c{int(cluster)} · {', '.join(picked)}"
    return result


def axis_titles(method: str, explained: list[float] | None) -> tuple[str, str]:
    if method == "pca" and explained:
        return tuple(f"PC{i + 1} · {100 * explained[i]:.1f} % of variance" for i in range(2))
    return ("UMAP 1", "UMAP 2") if method == "umap" else ("component 1", "component 2")


def _customdata(frame: pd.DataFrame) -> np.ndarray:
    data = frame.reindex(columns=list(CUSTOM_COLUMNS)).copy()
    data["mean_rating"] = data["mean_rating"].astype(float).round(3)
    return data.to_numpy(dtype=object)


HOVER = "<b>%{customdata[1]}</b><br>%{customdata[5]}<br>mean rating %{customdata[3]:.2f} · %{customdata[4]} ratings<extra></extra>"


def embedding_scatter(
    table: pd.DataFrame,
    colour: pd.Series,
    continuous: bool,
    dims: int = 2,
    title: str = "Item embedding",
    marker_size: int = 6,
    axis_labels: tuple[str, str] = ("component 1", "component 2"),
    colours: dict | None = None,
    webgl: bool | None = None,
    height: int = MAP_HEIGHT,
) -> go.Figure:
    """Equal-aspect 2-D scatter of projected items, one trace (and legend entry) per category or one
    colour-scaled trace. customdata = [item_id, title, year, mean rating, n ratings, genres]."""
    if dims != 2:
        raise InvalidParameter("the map is 2-D (a 3-D view was too small to read and clipped: dropped)")
    webgl = len(table) >= WEBGL_MIN_POINTS if webgl is None else webgl
    trace = go.Scattergl if webgl else go.Scatter
    fig = go.Figure()
    marker_line = dict(width=0.4 if not webgl else 0, color="rgba(255,255,255,0.6)")
    if continuous:
        values = pd.to_numeric(colour, errors="coerce")
        fig.add_trace(
            trace(
                x=table["x"],
                y=table["y"],
                mode="markers",
                name=str(colour.name),
                customdata=_customdata(table),
                hovertemplate=HOVER,
                marker=dict(
                    size=marker_size,
                    color=values,
                    colorscale=CONTINUOUS_SCALE,
                    showscale=True,
                    colorbar=dict(title=dict(text=str(colour.name)), thickness=18),
                    line=marker_line,
                ),
                showlegend=False,
            )
        )
    else:
        frame = table.assign(_colour=colour.astype(str).to_numpy())
        order = frame["_colour"].value_counts().index.tolist()
        last = [c for c in order if c in ("(none)", "other", "unknown")]
        order = [c for c in order if c not in last] + last
        palette = colours or theme.genre_colour_map(order)
        for category in order:
            part = frame[frame["_colour"] == category]
            fig.add_trace(
                trace(
                    x=part["x"],
                    y=part["y"],
                    mode="markers",
                    name=f"{category} ({len(part):,})",
                    legendgroup=str(category),
                    customdata=_customdata(part),
                    hovertemplate=HOVER,
                    marker=dict(size=marker_size, color=palette.get(category, theme.MISSING_COLOUR), line=marker_line),
                )
            )
    fig.update_layout(
        title=title,
        height=height,
        # pan, not lasso: Streamlit turns click-to-select off while a lasso/box drag mode is active,
        # and a click on a point must open its neighbours (the lasso and box are one modebar click away)
        dragmode="pan",
        legend=dict(title=dict(text=str(colour.name)), itemsizing="constant", tracegroupgap=2),
        hovermode="closest",
        xaxis=dict(title=axis_labels[0], zeroline=False),
        yaxis=dict(title=axis_labels[1], zeroline=False, scaleanchor="x", scaleratio=1),
    )
    return fig


def add_highlight(fig: go.Figure, table: pd.DataFrame, item_id: int, label: str | None = None) -> bool:
    """A large star with its title on the searched or clicked item; False when it is not on the map."""
    row = table[table["item_id"] == int(item_id)]
    if row.empty:
        return False
    row = row.iloc[0]
    text = label or str(row["title"])
    fig.add_trace(
        go.Scatter(
            x=[row["x"]],
            y=[row["y"]],
            mode="markers",
            name=f"★ {text}",
            marker=dict(symbol="star", size=26, color="#FFD400", line=dict(color="#111", width=2)),
            customdata=_customdata(row.to_frame().T),
            hovertemplate=HOVER,
            showlegend=True,
        )
    )
    fig.add_annotation(
        x=row["x"],
        y=row["y"],
        text=f"<b>{text}</b>",
        showarrow=True,
        arrowhead=2,
        ax=40,
        ay=-40,
        bgcolor="rgba(255,255,255,0.9)",
        bordercolor="#111",
        borderwidth=1,
    )
    return True


def selected_item_ids(selection) -> list[int]:
    """Item ids of the points in a plotly selection event (customdata[0] of each point), in order, once each."""
    points = (selection or {}).get("points", []) if isinstance(selection, dict) else []
    ids = []
    for point in points:
        data = point.get("customdata") if isinstance(point, dict) else None
        if data is not None and len(data):
            try:
                ids.append(int(data[0]))
            except (TypeError, ValueError):
                continue
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
