"""Embedding map: a projector for item features: PCA/UMAP, genre colours, hover posters, click → neighbours."""

import numpy as np
import pandas as pd
import streamlit as st

from recsys import ui
from recsys.eval import neighbours
from recsys.ui.hover import hover_panel
from recsys.viz import embedding as viz
from recsys.viz import gallery, projection, takeaways

dataset = ui.current_dataset()
ui.page_header(
    "Embedding map",
    "Every movie placed by a 2-D projection of its features, coloured by genre, year, rating or cluster. Hover a "
    "point to see its poster, click it (or search a title) for its nearest posters in the full feature space, "
    "drag a lasso or box for a gallery of the selection and a CSV of their IDs.",
    paper="Lehmann, VT2 (PCA of sequence embeddings, trajectories per movie)",
    dataset=dataset,
)
token = ui.dataset_token(dataset)
options = ui.representation_options(dataset)
labels = list(options)
HOVER_THUMBNAILS = 2000  # posters sent to the browser for the hover panel (the most-rated items)
PAGE_SIZE = 12
NEIGHBOURS = 10


@st.cache_data(show_spinner=False, max_entries=32)
def coordinates(token: str, source: str, method: str) -> tuple[pd.DataFrame, dict]:
    """Projected coordinates + item table and the projection's info (PCA's explained variance);
    on disk by matrix content, so a rerun or a restarted server never recomputes a UMAP."""
    features = ui.load_representation(token, source, dataset)
    if method == "umap" and not projection.cached_projection_exists(features.matrix, "umap", 2):
        minutes = max(1, round(len(features) / 15000 * 2))
        with st.status(
            f"UMAP of {len(features):,} items: about {minutes} min on a laptop CPU, once (then kept on disk)…",
            expanded=False,
        ):
            coords, info = projection.project_cached(features.matrix, method, 2, return_info=True)
    else:
        coords, info = projection.project_cached(features.matrix, method, 2, return_info=True)
    table = viz.item_table(dataset, features.item_ids)
    table["x"], table["y"] = coords[:, 0], coords[:, 1]
    return table, info


@st.cache_data(show_spinner="Clustering items in the full feature space…", max_entries=16)
def clusters(token: str, source: str, k: int) -> pd.Series:
    features = ui.load_representation(token, source, dataset)
    labels_ = ui.disk_cached(
        viz.item_clusters, {"dataset": token, "source": source, "k": k}, lambda: viz.item_clusters(features.matrix, k)
    )
    names = viz.cluster_names(labels_, dataset.genres.loc[features.item_ids])
    return pd.Series([names[c] for c in labels_], index=features.item_ids, name="cluster")


@st.cache_data(show_spinner=False, max_entries=4)
def hover_thumbnails(token: str, ids: tuple) -> dict:
    paths = {i: dataset.posters.get(i) for i in ids if dataset.posters.get(i)}
    if not paths:
        return {}

    def compute():
        progress = ui.StreamlitProgress(f"Preparing {len(paths):,} poster thumbnails for the hover panel (once)…")
        try:
            return gallery.thumbnail_pack(paths, height=96, progress=progress)
        finally:
            progress.empty()

    return ui.disk_cached(gallery.thumbnail_pack, {"dataset": token, "ids": ids, "height": 96}, compute)


@st.cache_data(show_spinner=False, max_entries=8)
def sprite_thumbnails(token: str, item_ids: tuple) -> dict:
    return {i: ui.thumbnail_data_uri(dataset.posters.get(i), 48) for i in item_ids}


def on_map_select():
    """A click on one point (a selection of one) makes it the focus: its gallery and the URL's item."""
    event = st.session_state.get("emb_map")
    ids = viz.selected_item_ids(getattr(event, "selection", None) if event is not None else None)
    if len(ids) == 1:
        st.session_state["emb_find"] = ids[0]


