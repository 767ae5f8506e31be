"""Network-free baselines (raw pixels, colour histograms, genres) and train-only reductions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recsys.data.dataset import Dataset
from recsys.features.baselines import color_histogram_features, genre_features, raw_pixel_features
from recsys.features.item_features import ItemFeatures
from recsys.features.reduce import AutoencoderReducer, PCAReducer, TopKVarianceReducer, make_reducer


@pytest.fixture(scope="module")
def coloured_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("baseline_posters")
    colours = {1: (255, 0, 0), 2: (0, 0, 255), 3: (250, 250, 250)}
    paths = {}
    for item_id, colour in colours.items():
        Image.new("RGB", (40, 60), colour).save(folder / f"{item_id}.png")
        paths[item_id] = str(folder / f"{item_id}.png")
    Image.new("RGB", (40, 60), (0, 255, 0)).save(folder / "4.jpg")
    data = (folder / "4.jpg").read_bytes()
    (folder / "4.jpg").write_bytes(data[: len(data) // 2])
    paths[4] = str(folder / "4.jpg")
    paths[5] = None
    ids = sorted(paths)
    items = pd.DataFrame(
        {"title": [f"m{i}" for i in ids], "year": pd.array([1999] * 5, dtype="Int64")},
        index=pd.Index(ids, name="item_id"),
    )
    genres = pd.DataFrame({"Action": [1, 0, 1, 0, 0], "Comedy": [0, 1, 1, 0, 1]}, index=items.index, dtype=np.uint8)
    ratings = pd.DataFrame({"user_id": [1], "item_id": [1], "rating": [5.0], "timestamp": [0]})
    return Dataset("colours", ratings, items, genres, posters=pd.Series([paths[i] for i in ids], index=items.index))


def test_raw_pixels_are_resized_flattened_and_scaled(coloured_dataset):
    features = raw_pixel_features(coloured_dataset, size=(8, 12))
    assert features.item_ids.tolist() == [1, 2, 3] and features.dim == 8 * 12 * 3
    red = features.matrix[0].reshape(12, 8, 3)
    np.testing.assert_allclose(red[..., 0], 1.0)
    np.testing.assert_allclose(red[..., 1:], -1.0)
    assert [item for item, _ in features.meta["failures"]] == [4, 5]


def test_colour_histograms_sum_to_one_and_separate_colours(coloured_dataset):
    hsv = color_histogram_features(coloured_dataset, bins=4)
    assert hsv.dim == 64 and np.allclose(hsv.matrix.sum(axis=1), 1.0)
    rgb = color_histogram_features(coloured_dataset, bins=2, space="RGB")
    # Pure red -> all mass in bin (r=1, g=0, b=0) = 1*4 + 0*2 + 0 = 4; blue -> bin 1; near-white -> bin 7.
    assert rgb.matrix[:, [4, 1, 7]].diagonal().tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="space"):
        color_histogram_features(coloured_dataset, space="LAB")


def test_genre_features_are_the_multi_hot_matrix(coloured_dataset):
    features = genre_features(coloured_dataset)
    np.testing.assert_array_equal(features.matrix, coloured_dataset.genres.to_numpy(np.float32))
    with pytest.raises(ValueError, match="without genre"):
        genre_features(coloured_dataset, item_ids=[1, 99])


def _features_with_test_only_variance() -> tuple[ItemFeatures, np.ndarray]:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(60, 6)).astype(np.float32) * np.array([3, 2, 1, 0.1, 0.1, 0.1], np.float32)
    train = np.arange(40)
    matrix[40:, 5] = rng.normal(scale=50, size=20)  # huge variance, but only on test items
    return ItemFeatures(np.arange(60), matrix, "synthetic"), train


def test_reducers_are_fitted_on_training_items_only():
    features, train = _features_with_test_only_variance()
    top = TopKVarianceReducer(k=2).fit(features, train)
    assert top.selected_.tolist() == [0, 1]
    assert top.transform(features).dim == 2
    with_test = TopKVarianceReducer(k=2).fit(features)  # all items: the test-only column wins
    assert 5 in with_test.selected_

    pca = PCAReducer(n_components=2).fit(features, train)
    assert abs(pca.pca_.components_[0][5]) < 0.2  # the leading axis ignores the test-only column
    altered = ItemFeatures(features.item_ids, features.matrix.copy(), "altered")
    altered.matrix[40:] *= 10  # test items changed: the fitted reduction must not move
    np.testing.assert_allclose(PCAReducer(2).fit(altered, train).pca_.components_, pca.pca_.components_, atol=1e-5)
    reduced = pca.transform(features)
    assert reduced.matrix.shape == (60, 2) and reduced.meta["reduction"]["method"] == "PCAReducer"
    with pytest.raises(ValueError, match="n_components"):
        PCAReducer(n_components=10).fit(features, train)
    with pytest.raises(ValueError, match="at least 2"):
        PCAReducer(2).fit(features, [1000, 1001])


def test_autoencoder_learns_a_low_dimensional_code():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(200, 2))
    matrix = (latent @ rng.normal(size=(2, 12)) + 0.01 * rng.normal(size=(200, 12))).astype(np.float32)
    features = ItemFeatures(np.arange(200), matrix, "rank2")
    train = np.arange(150)
    reducer = AutoencoderReducer(n_components=2, hidden=32, epochs=60, lr=3e-3, seed=0).fit(features, train)
    assert reducer.loss_curve_[-1] < 0.2 * reducer.loss_curve_[0]
    assert reducer.transform(features).matrix.shape == (200, 2)
    held_out = features.subset(np.arange(150, 200))
    assert reducer.reconstruction_error(held_out) < 0.2
    assert isinstance(make_reducer("topk", 3), TopKVarianceReducer)
    with pytest.raises(ValueError, match="unknown reduction"):
        make_reducer("tsne", 2)


@pytest.mark.parametrize("method", ["pca", "topk", "autoencoder"])
def test_reducers_refuse_features_with_nan_rows(method):
    matrix = np.random.default_rng(0).random((20, 8)).astype(np.float32)
    matrix[4, 2] = np.nan  # TOP-K used to pick dimensions by NaN variance, the AE to learn NaN weights
    features = ItemFeatures(np.arange(1, 21), matrix, "with a hole")
    with pytest.raises(ValueError, match=r"NaN or infinite values for 1 items \(e\.g\. \[5\]\)"):
        make_reducer(method, 3).fit(features)
