"""The dashboard's logic outside Streamlit: neighbours + genre precision, projections, figure builders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.eval import neighbours
from recsys.features.item_features import ItemFeatures
from recsys.viz import curves, embedding, gallery, projection
from recsys.viz import data as data_viz


# ---- neighbours ---------------------------------------------------------------------------------
@pytest.fixture
def clustered():
    """Three genres; items of a genre sit in a tight cluster far from the others."""
    rng = np.random.default_rng(0)
    ids = np.arange(100, 130)
    genre_of = np.repeat([0, 1, 2], 10)
    centres = np.array([[0, 0, 0], [50, 0, 0], [0, 50, 0]], dtype=float)
    matrix = centres[genre_of] + rng.normal(0, 0.5, (30, 3))
    genres = pd.DataFrame(
        np.eye(3, dtype=np.uint8)[genre_of], index=pd.Index(ids, name="item_id"), columns=["Drama", "Comedy", "Horror"]
    )
    return ItemFeatures(ids, matrix, "clustered"), genres


def test_nearest_items_excludes_the_query_and_sorts_by_distance(clustered):
    features, _ = clustered
    found = neighbours.nearest_items(features, 100, n=4)
    assert 100 not in found["item_id"].tolist()
    assert found["distance"].is_monotonic_increasing and list(found["rank"]) == [1, 2, 3, 4]
    brute = np.linalg.norm(features.matrix - features.matrix[0], axis=1)
    brute[0] = np.inf
    assert found["item_id"].tolist() == features.item_ids[np.argsort(brute)[:4]].tolist()
    with pytest.raises(KeyError, match="no features"):
        neighbours.nearest_items(features, 999)


def test_neighbour_indices_match_brute_force_in_chunks(clustered):
    features, _ = clustered
    for metric in neighbours.METRICS:
        chunked = neighbours.neighbour_indices(features.matrix, 5, metric, chunk=7)
        X = features.matrix.astype(np.float64)
        if metric == "cosine":
            X = X / np.linalg.norm(X, axis=1, keepdims=True)
            distances = 1 - X @ X.T
        else:
            distances = np.linalg.norm(X[:, None] - X[None], axis=2)
        np.fill_diagonal(distances, np.inf)
        picked = np.take_along_axis(distances, chunked, axis=1)
        # the 5 smallest distances, nearest first (float32 vs float64 may swap exact ties only)
        assert np.allclose(picked, np.sort(distances, axis=1)[:, :5], atol=1e-4)
        assert (chunked != np.arange(30)[:, None]).all()
    with pytest.raises(ValueError, match="unknown distance"):
        neighbours.neighbour_indices(features.matrix, 3, "manhattan")


def test_genre_precision_is_one_for_genre_clusters_and_near_chance_for_noise(clustered):
    features, genres = clustered
    result = neighbours.genre_precision_at_n(features, genres, n=5)
    assert result["genre_precision"] == 1.0 and result["queries"] == 30
    assert result["chance"] == pytest.approx(9 / 29)  # 9 of the 29 other items share the genre
    noise = ItemFeatures(features.item_ids, np.random.default_rng(1).normal(size=(30, 3)), "noise")
    noisy = neighbours.genre_precision_at_n(noise, genres, n=5)
    assert noisy["genre_precision"] < 0.6 and abs(noisy["genre_precision"] - noisy["chance"]) < 0.2


def test_genre_precision_curve_equals_the_single_n_numbers(clustered):
    features, genres = clustered
    noise = ItemFeatures(features.item_ids, np.random.default_rng(2).normal(size=(30, 4)), "noise")
    curve = neighbours.genre_precision_curve(noise, genres, max_n=6, metric="cosine").set_index("n")
    for n in (1, 3, 6):
        single = neighbours.genre_precision_at_n(noise, genres, n=n, metric="cosine")
        assert curve.loc[n, "genre_precision"] == pytest.approx(single["genre_precision"])
        assert curve.loc[n, "chance"] == pytest.approx(single["chance"])


def test_genre_precision_skips_items_without_genre_or_features(clustered):
    features, genres = clustered
    genres = genres.copy()
    genres.iloc[:3] = 0  # three items without any genre take no part
    partial = features.subset(features.item_ids[:25])
    result = neighbours.genre_precision_at_n(partial, genres, n=3)
    assert result["queries"] == 22 and len(result["per_item"]) == 22
    with pytest.raises(ValueError, match="fewer than 2"):
        neighbours.genre_precision_at_n(features.subset(features.item_ids[:1]), genres, n=3)


# ---- projections --------------------------------------------------------------------------------
def test_projection_is_cached_on_disk_by_content(tmp_path):
    matrix = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    first = projection.project_cached(matrix, "pca", 2, root=tmp_path)
    files = list(tmp_path.glob("*.npy"))
    assert first.shape == (40, 2) and len(files) == 1
    np.save(files[0], first + 1000)  # a cache hit must return the stored coordinates
    assert (projection.project_cached(matrix, "pca", 2, root=tmp_path) == first + 1000).all()
    other = projection.project_cached(matrix * 2, "pca", 3, root=tmp_path)
    assert other.shape == (40, 3) and len(list(tmp_path.glob("*.npy"))) == 2
    with pytest.raises(ValueError, match="unknown projection"):
        projection.project(matrix, "tsne")
    with pytest.raises(ValueError, match="at least"):
        projection.project(matrix[:2], "pca", 2)


def test_pca_projection_keeps_the_main_direction():
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    matrix = np.stack([t * 10, t * 10, rng.normal(size=200) * 0.1], axis=1)
    coords = projection.project(matrix, "pca", 2)
    assert abs(np.corrcoef(coords[:, 0], t)[0, 1]) > 0.99


# ---- curves -------------------------------------------------------------------------------------
@pytest.fixture
def k_curves():
    rows = []
    for fold in range(3):
        for k in (10, 20, 30):
            rows.append(
                {"representation": "ratings", "fold": fold, "k": k, "rmse": 1.0 - 0.01 * k + 0.001 * fold, "mae": 0.8}
            )
            rows.append(
                {"representation": "poster", "fold": fold, "k": k, "rmse": 0.9 + abs(k - 20) * 0.01, "mae": 0.7}
            )
    return pd.DataFrame(rows)


def test_best_k_table_and_curve_figure(k_curves):
    table = curves.best_k_table(k_curves).set_index("representation")
    assert table.loc["ratings", "best K"] == 30 and table.loc["ratings", "best RMSE"] == pytest.approx(0.701)
    assert table.loc["poster", "best K"] == 20 and table.loc["poster", "folds"] == 3
    figure = curves.error_vs_k(k_curves, "rmse", k_range=(10, 20))
    lines = [t for t in figure.data if t.mode == "lines+markers"]
    stars = [t for t in figure.data if t.mode == "markers"]
    assert {t.name for t in lines} == {"ratings", "poster"} and all(list(t.x) == [10, 20] for t in lines)
    assert sorted(float(s.x[0]) for s in stars) == [20, 20]  # best within the cropped range
    with pytest.raises(ValueError, match="lacks columns"):
        curves.error_vs_k(k_curves.drop(columns="k"))


def test_fusion_bands_and_summary_follow_the_folds():
    rng = np.random.default_rng(0)
    rows = []
    for fold in range(10):
        for weight in np.linspace(0, 1, 11):
            rmse = 1.0 + (weight - 0.7) ** 2 + rng.normal(0, 0.01)
            rows.append({"fold": fold, "weight": round(weight, 2), "subset": "all", "rmse": rmse, "mae": rmse * 0.8})
    curve = pd.DataFrame(rows)
    bands = curves.fusion_bands_frame(curve, "rmse", "all").set_index("weight")
    at_half = curve[curve["weight"] == 0.5]["rmse"]
    assert bands.loc[0.5, "p10"] == pytest.approx(np.percentile(at_half, 10))
    assert bands.loc[0.5, "p100"] == pytest.approx(at_half.max()) and bands.loc[0.5, "median"] == pytest.approx(
        at_half.median()
    )
    summary = curves.fusion_summary_table(curve).set_index("metric")
    assert summary.loc["RMSE", "best w"] == pytest.approx(0.7)
    means = curve.groupby("weight")["rmse"].mean()
    assert summary.loc["RMSE", "gain over CF"] == pytest.approx(means[1.0] - means.min())
    figure = curves.fusion_curve_figure(curve, "rmse", "all")
    assert [t.name for t in figure.data][:4] == ["0–100th percentile", "10–90th percentile", "mean", "median"]


# ---- dataset figures, items, thumbnails -----------------------------------------------------------
def test_rating_histogram_and_activity_count_every_rating():
    ratings = pd.DataFrame(
        {"user_id": [1, 1, 2, 3, 3, 3], "item_id": [1, 2, 1, 1, 2, 3], "rating": [5, 4, 4, 1, 2, 4.0]}
    )
    histogram = data_viz.rating_histogram_frame(ratings)
    assert histogram.set_index("rating")["count"].to_dict() == {1.0: 1, 2.0: 1, 4.0: 3, 5.0: 1}
    activity = data_viz.activity_frame(ratings)
    assert activity[activity["entity"] == "user"].set_index("id")["n_ratings"].to_dict() == {1: 2, 2: 1, 3: 3}
    figure = data_viz.activity_histogram(activity, "item")
    assert sum(figure.data[0].y) == 3  # three items


def test_item_table_and_colour_options():
    from recsys.data.dataset import Dataset

    items = pd.DataFrame(
        {"title": ["A", "B", "C"], "year": [1990, 1995, None]}, index=pd.Index([1, 2, 3], name="item_id")
    )
    genres = pd.DataFrame({"Drama": [1, 0, 0], "Comedy": [1, 1, 0]}, index=items.index, dtype=np.uint8)
    ratings = pd.DataFrame(
        {"user_id": [1, 2, 1], "item_id": [1, 1, 2], "rating": [4.0, 2.0, 5.0], "timestamp": [0, 0, 0]}
    )
    dataset = Dataset("tiny", ratings, items, genres)
    table = embedding.item_table(dataset)
    assert (
        table.set_index("item_id").loc[1, "mean_rating"] == 3.0 and table.set_index("item_id").loc[3, "n_ratings"] == 0
    )
    assert table["genres"].tolist() == ["Drama, Comedy", "Comedy", "(none)"]
    assert table["first genre"].tolist() == ["Drama", "Comedy", "(none)"]
    colours, continuous = embedding.colour_values(table, dataset, "genre: Comedy")
    assert colours.tolist() == ["Comedy", "Comedy", "other"] and not continuous


def test_thumbnails_of_missing_or_corrupt_posters(tmp_path):
    from PIL import Image

    good = tmp_path / "1.jpg"
    Image.new("RGB", (60, 90), (200, 10, 10)).save(good, format="PNG")  # a PNG behind a .jpg name
    corrupt = tmp_path / "2.jpg"
    corrupt.write_bytes(b"not an image")
    assert gallery.load_thumbnail(good, 45).size == (30, 45)
    assert gallery.thumbnail_data_uri(good).startswith("data:image/jpeg;base64,")
    assert gallery.load_thumbnail(corrupt) is None and gallery.thumbnail_data_uri(tmp_path / "none.jpg") is None
    placeholder = gallery.thumbnail_png(corrupt, 40)
    assert Image.open(__import__("io").BytesIO(placeholder)).size[1] == 40


def test_trajectories_follow_window_order_per_movie():
    coords = np.arange(20, dtype=float).reshape(10, 2)
    offsets = np.array([0, 4, 10])
    frame = embedding.trajectory_frame(coords, offsets, [7, 9], ["Seven", "Nine"])
    assert frame.groupby("item_id").size().to_dict() == {7: 4, 9: 6}
    assert frame[frame["item_id"] == 9]["x"].tolist() == [8, 10, 12, 14, 16, 18]
    figure = embedding.trajectory_figure(frame)
    paths = [t for t in figure.data if t.mode == "lines+markers"]
    assert [t.name for t in paths] == ["Seven", "Nine"] and list(paths[1].customdata) == [0, 1, 2, 3, 4, 5]
    ends = [t for t in figure.data if t.mode == "markers"]
    assert [float(t.x[0]) for t in ends] == [6.0, 18.0]  # each path ends at its last window


def test_selected_item_ids_from_a_plotly_selection_event():
    event = {
        "points": [{"customdata": [12, "A"]}, {"customdata": [3, "B"]}, {"customdata": [12, "A"]}, {"x": 1}],
        "box": [],
        "lasso": [{"x": [0, 1], "y": [0, 1]}],
        "point_indices": [0, 1, 2],
    }
    assert embedding.selected_item_ids(event) == [12, 3]
    assert embedding.selected_item_ids(None) == [] and embedding.selected_item_ids({"points": []}) == []