cnn = [label for label in labels if ui.is_cnn(options[label])]
default_features = cnn[0] if cnn else labels[0]
tokens = {label: spec for label, spec in options.items()}
with ui.controls():
    c1, c2, c3, c4 = st.columns([3, 1, 2, 1])
    ui.bind("emb_features", "rep", default_features, options=labels, tokens=tokens)
    label = c1.selectbox("Item features", labels, key="emb_features")
    ui.bind("emb_method", "proj", "pca", options=["pca", "umap"])
    method = c2.radio("Projection", ["pca", "umap"], format_func=str.upper, horizontal=True, key="emb_method")
    colour_choices = viz.colour_options()
    ui.bind("emb_colour", "colour", "genre", options=colour_choices)
    colour_by = c3.selectbox("Colour by", colour_choices, key="emb_colour")
    ui.bind("emb_size", "size", 7, cast=int, url=False)
    marker_size = c4.slider("Point size", 3, 16, key="emb_size")

ui.standin_banner(dataset, label, is_cnn=ui.is_cnn(options[label]), key="emb", reset=(("emb_features", "rep"),))
source = options[label]
table, info = coordinates(token, source, method)
if colour_by == "cluster":
    table = table.assign(cluster=clusters(token, source, 12).reindex(table["item_id"]).to_numpy())

titles = table.set_index("item_id")["title"]
find_options = [None] + table.sort_values("title")["item_id"].tolist()
c5, c6 = st.columns([3, 2])
ui.bind("emb_find", "item", None, options=find_options, cast=int)
focus = c5.selectbox(
    "Find a movie (type to search by title)",
    find_options,
    key="emb_find",
    format_func=lambda i: "—" if i is None else titles.get(i, str(i)),
    placeholder="Type a title…",
    help="Highlights it on the map and shows its nearest posters; clicking a point does the same.",
)
sprites = c6.toggle("Poster sprites on the map", key="emb_sprites", help="Up to 120 thumbnails, evenly spread.")

colour, continuous = viz.colour_values(table, dataset, colour_by)
axis = viz.axis_titles(method, info.get("explained"))
fig = viz.embedding_scatter(
    table,
    colour,
    continuous,
    title=f"{label} — {method.upper()} of {len(table):,} items",
    marker_size=marker_size,
    axis_labels=axis,
    height=860 if ui.presentation() else viz.MAP_HEIGHT,
)
if focus is not None:
    viz.add_highlight(fig, table, focus)
if sprites:
    shown = table["item_id"].iloc[np.linspace(0, len(table) - 1, min(120, len(table))).astype(int)]
    drawn = viz.add_sprites(fig, table, sprite_thumbnails(token, tuple(int(i) for i in shown)))
    st.caption(f"{drawn} poster sprites drawn (an evenly spread sample).")

popular = table.sort_values("n_ratings", ascending=False)["item_id"].head(HOVER_THUMBNAILS)
ids_for_hover = tuple(sorted(int(i) for i in popular))
thumbs = hover_thumbnails(token, ids_for_hover)
map_col, panel_col = st.columns([4, 1])
with map_col:
    with st.container(key="emb_map_box"):
        event = ui.show_figure(
            fig,
            f"embedding_{method}",
            key="emb_map",
            on_select=on_map_select,
            selection_mode=("points", "box", "lasso"),
            protocol=f"{method.upper()} of {label}",
            config={"scrollZoom": True},
        )
with panel_col:
    note = (
        f"thumbnails for the {HOVER_THUMBNAILS:,} most-rated items only"
        if len(table) > HOVER_THUMBNAILS
        else "no poster for this item"
    )
    hover_panel("emb_map_box", thumbs, note=note)
    if len(table) > HOVER_THUMBNAILS:
        st.caption(f"Hover posters: the {HOVER_THUMBNAILS:,} most-rated of {len(table):,} items (kept light).")

