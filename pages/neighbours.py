"""Poster neighbours: a movie's nearest posters by CNN features vs raw pixels, with genre precision@N."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.eval import neighbours
from recsys.viz import curves as viz_curves

dataset = ui.current_dataset()
ui.page_header(
    "Poster neighbours",
    "The N posters closest to a chosen movie's poster in CNN feature space, next to the same search on raw pixels; "
    "under each gallery, genre precision@N averaged over all movies measures what the eye suggests.",
    paper="blog post 'poster recommender with a pretrained ConvNet' (5 nearest posters, Euclidean, vs raw pixels)",
    dataset=dataset,
)
token = ui.dataset_token(dataset)
options = ui.representation_options(dataset, media=("posters",))
if len(dataset.items_with_poster()) == 0:
    st.info("This dataset has no posters. Put a posters folder in the data directory (Home → Getting data).")
    st.stop()
labels = list(options)
cnn_labels = [label for label in labels if ui.is_cnn(options[label])]
if not cnn_labels:
    st.info(
        "No CNN poster features are cached for this dataset yet: the left gallery uses a pixel baseline. "
        "Run **Extract features** (EfficientNet-Lite0 works offline) to compare a real CNN.",
        icon=":material/memory:",
    )
pixel_default = "poster · raw pixels" if "poster · raw pixels" in labels else labels[-1]
left_default = (
    cnn_labels[0]
    if cnn_labels
    else ("poster · colour histogram" if "poster · colour histogram" in labels else labels[0])
)


@st.cache_data(show_spinner=False)
def titles_with_poster(token: str) -> pd.Series:
    ids = dataset.items_with_poster()
    return dataset.items.loc[ids, "title"].astype(str).sort_values()


MAX_N = 20


@st.cache_data(show_spinner="Measuring genre precision over all movies…", max_entries=32)
def precision_curve(token: str, source: str, metric: str) -> pd.DataFrame:
    """precision@1..MAX_N from one neighbour search: changing N redraws without searching again."""
    features = ui.load_representation(token, source, dataset)
    return ui.disk_cached(
        neighbours.genre_precision_curve,
        {"dataset": token, "source": source, "metric": metric, "max_n": MAX_N},
        lambda: neighbours.genre_precision_curve(features, dataset.genres, MAX_N, metric),
    )


titles = titles_with_poster(token)
with ui.controls():
    c1, c2, c3 = st.columns([3, 1, 1])
    query = c1.selectbox(
        "Movie (type to search by title)",
        titles.index,
        format_func=lambda i: titles[i],
        key="nb_movie",
    )
    n = c2.number_input("N neighbours", 1, MAX_N, 5, key="nb_n")
    metric = c3.radio("Distance", neighbours.METRICS, horizontal=True, key="nb_metric")
    c4, c5 = st.columns(2)
    left_label = c4.selectbox("Left: features", labels, index=labels.index(left_default), key="nb_left")
    right_label = c5.selectbox("Right: compare with", labels, index=labels.index(pixel_default), key="nb_right")

st.subheader(f"Query: {dataset.items.loc[query, 'title']}")
ui.poster_cards(dataset, [query], captions=[dataset.items.loc[query, "title"]], columns=6, width=150)

summary_rows, curves_shown = [], []
for column, label in zip(st.columns(2), (left_label, right_label)):
    source = options[label]
    with column:
        st.markdown(f"#### {label}")
        features = ui.load_representation(token, source, dataset)
        try:
            found = neighbours.nearest_items(features, query, n=int(n), metric=metric)
        except KeyError as exc:
            st.warning(f"{exc.args[0]}; pick another movie for this gallery.")
        else:
            genre_names = dataset.genres.columns
            query_genres = set(genre_names[dataset.genres.loc[query].to_numpy().astype(bool)])
            captions = []
            for item_id, distance in zip(found["item_id"], found["distance"]):
                shared = query_genres & set(genre_names[dataset.genres.loc[item_id].to_numpy().astype(bool)])
                mark = "✓" if shared else "✗"
                captions.append(f"{mark} {dataset.items.loc[item_id, 'title']} (d={distance:.3g})")
            ui.poster_cards(dataset, found["item_id"].tolist(), captions=captions, columns=min(int(n), 5))
        curve = precision_curve(token, source, metric).assign(representation=label)
        result = curve[curve["n"] == int(n)].iloc[0].to_dict()
        st.metric(
            f"genre precision@{result['n']} (all {result['queries']:,} movies)",
            f"{result['genre_precision']:.3f}",
            delta=f"{result['genre_precision'] - result['chance']:+.3f} vs chance {result['chance']:.3f}",
            help="Share of each movie's N nearest posters that share at least one genre with it, averaged over all "
            "movies with features; chance = what random neighbours would score.",
        )
        summary_rows.append(result)
        curves_shown.append(curve)

if summary_rows:
    ui.show_table(pd.DataFrame(summary_rows), "genre_precision", key="nb_table", hide_index=True)
    both = pd.concat(curves_shown, ignore_index=True)
    ui.show_figure(viz_curves.genre_precision_figure(both), f"genre_precision_{metric}", key="nb_curve")
