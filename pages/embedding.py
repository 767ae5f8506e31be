"""Embedding map: PCA/UMAP of item features, colour by any item column, poster sprites, selection gallery."""

import numpy as np
import pandas as pd
import streamlit as st

from recsys import ui
from recsys.viz import embedding as viz
from recsys.viz import projection

dataset = ui.current_dataset()
ui.page_header(
    "Embedding map",
    "Items placed by a 2-D/3-D projection of their features, coloured by any item property; select points with "
    "the lasso or box to see their posters and export their IDs. Trailer features also show per-window trajectories.",
    paper="Lehmann, VT2 (PCA of sequence embeddings, trajectories per movie)",
    dataset=dataset,
)
token = ui.dataset_token(dataset)
options = ui.representation_options(dataset)
labels = list(options)


@st.cache_data(show_spinner="Projecting…", max_entries=32)
def coordinates(token: str, source: str, method: str, dims: int) -> pd.DataFrame:
    """Projected coordinates + item table; keyed by strings so a redraw never recomputes."""
    features = ui.load_representation(token, source, dataset)
    coords = projection.project_cached(features.matrix, method, dims)
    table = viz.item_table(dataset, features.item_ids)
    for axis, name in enumerate("xyz"[:dims]):
        table[name] = coords[:, axis]
    return table


@st.cache_data(show_spinner=False, max_entries=8)
def sprite_thumbnails(token: str, item_ids: tuple) -> dict:
    return {i: ui.thumbnail_data_uri(dataset.posters.get(i), 48) for i in item_ids}


table_for_options = viz.item_table(dataset, dataset.items.index[:1])
colour_choices = viz.colour_options(table_for_options, dataset.genre_names)
with ui.controls():
    c1, c2, c3, c4 = st.columns([3, 1, 1, 2])
    label = c1.selectbox("Item features", labels, key="emb_features")
    method = c2.radio("Projection", ["pca", "umap"], format_func=str.upper, horizontal=True, key="emb_method")
    dims = c3.radio("Dimensions", [2, 3], horizontal=True, key="emb_dims")
    colour_by = c4.selectbox("Colour by", colour_choices, index=colour_choices.index("mean_rating"), key="emb_colour")
    c5, c6 = st.columns(2)
    sprites = c5.toggle("Poster sprites on the map (2-D)", value=False, key="emb_sprites")
    marker_size = c6.slider("Point size", 2, 14, 6, key="emb_size")

table = coordinates(token, options[label], method, int(dims))
colour, continuous = viz.colour_values(table, dataset, colour_by)
fig = viz.embedding_scatter(
    table,
    colour,
    continuous,
    dims=int(dims),
    marker_size=marker_size,
    title=f"{label} — {method.upper()} ({len(table):,} items)",
)
if sprites and dims == 2:
    shown = table["item_id"].iloc[np.linspace(0, len(table) - 1, min(120, len(table))).astype(int)]
    drawn = viz.add_sprites(fig, table, sprite_thumbnails(token, tuple(int(i) for i in shown)))
    st.caption(f"{drawn} poster sprites drawn (evenly spread sample).")
event = ui.show_figure(
    fig, f"embedding_{method}_{dims}d", key="emb_map", on_select="rerun", selection_mode=("points", "box", "lasso")
)

selected = viz.selected_item_ids(event.selection if event is not None and getattr(event, "selection", None) else None)
if selected:
    st.subheader(f"{len(selected)} selected items")
    chosen = table[table["item_id"].isin(selected)][["item_id", "title", "year", "genres", "mean_rating", "n_ratings"]]
    ui.poster_cards(dataset, selected[:20], columns=10)
    ui.show_table(chosen, "selected_items", key="emb_selected", hide_index=True)
else:
    st.caption("Tip: drag a lasso or box on the map to see those posters here and export their IDs.")

trailer_sources = {k: v for k, v in options.items() if k.startswith("trailer")}
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
            ui.show_figure(viz.trajectory_figure(frame), "trailer_trajectories", key="emb_traj")
