"""VT2 content predictor, linear fusion and top-N lists against straightforward loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.errors import InvalidParameter
from recsys.features.item_features import ItemFeatures
from recsys.models.base import TOPN_COLUMNS
from recsys.models.content import ContentPredictor
from recsys.models.fusion import LinearFusion, fuse_predictions
from recsys.models.knn import UserKNN
from recsys.models.means import UserMeanPredictor
from recsys.models.topn import PredictorTopN


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n_users, n_items = 20, 30
    mask = rng.random((n_users, n_items)) < 0.4
    users, items = np.nonzero(mask)
    ratings = pd.DataFrame(
        {"user_id": users + 1, "item_id": items + 1, "rating": rng.integers(1, 6, len(users)).astype(float)}
    )
    test = ratings.sample(frac=0.25, random_state=0)
    train = ratings.drop(test.index).reset_index(drop=True)
    cold_item = 31  # never rated, but has features
    test = pd.concat(
        [test, pd.DataFrame({"user_id": [1, 2, 77], "item_id": [cold_item, 999, 3], "rating": [4.0, 2.0, 3.0]})]
    ).reset_index(drop=True)
    # Features for items 1..31 except item 5; some vectors point away from others (negative cosine).
    feature_items = np.array([i for i in range(1, 32) if i != 5])
    matrix = rng.normal(size=(len(feature_items), 3))
    matrix[:4] = np.round(matrix[:4])  # a few repeated directions -> tied similarities
    return train, test, ItemFeatures(feature_items, matrix, name="random")


def reference_content(train, test, features, top_m):
    vectors = dict(zip(features.item_ids, features.matrix.astype(np.float64)))
    global_mean = train.rating.mean()
    out = []
    for u, i in zip(test.user_id, test.item_id):
        mine = train[train.user_id == u].sort_values("item_id")
        if mine.empty:
            out.append(global_mean)
            continue
        if i not in vectors:
            out.append(mine.rating.mean())
            continue
        votes = []
        for j, r in zip(mine.item_id, mine.rating):
            if j not in vectors:
                continue
            a, b = vectors[i], vectors[j]
            denominator = np.linalg.norm(a) * np.linalg.norm(b)
            cos = a @ b / denominator if denominator > 0 else 0.0
            votes.append((min(max(cos, 0.0), 1.0), r))
        if top_m is not None:
            votes = sorted(votes, key=lambda v: v[0], reverse=True)[:top_m]
        total = sum(w for w, _ in votes)
        out.append(sum(w * r for w, r in votes) / total if total > 0 else mine.rating.mean())
    return np.clip(out, 1, 5)


@pytest.mark.parametrize("top_m", [None, 1, 3])
def test_content_predictor_matches_loop(data, top_m):
    train, test, features = data
    model = ContentPredictor(features, top_m=top_m).fit(train)
    got = model.predict(test.user_id, test.item_id)
    np.testing.assert_allclose(got, reference_content(train, test, features, top_m), atol=1e-6)


def test_content_cold_start_and_fallbacks(data):
    train, test, features = data
    model = ContentPredictor(features).fit(train)
    got, fallback = model.predict(test.user_id, test.item_id, return_fallback=True)
    cold = (test.item_id == 31).to_numpy()
    no_features = (test.item_id == 999).to_numpy()
    unknown_user = (test.user_id == 77).to_numpy()
    assert not fallback[cold].any()  # a cold-start item with features is scored
    assert fallback[no_features].all() and fallback[unknown_user].all()
    assert got[no_features][0] == pytest.approx(train[train.user_id == 2].rating.mean())
    assert got[unknown_user][0] == pytest.approx(train.rating.mean())
    assert fallback.sum() < len(test) / 2  # most pairs are scored from the user's own ratings
    with pytest.raises(InvalidParameter, match="top_m must be a positive integer or None, got 0"):
        ContentPredictor(features, top_m=0)
    with pytest.raises(InvalidParameter, match="top_m must be a positive integer or None, got 3.0"):
        ContentPredictor(features, top_m=3.0)


def test_fusion_endpoints_and_midpoint(data):
    train, test, features = data
    cf, content = UserKNN(k=5), ContentPredictor(features)
    users, items = test.user_id, test.item_id
    cf_pred = cf.fit(train).predict(users, items)
    content_pred = content.fit(train).predict(users, items)
    fused = LinearFusion(UserKNN(k=5), ContentPredictor(features), w=0.5).fit(train)
    grid = fused.predict_weights(users, items, [0.0, 0.3, 1.0])
    np.testing.assert_allclose(grid[0], content_pred)
    np.testing.assert_allclose(grid[2], cf_pred)
    np.testing.assert_allclose(grid[1], 0.3 * cf_pred + 0.7 * content_pred)
    np.testing.assert_allclose(fused.predict(users, items), 0.5 * (cf_pred + content_pred))
    assert not hasattr(fused.cf_model, "similarity_")  # the parameters stay unfitted: copies are fitted
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        fuse_predictions(cf_pred, content_pred, [1.5])
    with pytest.raises(InvalidParameter, match="w \\(fusion weight\\) must be in \\[0, 1\\], got 1.5"):
        LinearFusion(UserKNN(k=5), ContentPredictor(features), w=1.5)


def test_top_n_excludes_rated_and_ranks_by_score(data):
    train, _, features = data
    model = ContentPredictor(features).fit(train)
    recommender = PredictorTopN.from_fitted(model, train)
    lists = recommender.recommend([1, 2, 3], n=5)
    assert lists.columns.tolist() == TOPN_COLUMNS
    for user, group in lists.groupby("user_id"):
        rated = set(train[train.user_id == user].item_id)
        assert not rated & set(group.item_id)
        candidates = np.array(sorted(set(train.item_id) - rated))
        scores = model.predict(np.full(len(candidates), user), candidates)
        expected = sorted(zip(-scores, candidates))[:5]
        assert group.item_id.tolist() == [item for _, item in expected]
        assert group["rank"].tolist() == [1, 2, 3, 4, 5]
    # Cold-start candidates can be recommended when passed explicitly.
    single = recommender.recommend([1], n=40, candidates=list(range(1, 32)))
    assert 31 in set(single.item_id) and set(single.user_id) == {1}
    # Without exclusion the user's own rated items compete too; fitting a clone gives the same lists.
    with_seen = recommender.recommend([1], n=40, exclude_seen=False)
    assert set(train[train.user_id == 1].item_id) <= set(with_seen.item_id)
    pd.testing.assert_frame_equal(PredictorTopN(ContentPredictor(features)).fit(train).recommend([1, 2, 3], n=5), lists)


def test_user_mean_baseline(data):
    train, test, _ = data
    model = UserMeanPredictor().fit(train)
    got = model.predict(test.user_id, test.item_id)
    means = train.groupby("user_id").rating.mean()
    expected = [means.get(u, train.rating.mean()) for u in test.user_id]
    np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize("top_m", [None, 2])
def test_content_predictor_in_blocks_of_target_items(data, top_m, monkeypatch):
    """VT2 at 13.6k items: target items are scored a few at a time; any block size gives the loop's
    numbers (and the top-m ties go to the lower item id, as in one pass)."""
    from recsys.models import content

    train, test, features = data
    expected = reference_content(train, test, features, top_m)
    monkeypatch.setattr(content, "_BLOCK_BYTES", 8 * len(features.item_ids) * 3)  # 3 target items per block
    model = ContentPredictor(features, top_m=top_m).fit(train)
    got, fallback = model.predict(test.user_id, test.item_id, return_fallback=True)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    monkeypatch.setattr(content, "_BLOCK_BYTES", 1 << 28)
    np.testing.assert_array_equal(model.predict(test.user_id, test.item_id, return_fallback=True).fallback, fallback)
