"""Poster neighbours: a movie's nearest posters by CNN features vs raw pixels, with genre precision@N."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.eval import headline, neighbours
from recsys.viz import curves as viz_curves
from recsys.viz import takeaways

dataset = ui.current_dataset()
ui.page_header(
    "Poster neighbours",
    "The N posters closest to a chosen movie's poster in CNN feature space, next to the same search on raw pixels; "
    "under each gallery, genre precision@N over all movies measures what the eye suggests.",
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
pixel_default = "poster · raw pixels" if "poster · raw pixels" in labels else labels[-1]
left_default = (
    cnn_labels[0]
    if cnn_labels
    else ("poster · colour histogram" if "poster · colour histogram" in labels else labels[0])
)
MAX_N = 20
MAX_QUERIES = 5000  # genre precision over a stated random sample of query movies beyond this many


@st.cache_data(show_spinner=False)
def titles_with_poster(token: str) -> pd.Series:
    ids = dataset.items_with_poster()
    return dataset.items.loc[ids, "title"].astype(str).sort_values()


@st.cache_data(show_spinner=False)
def well_known_movie(token: str) -> int:
    """The default query: the most-rated movie with a poster (ML-100K: Star Wars (1977))."""
    counts = dataset.ratings["item_id"].value_counts()
    with_poster = counts[counts.index.isin(dataset.items_with_poster())]
    return int(with_poster.index[0]) if len(with_poster) else int(dataset.items_with_poster()[0])


@st.cache_data(show_spinner="Measuring genre precision over all movies…", max_entries=32)
def precision_curve(token: str, source: str, metric: str) -> pd.DataFrame:
    """precision@1..MAX_N with 95 % intervals from one neighbour search: changing N redraws only."""
    features = ui.load_representation(token, source, dataset)
    params = {"dataset": token, "source": source, "metric": metric, "max_n": MAX_N, "max_queries": MAX_QUERIES}
    return ui.disk_cached(
        headline.genre_precision_interval,
        params,
        lambda: headline.genre_precision_interval(features, dataset.genres, MAX_N, metric, max_queries=MAX_QUERIES),
    )


titles = titles_with_poster(token)
tokens = dict(options)
with ui.controls():
    c1, c2, c3 = st.columns([3, 1, 1])
    ui.bind("nb_movie", "item", well_known_movie(token), options=titles.index, cast=int)
    query = c1.selectbox(
        "Movie (type to search by title)",
        titles.index,
        format_func=lambda i: titles[i],
        key="nb_movie",
    )
    ui.bind("nb_n", "n", 5, cast=int)
    n = c2.number_input("N neighbours", 1, MAX_N, key="nb_n")
    ui.bind("nb_metric", "metric", "euclidean", options=neighbours.METRICS)
    metric = c3.radio("Distance", neighbours.METRICS, horizontal=True, key="nb_metric")
    c4, c5 = st.columns(2)
    ui.bind("nb_left", "left", left_default, options=labels, tokens=tokens)
    left_label = c4.selectbox("Left: features", labels, key="nb_left")
    ui.bind("nb_right", "right", pixel_default, options=labels, tokens=tokens)
    right_label = c5.selectbox("Right: compare with", labels, key="nb_right")

ui.standin_banner(dataset, left_label, is_cnn=ui.is_cnn(options[left_label]), key="nb", reset=(("nb_left", "left"),))
st.subheader(f"Query: {dataset.items.loc[query, 'title']}")
ui.poster_cards(dataset, [query], captions=[dataset.items.loc[query, "title"]], columns=6, width=150)
st.caption(
    "Under each gallery: **✓** the neighbour shares at least one genre with the query, **✗** it shares none; "
    "d = the distance in that feature space (smaller = closer)."
)

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
            shared = neighbours.shares_genre(dataset.genres, query, found["item_id"])
            captions = [
                f"{'✓' if hit else '✗'} {dataset.items.loc[item_id, 'title']} (d={distance:.3g})"
                for item_id, distance, hit in zip(found["item_id"], found["distance"], shared)
            ]
            ui.poster_cards(dataset, found["item_id"].tolist(), captions=captions, columns=min(int(n), 5))
        curve = precision_curve(token, source, metric).assign(representation=label)
        result = curve[curve["n"] == min(int(n), int(curve["n"].max()))].iloc[0].to_dict()
        sampled = bool(result["sampled"])
        scope = (
            f"a random sample of {result['queries']:,} of {result['candidates']:,} movies"
            if sampled
            else f"all {result['queries']:,} movies"
        )
        st.metric(
            f"genre precision@{result['n']} ({scope})",
            f"{result['genre_precision']:.3f}",
            delta=f"{result['genre_precision'] - result['chance']:+.3f} vs chance {result['chance']:.3f}",
            help="Share of each movie's N nearest posters that share at least one genre with it, averaged over "
            "query movies; chance = what random neighbours would score.",
        )
        st.caption(f"95 % interval [{result['low']:.3f}, {result['high']:.3f}], n = {result['queries']:,} queries.")
        summary_rows.append(result)
        curves_shown.append(curve)

if summary_rows:
    if any(row["sampled"] for row in summary_rows):
        st.info(
            f"Genre precision is measured on a stated sample: {MAX_QUERIES:,} random query movies (seed 0); "
            "every movie is still a candidate neighbour. The full measure: "
            f"`recsys evaluate genre-precision --dataset {dataset.name} --features {options[left_label]}`.",
            icon=":material/info:",
        )
    table = pd.DataFrame(summary_rows)[
        ["representation", "n", "metric", "genre_precision", "low", "high", "chance", "queries", "sampled"]
    ]
    ui.show_table(table, "genre_precision", key="nb_table", hide_index=True)
    both = pd.concat(curves_shown, ignore_index=True)
    ui.show_figure(
        viz_curves.genre_precision_figure(both),
        f"genre_precision_{metric}",
        key="nb_curve",
        protocol=f"{metric} distance, all movies as queries" if not summary_rows[0]["sampled"] else "sampled queries",
    )
    ui.takeaway(takeaways.neighbours_takeaway(summary_rows, dataset.name))
