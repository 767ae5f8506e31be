"""Data: size, sparsity, rating histogram, activity per user/item, media coverage, sample posters."""

import pandas as pd
import streamlit as st

from recsys import ui
from recsys.errors import RecsysError
from recsys.viz import data as viz
from recsys.viz import takeaways

dataset = ui.current_dataset()
ui.page_header(
    "Data",
    "What the chosen dataset contains: size, sparsity, how ratings and activity are distributed, and how many items have a poster or trailer.",
    dataset=dataset,
)


@st.cache_data(show_spinner=False)
def dataset_frames(token: str):
    summary = dataset.summary()
    coverage = viz.coverage_frame([dataset.media_coverage("poster"), dataset.media_coverage("trailer")])
    return (
        summary,
        viz.rating_histogram_frame(dataset.ratings),
        viz.activity_frame(dataset.ratings),
        coverage,
        viz.genre_counts_frame(dataset.genres),
    )


summary, histogram, activity, coverage, genre_counts = dataset_frames(ui.dataset_token(dataset))

metrics = st.columns(5)
metrics[0].metric("Ratings", f"{summary['ratings']:,}")
metrics[1].metric("Users", f"{summary['users']:,}")
metrics[2].metric("Items", f"{summary['items']:,}")
metrics[3].metric("Sparsity", f"{100 * summary['sparsity']:.2f} %")
metrics[4].metric("Items with poster", f"{summary['items_with_poster']:,}")

with ui.controls():
    ui.bind("data_log_x", "log", True)
    log_x = st.toggle("Logarithmic activity axis", key="data_log_x")
    ui.bind("data_n_posters", "posters", 10, cast=int)
    n_posters = st.slider("Sample posters", 0, 20, key="data_n_posters")

left, right = st.columns(2)
with left:
    ui.show_figure(viz.rating_histogram(histogram), "rating_histogram", key="data_hist")
with right:
    ui.show_figure(viz.coverage_bars(coverage), "media_coverage", key="data_coverage")
left, right = st.columns(2)
with left:
    ui.show_figure(viz.activity_histogram(activity, "user", log_x=log_x), "ratings_per_user", key="data_users")
with right:
    ui.show_figure(viz.activity_histogram(activity, "item", log_x=log_x), "ratings_per_item", key="data_items")
ui.show_figure(viz.genre_bars(genre_counts), "items_per_genre", key="data_genres")

st.subheader("Summary")
st.caption(takeaways.data_takeaway(summary, activity, dataset.name))
ui.show_table(coverage, "media_coverage", key="data_cov_table", hide_index=True)
ui.csv_download(pd.DataFrame([summary]), "dataset_summary", key="data_summary", label="Download summary (CSV)")

if n_posters:
    st.subheader("Sample posters")
    with_poster = dataset.items_with_poster()
    if len(with_poster) == 0:
        st.info("This dataset has no posters in the data directory (see Home → Getting data).")
    else:
        sample = with_poster.to_series().sample(min(n_posters, len(with_poster)), random_state=0).to_numpy()
        ui.poster_cards(dataset, sample, columns=10)

st.subheader("Other datasets")
listing = ui.dataset_listing(ui.data_dir_setting())
missing = listing[~listing["present"]] if not listing.empty else listing
if missing.empty:
    st.caption("Every known dataset is present in the data directory.")
else:
    st.caption(
        f"Not in `{ui.data_dir_setting()}` yet. MovieLens is for research use only (GroupLens licence); "
        "downloads are checksum-verified and resume if interrupted. Offline, download the archive elsewhere and "
        "unzip it into the data directory."
    )
    for row in missing.itertuples():
        left, right = st.columns([4, 1])
        left.markdown(f"**{row.name}** ({row.size}) — {row.description}  \n`{row.url}`")
        if not ui.presentation() and right.button("Download", key=f"data_dl_{row.name}", icon=":material/download:"):
            from recsys.data.download import download_dataset

            progress = ui.StreamlitProgress(f"Downloading {row.name}…")
            try:
                folder = download_dataset(row.name, ui.data_dir_setting(), progress=progress)
            except (RecsysError, OSError) as exc:
                progress.empty()
                ui.show_error(exc, f"{row.name} could not be downloaded")
            else:
                ui.cached_available_datasets.clear()
                ui.dataset_listing.clear()
                st.success(f"{row.name} is ready in `{folder}`; pick it in the sidebar.")

if "tmdb_id" in dataset.items.columns and not ui.presentation():
    # TMDB posters for datasets with links.csv (the same downloader as `recsys posters --source tmdb`)
    missing_ids = dataset.items.index[dataset.items["tmdb_id"].notna() & dataset.posters.isna()]
    with st.expander(f"Posters from TMDB ({len(missing_ids):,} movies with a TMDB id have no poster yet)"):
        secret = st.text_input(
            "TMDB API key or read-access token",
            type="password",
            key="data_tmdb_key",
            help="Default: "
            "$TMDB_API_KEY or $TMDB_BEARER of the server. Never shown or logged; not sent to other hosts.",
        )
        if st.button("Fetch missing posters", key="data_tmdb_fetch", disabled=not len(missing_ids)):
            from pathlib import Path

            from recsys.data.posters import download_tmdb_posters

            progress = ui.StreamlitProgress("Fetching posters from TMDB…")
            try:
                report = download_tmdb_posters(
                    dataset.items.loc[missing_ids],
                    Path(ui.data_dir_setting()) / "posters" / dataset.name,
                    api_key=secret or None,
                    progress=progress,
                )
            except (RecsysError, OSError) as exc:
                progress.empty()
                ui.show_error(exc, "TMDB posters could not be fetched")
            else:
                ui.load_dataset_cached.clear()
                counts = report["status"].value_counts()
                st.success(", ".join(f"{n:,} {status.replace('_', ' ')}" for status, n in counts.items()))
                failed = report[report["status"] == "error"]
                if len(failed):
                    ui.show_table(failed, "tmdb_failures", key="data_tmdb_failures", hide_index=True)
