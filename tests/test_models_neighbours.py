"""Blockwise neighbour search (issue 13): the same numbers as the dense implementation, whatever
the block size, the BLAS share, the engine (numba / torch on the CPU / CUDA) and, with every user
as a candidate, the approximate option; approximate neighbours close to exact ones on small data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.features.item_features import ItemFeatures
from recsys.models import _neighbours
from recsys.models.hybrid import HybridUserKNN
from recsys.models.knn import UserKNN
from recsys.models.profiles import ProfileKNN, user_profiles
from recsys.models.similarity import (
    corated_cosine,
    corated_pearson,
    cosine_similarity_matrix,
    stable_topk,
)

KS = [1, 2, 3, 5, 8, 13, 40]


def make_ratings(n_users=45, n_items=30, density=0.3, seed=0, scale="stars") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[:, 0] = rng.random(n_users) < 0.9  # a popular item (goes to BLAS at share 0.2)
    users, items = np.nonzero(mask)
    if scale == "stars":
        values = rng.integers(1, 6, len(users)).astype(np.float64)
    elif scale == "half":
        values = rng.integers(1, 11, len(users)) / 2.0
    else:  # off the half-star grid: the BLAS part is switched off, sums keep their order
        values = np.round(rng.uniform(0.5, 5.0, len(users)), 3)
    frame = pd.DataFrame({"user_id": users * 2 + 11, "item_id": items + 500, "rating": values})
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def split(ratings, seed=1):
    test = ratings.sample(frac=0.2, random_state=seed)
    return ratings.drop(test.index).reset_index(drop=True), test.reset_index(drop=True)


def dense_curve(train, test, similarity_matrix, ks, mean_centred=True, positive_only=True):
    """The former dense implementation: full similarity matrix, stable sort of each pair's raters
    (training-frame order), cumulative sums. Returns (values (len(ks), n), fallback)."""
    user_ids = np.sort(train.user_id.unique())
    item_ids = np.sort(train.item_id.unique())
    users = pd.Index(user_ids).get_indexer(test.user_id)
    items = pd.Index(item_ids).get_indexer(test.item_id)
    train_users = pd.Index(user_ids).get_indexer(train.user_id)
    train_items = pd.Index(item_ids).get_indexer(train.item_id)
    means = train.groupby("user_id").rating.mean().reindex(user_ids).to_numpy()
    values = np.full((len(ks), len(test)), train.rating.mean())
    fallback = np.ones((len(ks), len(test)), dtype=bool)
    for p, (u, i) in enumerate(zip(users, items)):
        if u < 0 or i < 0:
            continue
        rows = np.flatnonzero(train_items == i)  # training-frame order
        raters = train_users[rows]
        rated = train.rating.to_numpy()[rows] - (means[raters] if mean_centred else 0.0)
        sims = similarity_matrix[u, raters]
        order = np.argsort(-sims, kind="stable")
        sims, rated = sims[order], rated[order]
        if positive_only:
            sims = np.where(sims > 0, sims, 0.0)
        numerator, denominator = np.cumsum(sims * rated), np.cumsum(np.abs(sims))
        for row, k in enumerate(ks):
            last = min(k, len(raters)) - 1
            if denominator[last] == 0:
                values[row, p] = means[u]
            else:
                values[row, p] = (means[u] if mean_centred else 0.0) + numerator[last] / denominator[last]
                fallback[row, p] = False
    return np.clip(values, train.rating.min(), train.rating.max()), fallback


@pytest.fixture(scope="module")
def data():
    train, test = split(make_ratings())
    extra = pd.DataFrame({"user_id": [11, 9999], "item_id": [9999, 500], "rating": [3.0, 3.0]})  # unseen
    return train, pd.concat([test, extra], ignore_index=True)


# ---- exact: blockwise == dense -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cosine", "pearson"])
@pytest.mark.parametrize("min_support", [1, 3])
@pytest.mark.parametrize("mean_centred,positive_only", [(True, True), (False, False)])
def test_blockwise_curve_equals_the_dense_reference_bit_for_bit(data, kind, min_support, mean_centred, positive_only):
    train, test = data
    model = UserKNN(
        similarity=kind,
        min_support=min_support,
        mean_centred=mean_centred,
        positive_only=positive_only,
        engine="numba",
        block_users=7,
    ).fit(train)
    full = {"cosine": corated_cosine, "pearson": corated_pearson}[kind](model.ratings_.matrix, min_support)
    expected, expected_fallback = dense_curve(train, test, full, KS, mean_centred, positive_only)
    curve = model.predict_k_curve(test.user_id, test.item_id, KS)
    np.testing.assert_array_equal(curve.values, expected)
    np.testing.assert_array_equal(curve.fallback, expected_fallback | curve.unknown[None, :])
    assert curve.info["engine"] == "numba" and curve.info["blocks"] > 1


@pytest.mark.parametrize("scale", ["stars", "half", "off_grid"])
def test_block_size_and_blas_share_do_not_change_a_bit(scale, monkeypatch):
    train, test = split(make_ratings(scale=scale, seed=3))
    curves = []
    for share in (2.0, 0.2, 0.0):  # no BLAS part, popular items only, every item through BLAS
        monkeypatch.setattr(UserKNN, "_dense_item_share", share)
        for block in (1, 5, None):
            model = UserKNN(similarity="pearson", engine="numba", block_users=block).fit(train)
            if scale == "off_grid":
                assert len(model._corated.dense_items) == 0  # float32 sums would not be exact
            elif share < 1:
                assert len(model._corated.dense_items) > 0
            curves.append(model.predict_k_curve(test.user_id, test.item_id, KS).values)
    for other in curves[1:]:
        np.testing.assert_array_equal(other, curves[0])
    full = corated_pearson(model.ratings_.matrix, 1)
    np.testing.assert_allclose(curves[0], dense_curve(train, test, full, KS)[0], rtol=0, atol=1e-12)


def test_similarity_rows_and_columns_equal_the_dense_matrices(data):
    train, _ = data
    model = UserKNN(similarity="pearson", min_support=2).fit(train)
    full = corated_pearson(model.ratings_.matrix, 2)
    np.testing.assert_array_equal(model.similarity_, full)
    rows, columns = np.array([0, 4, 9]), np.array([3, 0, 17, 9, 20])
    np.testing.assert_array_equal(model._similarity_block(rows, columns), full[np.ix_(rows, columns)])
    np.testing.assert_array_equal(model.similarity_rows(model.ratings_.user_ids[rows]), full[rows])
    plain = _neighbours.corated_rows(model._corated, np.arange(len(full)), "plain_cosine")
    np.testing.assert_allclose(plain, cosine_similarity_matrix(model.ratings_.matrix), atol=1e-15)


def test_profile_knn_blockwise_equals_dense_cosine(data):
    train, test = data
    items = np.sort(train.item_id.unique())
    rng = np.random.default_rng(2)
    features = ItemFeatures(items[2:], rng.normal(size=(len(items) - 2, 6)), name="random")
    model = ProfileKNN(features, block_users=4, engine="numba").fit(train)
    _, profiles = user_profiles(train, features)
    expected = dense_curve(train, test, cosine_similarity_matrix(profiles), KS)[0]
    np.testing.assert_allclose(model.predict_k_curve(test.user_id, test.item_id, KS).values, expected, atol=1e-12)


# ---- torch ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cosine", "pearson"])
def test_torch_path_on_the_cpu_equals_the_numba_path(data, kind):
    pytest.importorskip("torch")
    train, test = data
    numba_curve = UserKNN(similarity=kind, engine="numba").fit(train).predict_k_curve(test.user_id, test.item_id, KS)
    torch_model = UserKNN(similarity=kind, engine="torch", device="cpu", block_users=6).fit(train)
    torch_curve = torch_model.predict_k_curve(test.user_id, test.item_id, KS)
    assert torch_curve.info["engine"] == "torch" and torch_curve.info["device"] == "cpu"
    np.testing.assert_array_equal(torch_curve.values, numba_curve.values)  # integer ratings: exact sums
    np.testing.assert_array_equal(torch_curve.fallback, numba_curve.fallback)


def test_torch_stable_topk_breaks_ties_like_a_stable_sort():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (50, 37)).astype(np.float64)
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    for m in (1, 5, 20, 37):
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :m]
        np.testing.assert_array_equal(_neighbours.stable_topk_torch(torch.as_tensor(scores), m).numpy(), expected)
        np.testing.assert_array_equal(stable_topk(scores, m), expected)


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="no CUDA device here: the GPU path runs on a GPU machine only"
)
def test_cuda_curve_equals_the_cpu_curve():
    train, test = split(make_ratings(n_users=300, n_items=120, density=0.2, seed=5))
    cpu = UserKNN(engine="numba").fit(train).predict_k_curve(test.user_id, test.item_id, KS)
    gpu = UserKNN(engine="torch", device="cuda").fit(train).predict_k_curve(test.user_id, test.item_id, KS)
    assert gpu.info["device"].startswith("cuda")
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=0, atol=1e-6)
    items = np.sort(train.item_id.unique())
    features = ItemFeatures(items, np.random.default_rng(0).normal(size=(len(items), 8)), name="random")
    cpu = ProfileKNN(features, engine="numba").fit(train).predict_k_curve(test.user_id, test.item_id, KS)
    gpu = ProfileKNN(features, engine="torch", device="cuda").fit(train).predict_k_curve(test.user_id, test.item_id, KS)
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=0, atol=1e-6)


# ---- approximate neighbours ------------------------------------------------------------------------
def test_approx_with_every_user_as_candidate_is_exact(data):
    train, test = data
    exact = UserKNN().fit(train).predict_k_curve(test.user_id, test.item_id, KS)
    approx_model = UserKNN(neighbours="approx", n_candidates=10_000, exact_raters=0).fit(train)
    approx = approx_model.predict_k_curve(test.user_id, test.item_id, KS)
    assert approx.info["exact_share"] == 0.0 and approx.info["short_share"] == 0.0
    np.testing.assert_array_equal(approx.values, exact.values)
    np.testing.assert_array_equal(approx.fallback, exact.fallback)
    # Items with few raters go to the exact path: the same numbers again.
    mixed = UserKNN(neighbours="approx", n_candidates=5, exact_raters=8).fit(train)
    curve = mixed.predict_k_curve(test.user_id, test.item_id, KS)
    small = (np.diff(mixed.item_rater_ptr_)[mixed.ratings_.item_codes(test.item_id)] <= 8) & ~exact.unknown
    assert 0 < small.sum() < len(test)
    np.testing.assert_array_equal(curve.values[:, small], exact.values[:, small])


def test_approx_agrees_with_exact_on_small_data():
    from recsys.eval.metrics import rmse_rows
    from recsys.models.approx import neighbour_overlap

    train, test = split(make_ratings(n_users=400, n_items=80, density=0.15, seed=7))
    exact_model = UserKNN().fit(train)
    exact = exact_model.predict_k_curve(test.user_id, test.item_id, [10, 40])
    approx_model = UserKNN(neighbours="approx", n_candidates=150, exact_raters=0).fit(train)
    assert approx_model.candidates_.shape == (400, 150)
    approx = approx_model.predict_k_curve(test.user_id, test.item_id, [10, 40])
    truth = test.rating.to_numpy()
    difference = np.abs(rmse_rows(truth, approx.values) - rmse_rows(truth, exact.values))
    assert difference.max() < 0.05, difference
    overlap = neighbour_overlap(
        exact_model, approx_model, test.user_id[:60].to_numpy(), test.item_id[:60].to_numpy(), 10
    )
    assert 0.2 < overlap <= 1.0
    # Candidates are sorted by the model's own similarity.
    sims = approx_model.candidate_similarity_
    assert np.all(np.diff(sims, axis=1)[np.isfinite(sims[:, 1:])] <= 0)
    row = approx_model.similarity_rows(approx_model.ratings_.user_ids[[3]])[0]
    np.testing.assert_allclose(sims[3], row[approx_model.candidates_[3]], atol=1e-12)


# ---- hybrid top-N --------------------------------------------------------------------------------------
def test_hybrid_neighbour_lists_are_the_head_of_the_full_stable_sort(data):
    train, _ = data
    items = np.sort(train.item_id.unique())
    features = ItemFeatures(items, np.random.default_rng(4).random((len(items), 5)), name="random")
    model = HybridUserKNN(features, alpha=0.4, k=6).fit(train)
    similarity = model.similarity(0.4)
    np.fill_diagonal(similarity, -np.inf)
    similarity[similarity <= 0] = -np.inf
    full_order = np.argsort(-similarity, axis=1, kind="stable")[:, :6]
    order, sims = model.neighbour_order(0.4)
    assert order.shape == (len(model.user_ids_), 6)
    finite = np.isfinite(sims)
    np.testing.assert_array_equal(order[finite], full_order[finite])
    with pytest.raises(ValueError, match="fewer than k=9"):
        model.recommend(n=3, k=9, neighbours=(order, sims))