# ---- the focus: a clicked point or a searched title ----------------------------------------------
if focus is not None:
    features = ui.load_representation(token, source, dataset)
    st.subheader(f"Nearest posters of {titles.get(focus, focus)} (full feature space, Euclidean)")
    try:
        found = neighbours.nearest_items(features, focus, n=NEIGHBOURS)
    except KeyError as exc:
        st.warning(f"{exc.args[0]}.")
    else:
        shared = neighbours.shares_genre(dataset.genres, focus, found["item_id"])
        captions = [
            ("✓ " if hit else "✗ ") + str(dataset.items.loc[item_id, "title"])
            for item_id, hit in zip(found["item_id"], shared)
        ]
        ui.poster_cards(dataset, [focus] + found["item_id"].tolist(), ["query: " + titles.get(focus, "")] + captions, 6)
        st.caption("✓ shares at least one genre with the query, ✗ shares none.")

# ---- a lasso or box selection: gallery (all of it, paged) and CSV ----------------------------------
selected = viz.selected_item_ids(event.selection if event is not None and getattr(event, "selection", None) else None)
if len(selected) > 1:
    chosen = table[table["item_id"].isin(selected)][["item_id", "title", "year", "genres", "mean_rating", "n_ratings"]]
    chosen = chosen.set_index("item_id").loc[selected].reset_index()
    pages = max(1, -(-len(selected) // PAGE_SIZE))
    head, pager = st.columns([3, 1])
    head.subheader(f"{len(selected):,} selected items")
    page = pager.number_input(f"Page (of {pages})", 1, pages, 1, key="emb_gallery_page") if pages > 1 else 1
    start = (int(page) - 1) * PAGE_SIZE
    ui.poster_cards(dataset, selected[start : start + PAGE_SIZE], columns=6)
    ui.show_table(chosen, "selected_items", key="emb_selected", hide_index=True)
elif focus is None:
    st.caption(
        "Tip: hover for posters, click a point for its neighbours, scroll to zoom, drag to pan; the lasso and box "
        "in the chart's toolbar select many for a gallery and a CSV."
    )

# ---- trailer trajectories ------------------------------------------------------------------------
trailer_sources = {k: v for k, v in options.items() if v.startswith("trailer")}
if trailer_sources:
    st.subheader("Trailer trajectories")
    st.caption("Each trailer as a path through the PCA plane of its sliding-window embeddings (start ● → end ▲).")
    t1, t2, t3 = st.columns([3, 1, 3])
    trailer_label = t1.selectbox("Trailer features", list(trailer_sources), key="emb_trailer")
    window = t2.selectbox("Window (frames)", [10, 20], key="emb_window")
    result = ui.load_extraction(token, trailer_sources[trailer_label], dataset)
    sequences = {i: s for i, s in (result.sequences or {}).get(int(window), {}).items() if len(s) >= 2}
    if not sequences:
        st.info("No trailer is long enough for windows of this size.")
    else:
        ids = list(sequences)
        default = ids[: min(6, len(ids))]
        picked = t3.multiselect(
            "Movies", ids, default=default, format_func=lambda i: dataset.items.loc[i, "title"], key="emb_traj_movies"
        )
        if picked:
            stacked = np.concatenate([sequences[i] for i in ids])
            coords = projection.project_cached(stacked, "pca", 2)
            offsets = np.concatenate([[0], np.cumsum([len(sequences[i]) for i in ids])])
            keep = [ids.index(i) for i in picked]
            frame = pd.concat(
                [
                    viz.trajectory_frame(
                        coords[offsets[k] : offsets[k + 1]],
                        np.array([0, offsets[k + 1] - offsets[k]]),
                        [ids[k]],
                        [dataset.items.loc[ids[k], "title"]],
                    )
                    for k in keep
                ]
            )
            ui.show_figure(
                viz.trajectory_figure(frame), "trailer_trajectories", key="emb_traj", protocol=f"PCA of {trailer_label}"
            )

ui.takeaway(takeaways.embedding_takeaway(label, method, info.get("explained"), len(table)))
