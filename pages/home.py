"""Home: what the dashboard is for, which paper each page reproduces, how to get data."""

import streamlit as st

from recsys import config, ui
from recsys.errors import RecsysError

st.title("Do CNN features of posters and trailers improve recommendations?")
st.markdown(
    "A research dashboard for **multimodal movie recommendation** on MovieLens: it extracts "
    "CNN features from posters and trailers, looks at what they capture, and measures whether "
    "they make rating predictions and top-N lists better than ratings alone. Every page runs the "
    "same functions as the headless CLI (`python -m recsys …`), so each figure can be reproduced."
)

dataset_name = ui.current_dataset_name()
if dataset_name == ui.DEMO_DATASET:
    ui.synthetic_badge()
    st.info(
        "You are looking at the **synthetic demo dataset**: a few hundred procedurally drawn movies "
        "whose ratings partly depend on their looks. It needs no download, so every page works "
        "offline; switch to a MovieLens dataset in the sidebar once you have one.",
        icon=":material/science:",
    )

st.header("Start here")
dataset = ui.current_dataset()
options = ui.representation_options(dataset, media=("posters",), baselines=False, genres=False)
has_cnn = any(ui.is_cnn(spec) for spec in options.values())
n_posters = len(dataset.items_with_poster())
STEPS = (
    (
        "pages/extract.py",
        "Extract features",
        ":material/memory:",
        "EfficientNet-Lite0 over every poster (offline weights; "
        f"{ui.quick_extraction_estimate(n_posters)} on a laptop CPU, once)" + (" — **done**" if has_cnn else ""),
    ),
    (
        "pages/neighbours.py",
        "Poster neighbours",
        ":material/image_search:",
        "do CNN features find movies of the same genre? (Star Wars and its nearest posters)",
    ),
    (
        "pages/rating.py",
        "Rating prediction",
        ":material/show_chart:",
        "do posters predict ratings better than genres or ratings alone? (RMSE vs K, 95 % intervals)",
    ),
    ("pages/fusion.py", "Fusion", ":material/merge:", "does blending content into CF help, also for cold-start items?"),
    ("pages/recommend.py", "Recommend", ":material/recommend:", "top-5 lists of CF, posters and a mix for one user"),
)
for number, (path, title, icon, what) in enumerate(STEPS, start=1):
    left, right = st.columns([1, 3], vertical_alignment="center")
    with left:
        st.page_link(path, label=f"{number} · {title}", icon=icon, query_params={"dataset": dataset.name})
    right.markdown(what)
if not has_cnn and n_posters and not ui.presentation():
    if st.button(
        f"Do step 1 now: extract lite0 posters ({ui.quick_extraction_estimate(n_posters)} on a laptop CPU)",
        key="home_extract",
        icon=":material/play_arrow:",
        type="primary",
    ):
        progress = ui.StreamlitProgress(f"Extracting {n_posters:,} posters with EfficientNet-Lite0…")
        try:
            result = ui.extract_quick_posters(dataset, progress)
        except RecsysError as exc:
            progress.empty()
            ui.show_error(exc, "Extraction stopped")
        else:
            progress.empty()
            ui.cached_feature_entries.clear()
            st.success(f"{len(result.features):,} posters extracted: go on with step 2.")

st.header("Pages")
st.table(ui.pages_table())

st.header("Getting data")
st.markdown(
    f"""
The data directory is `{ui.data_dir_setting()}` (set `${config.DATA_DIR_ENV}` or change it in the sidebar).
Datasets found there appear in the sidebar's selector; the synthetic **demo** is always available.

* **MovieLens** (research use only, from GroupLens): `python -m recsys download ml-100k` fetches and
  verifies the archive into the data directory (also `ml-1m`, `ml-latest-small`, `ml-20m`, `ml-25m`).
  Offline, download `https://files.grouplens.org/datasets/movielens/ml-100k.zip` elsewhere and unpack it
  so that `ml-100k/u.data` sits in the data directory.
* **Posters**: a folder `posters-ml1m/` of `{{movieId}}.jpg` files beside the datasets (ML-100K items are
  matched to those IDs by title and year), or a TMDB download with an API key in an environment variable.
* **Trailers**: video files named by movieId, or the ML-20M YouTube list (`ml-youtube.csv`).
* Check what was found with `python -m recsys info --dataset ml-100k --json`.
"""
)
