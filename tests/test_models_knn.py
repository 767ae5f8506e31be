"""User KNN and profile KNN against straightforward per-pair loops, and against Surprise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.errors import InvalidInput, InvalidParameter, NotFittedError
from recsys.features.item_features import ItemFeatures
from recsys.models.knn import KCurve, UserKNN
from recsys.models.profiles import ProfileKNN, user_profiles
from recsys.models.similarity import corated_cosine, corated_pearson, cosine_similarity_matrix


def random_ratings(n_users=30, n_items=25, density=0.35, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    frame = pd.DataFrame(
        {
            "user_id": users + 100,  # ids that are not codes, to catch id/code mix-ups
            "item_id": items * 3 + 7,
            "rating": rng.integers(1, 6, len(users)).astype(np.float64),
        }
    )
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # shuffled row order


@pytest.fixture(scope="module")
def small():
    ratings = random_ratings()
    test = ratings.sample(frac=0.2, random_state=1)
    train = ratings.drop(test.index).reset_index(drop=True)
    # Add pairs with a user and an item that training never saw.
    test = pd.concat([test, pd.DataFrame({"user_id": [999, 100], "item_id": [7, 9999], "rating": [3.0, 4.0]})])
    return train, test.reset_index(drop=True)


# ---- brute-force references (the obvious loops) ---------------------------------------------------
def ratings_by_user(train):
    return {u: dict(zip(g.item_id, g.rating)) for u, g in train.groupby("user_id")}


def reference_similarity(train, kind, min_support):
    by_user = ratings_by_user(train)
    sims = {}
    for u, ru in by_user.items():
        for v, rv in by_user.items():
            common = sorted(set(ru) & set(rv))
            if u == v:
                sims[u, v] = 1.0
                continue
            if len(common) < max(min_support, 1):
                sims[u, v] = 0.0
                continue
            a = [ru[i] for i in common]
            b = [rv[i] for i in common]
            if kind == "cosine":
                sims[u, v] = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
            else:
                n = len(common)
                num = n * sum(x * y for x, y in zip(a, b)) - sum(a) * sum(b)
                den = (n * sum(x * x for x in a) - sum(a) ** 2) * (n * sum(y * y for y in b) - sum(b) ** 2)
                sims[u, v] = num / math.sqrt(den) if den > 0 else 0.0
    return sims


def reference_predict(train, test, sims, k, mean_centred, positive_only):
    by_user = ratings_by_user(train)
    means = {u: float(np.mean(list(r.values()))) for u, r in by_user.items()}
    global_mean = train.rating.mean()
    out = []
    for u, i in zip(test.user_id, test.item_id):
        raters = [(v, r) for v, it, r in zip(train.user_id, train.item_id, train.rating) if it == i]
        if u not in by_user or not raters:
            out.append(global_mean)
            continue
        # sorted(..., reverse=True) is stable: equal similarities keep training-frame order.
        neighbours = sorted(((v, sims[u, v], r) for v, r in raters), key=lambda t: t[1], reverse=True)[:k]
        num = den = 0.0
        for v, s, r in neighbours:
            if positive_only and s <= 0:
                continue
            num += s * ((r - means[v]) if mean_centred else r)
            den += abs(s)
        if den == 0:
            out.append(means[u])
        else:
            out.append((means[u] if mean_centred else 0.0) + num / den)
    return np.clip(out, 1, 5)


# ---- similarities ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,function", [("cosine", corated_cosine), ("pearson", corated_pearson)])
@pytest.mark.parametrize("min_support", [1, 3])
def test_corated_similarity_matches_loop(small, kind, function, min_support):
    train, _ = small
    model = UserKNN(similarity=kind, min_support=min_support).fit(train)
    reference = reference_similarity(train, kind, min_support)
    ids = model.ratings_.user_ids
    expected = np.array([[reference[u, v] for v in ids] for u in ids])
    np.testing.assert_allclose(model.similarity_, expected, rtol=0, atol=1e-12)
    assert np.allclose(function(model.ratings_.matrix, min_support), model.similarity_)


def test_cosine_similarity_matrix_zero_rows():
    X = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 2.0]])
    S = cosine_similarity_matrix(X)
    assert S[1].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(S[0, 2], 1 / math.sqrt(2))
    np.testing.assert_allclose(np.diag(S), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(cosine_similarity_matrix(X, X[:1]).ravel(), [1.0, 0.0, 1 / math.sqrt(2)])


# ---- predictions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cosine", "pearson"])
@pytest.mark.parametrize("mean_centred", [True, False])
@pytest.mark.parametrize("positive_only", [True, False])
def test_user_knn_matches_loop(small, kind, mean_centred, positive_only):
    train, test = small
    sims = reference_similarity(train, kind, 1)
    for k in (1, 3, 8):
        model = UserKNN(k=k, similarity=kind, mean_centred=mean_centred, positive_only=positive_only).fit(train)
        got = model.predict(test.user_id, test.item_id)
        expected = reference_predict(train, test, sims, k, mean_centred, positive_only)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_k_curve_equals_separate_fits(small):
    train, test = small
    ks = [1, 2, 5, 10, 40]
    curve = UserKNN(similarity="pearson").fit(train).predict_k_curve(test.user_id, test.item_id, ks)
    assert isinstance(curve, KCurve)
    assert curve.values.shape == curve.fallback.shape == (len(ks), len(test)) and curve.unknown.shape == (len(test),)
    for row, k in enumerate(ks):
        separate = (
            UserKNN(k=k, similarity="pearson").fit(train).predict(test.user_id, test.item_id, return_fallback=True)
        )
        np.testing.assert_array_equal(curve.values[row], separate.values)
        np.testing.assert_array_equal(curve.fallback[row], separate.fallback)


def test_unknown_and_no_evidence_fallbacks_are_flagged(small):
    train, test = small
    model = UserKNN(k=5).fit(train)
    predictions, fallback = model.predict(test.user_id, test.item_id, return_fallback=True)
    np.testing.assert_array_equal(predictions, model.predict(test.user_id, test.item_id))
    unknown = ((~test.user_id.isin(train.user_id)) | (~test.item_id.isin(train.item_id))).to_numpy()
    np.testing.assert_array_equal(model.predict_k_curve(test.user_id, test.item_id, [5]).unknown, unknown)
    assert unknown.sum() == 2 and np.allclose(predictions[unknown], train.rating.mean())
    assert fallback[unknown].all()
    # A user whose only co-raters have no common items: similarity 0 -> own mean, flagged.
    lonely = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [10, 11, 11], "rating": [4.0, 2.0, 5.0]})
    lonely_model = UserKNN(k=5).fit(lonely)
    values, flags = lonely_model.predict([1, 2], [11, 10], return_fallback=True)
    assert values.tolist() == [4.0, 2.0] and flags.tolist() == [True, True]
    # ...while pairs with neighbour evidence are not flagged, and the flag is exactly "no evidence".
    assert not fallback[~unknown].any()


def test_bad_input_is_rejected(small):
    train, _ = small
    with pytest.raises(InvalidParameter, match="similarity must be one of"):
        UserKNN(similarity="jaccard")
    with pytest.raises(NotFittedError, match="UserKNN is not fitted yet: call fit"):
        UserKNN().predict([1], [1])
    with pytest.raises(NotFittedError, match="UserKNN is not fitted yet"):
        UserKNN().predict_k_curve([1], [1], [5])
    model = UserKNN().fit(train)
    with pytest.raises(InvalidParameter, match="K \\(neighbours\\) must be a positive integer, got 0"):
        model.predict_k_curve(train.user_id[:2], train.item_id[:2], [0, 5])
    with pytest.raises(InvalidParameter, match="positive integer, got 2.5"):
        model.predict_k_curve(train.user_id[:2], train.item_id[:2], [2.5])
    with pytest.raises(InvalidInput, match="equal length"):
        model.predict([1, 2], [1])
    with pytest.raises(ValueError, match="duplicate"):
        UserKNN().fit(pd.concat([train, train.head(1)]))
    with pytest.raises(ValueError, match="NaN"):
        UserKNN().fit(train.assign(rating=train.rating.where(train.index != 3, np.nan)))
    with pytest.raises(ValueError, match="lacks columns"):
        UserKNN().fit(train.drop(columns="rating"))


# ---- Ben Hassen profiles -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def item_features(small):
    train, _ = small
    items = np.sort(train.item_id.unique())
    rng = np.random.default_rng(5)
    # One item without features, to check it is skipped.
    return ItemFeatures(items[1:], rng.normal(size=(len(items) - 1, 4)), name="random")


def test_user_profiles_match_loop(small, item_features):
    train, _ = small
    user_ids, profiles = user_profiles(train, item_features)
    assert profiles.dtype == np.float32 and np.all(np.diff(user_ids) > 0)
    vectors = dict(zip(item_features.item_ids, item_features.matrix.astype(np.float64)))
    for row, user in enumerate(user_ids):
        mine = train[train.user_id == user]
        mean = mine.rating.mean()
        expected = np.zeros(item_features.dim)
        for item, rating in zip(mine.item_id, mine.rating):
            if rating >= mean and item in vectors:
                expected += rating * vectors[item]
        np.testing.assert_allclose(profiles[row], expected, rtol=1e-5, atol=1e-5)
    _, with_threshold = user_profiles(train, item_features, relevance=4)
    assert not np.allclose(with_threshold, profiles)
    with pytest.raises(ValueError, match="relevance"):
        user_profiles(train, item_features, relevance="liked")


def test_profile_knn_matches_loop_and_k_curve(small, item_features):
    train, test = small
    model = ProfileKNN(item_features, k=4).fit(train)
    user_ids, profiles = user_profiles(train, item_features)
    norms = np.linalg.norm(profiles.astype(np.float64), axis=1)
    sims = {}
    for a, u in enumerate(user_ids):
        for b, v in enumerate(user_ids):
            ok = norms[a] > 0 and norms[b] > 0
            sims[u, v] = float(profiles[a].astype(np.float64) @ profiles[b] / (norms[a] * norms[b])) if ok else 0.0
    expected = reference_predict(train, test, sims, 4, True, True)
    np.testing.assert_allclose(model.predict(test.user_id, test.item_id), expected, atol=1e-9)
    curve = model.predict_k_curve(test.user_id, test.item_id, [2, 4, 50])
    np.testing.assert_array_equal(curve.values[1], model.predict(test.user_id, test.item_id))
    np.testing.assert_array_equal(
        curve.values[0], ProfileKNN(item_features, k=2).fit(train).predict(test.user_id, test.item_id)
    )


# ---- Surprise on real data ---------------------------------------------------------------------------
def test_matches_surprise_knn_with_means_on_ml100k(shared_data_dir):
    surprise = pytest.importorskip("surprise")
    from recsys.data import load_dataset
    from recsys.eval.splits import make_splits

    ratings = load_dataset("ml-100k", shared_data_dir).ratings
    train, test = make_splits(ratings, "holdout", seed=0, test_size=0.2)[0]
    test = test.sample(3000, random_state=0)  # Surprise's Python loop is slow; a sample suffices
    trainset = surprise.Dataset.load_from_df(
        train[["user_id", "item_id", "rating"]], surprise.Reader(rating_scale=(1, 5))
    ).build_full_trainset()
    algo = surprise.KNNWithMeans(
        sim_options={"name": "cosine", "user_based": True, "min_support": 1}, verbose=False
    ).fit(trainset)
    ks = [10, 100]
    ours = UserKNN(similarity="cosine", min_support=1).fit(train).predict_k_curve(test.user_id, test.item_id, ks)
    for row, k in enumerate(ks):
        algo.k = k
        theirs = np.array([algo.predict(u, i).est for u, i in zip(test.user_id, test.item_id)])
        assert np.abs(theirs - ours.values[row]).max() < 1e-9
