"""Bad input to the predictors and top-N lists: a clear error or a flagged fallback, never a silent number.

Each case here once produced a plausible-looking but wrong result (NaN predictions, random
neighbours from NaN similarities, ratings of 0 vanishing from the sparse matrix, a constant
"recommendation" list presented as real).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.features.item_features import ItemFeatures
from recsys.models.content import ContentPredictor
from recsys.models.fusion import LinearFusion
from recsys.models.hybrid import HybridUserKNN
from recsys.models.knn import UserKNN
from recsys.models.means import GlobalMeanPredictor, UserMeanPredictor
from recsys.models.profiles import ProfileKNN
from recsys.models.topn import PredictorTopN


@pytest.fixture(scope="module")
def train():
    rng = np.random.default_rng(0)
    users, items = np.nonzero(rng.random((20, 30)) < 0.5)
    return pd.DataFrame(
        {"user_id": users + 1, "item_id": items + 1, "rating": rng.integers(1, 6, len(users)).astype(float)}
    )


@pytest.fixture(scope="module")
def features():
    return ItemFeatures(np.arange(1, 31), np.random.default_rng(1).random((30, 4)), "random")


FEATURE_MODELS = {
    "profile": lambda f: ProfileKNN(f, k=5),
    "content": lambda f: ContentPredictor(f),
    "fusion": lambda f: LinearFusion(UserKNN(k=5), ContentPredictor(f)),
    "hybrid": lambda f: HybridUserKNN(f, alpha=0.5),
}


@pytest.mark.parametrize("model", sorted(FEATURE_MODELS))
def test_features_with_nan_rows_are_refused_naming_the_items(model, train, features):
    matrix = features.matrix.copy()
    matrix[[2, 7]] = np.nan
    broken = ItemFeatures(features.item_ids, matrix, "broken")
    with pytest.raises(ValueError, match=r"NaN or infinite values for 2 items \(e\.g\. \[3, 8\]\)"):
        FEATURE_MODELS[model](broken).fit(train)


@pytest.mark.parametrize("model", sorted(FEATURE_MODELS))
def test_features_of_another_dataset_are_refused(model, train, features):
    elsewhere = ItemFeatures(features.item_ids + 1000, features.matrix, "other dataset")
    with pytest.raises(ValueError, match="cover none of the 30 rated items"):
        FEATURE_MODELS[model](elsewhere).fit(train)


def test_partial_feature_coverage_is_still_accepted(train, features):
    half = features.subset(np.arange(1, 16))
    predictions = ProfileKNN(half, k=5).fit(train).predict([1, 2], [20, 3])
    assert np.isfinite(predictions).all()


@pytest.mark.parametrize("make", [lambda: UserKNN(k=5), lambda: HybridUserKNN()], ids=["user_knn", "hybrid"])
def test_zero_ratings_are_refused_by_sparse_matrix_models(make, train):
    shifted = train.assign(rating=train["rating"] - 1.0)  # a 0..4 scale
    with pytest.raises(ValueError, match="needs ratings > 0"):
        make().fit(shifted)


@pytest.mark.parametrize("min_support", [-3, 1.5, 2.0])
def test_user_knn_refuses_a_meaningless_min_support(min_support, train):
    with pytest.raises(ValueError, match="min_support must be a non-negative integer"):
        UserKNN(k=5, min_support=min_support).fit(train)


@pytest.mark.parametrize("model", [UserMeanPredictor, GlobalMeanPredictor])
def test_mean_baselines_refuse_nan_ratings(model, train):
    with pytest.raises(ValueError, match="NaN"):
        model().fit(train.assign(rating=train["rating"].where(train.index != 3)))


def test_global_mean_clips_checks_lengths_and_flags_unknown_pairs(train):
    model = GlobalMeanPredictor().fit(train)
    predictions, fallback = model.predict([1, 999, 1], [1, 1, 999], return_fallback=True)
    np.testing.assert_allclose(predictions, train["rating"].mean())
    assert fallback.tolist() == [False, True, True]
    with pytest.raises(ValueError, match="equal length"):
        model.predict([1, 2], [1])
    low_scale = GlobalMeanPredictor()
    low_scale.fit(train)
    low_scale.rating_scale_ = (1.0, 2.0)  # as if trained on a narrower scale
    assert low_scale.predict([1], [1])[0] == 2.0


def test_top_n_flags_lists_built_from_fallback_scores(train, features):
    model = UserKNN(k=5).fit(train)
    recommender = PredictorTopN.from_fitted(model, train)
    lists = recommender.recommend([1, 999], n=3)
    assert lists.columns.tolist() == ["user_id", "rank", "item_id", "score", "fallback"]
    unknown_user = lists[lists.user_id == 999]
    assert len(unknown_user) == 3 and unknown_user["fallback"].all()
    known_user = lists[lists.user_id == 1]
    # user 1 is known: its best-scored items have neighbour evidence
    assert not known_user["fallback"].all()
    # an item no one rated can only be scored by fallback for a CF model
    single = recommender.recommend([1], n=40, candidates=[1000])
    assert single["fallback"].tolist() == [True]
    content = PredictorTopN(ContentPredictor(features)).fit(train)
    assert not content.recommend([1], n=3)["fallback"].any()


def test_fusion_reports_fallback_only_where_both_weighted_parts_fell_back(train, features):
    fused = LinearFusion(UserKNN(k=5), ContentPredictor(features)).fit(train)
    # user 999 is unknown to both parts; item 1000 is unknown to CF but has no features either
    _, fallback = fused.predict([999, 1, 1], [1, 1, 1000], return_fallback=True)
    assert fallback.tolist() == [True, False, True]
    extra = ItemFeatures(np.r_[features.item_ids, 1000], np.vstack([features.matrix, features.matrix[:1]]), "more")
    fused = LinearFusion(UserKNN(k=5), ContentPredictor(extra)).fit(train)
    _, fallback = fused.predict([1], [1000], return_fallback=True)
    assert fallback.tolist() == [False]  # content scores the cold item: the blend carries evidence
    cf_only = LinearFusion(UserKNN(k=5), ContentPredictor(extra), w=1.0).fit(train)
    assert cf_only.predict([1], [1000], return_fallback=True).fallback.tolist() == [True]  # w=1: CF alone


def test_neighbourhood_models_work_blockwise_beyond_the_dense_limit(monkeypatch):
    """Predictions never build the users x users matrix (issue 13): only the dense accessors refuse."""
    from recsys.models import base
    from recsys.models.hybrid import HybridUserKNN
    from recsys.models.knn import UserKNN

    train = pd.DataFrame({"user_id": [1, 2, 3, 3], "item_id": [1, 1, 2, 1], "rating": [4.0, 3.0, 5.0, 2.0]})
    expected = UserKNN(k=2).fit(train).predict([1, 2], [2, 2])  # under the real limit
    monkeypatch.setattr(base, "DENSE_LIMIT_BYTES", 3 * 3 * 8 - 1)  # as if 3 users were ML-20M's 138k
    knn = UserKNN(k=2).fit(train)
    np.testing.assert_array_equal(knn.predict([1, 2], [2, 2]), expected)
    hybrid = HybridUserKNN(features=None, alpha=1.0, k=2, n=1).fit(train)
    assert len(hybrid.recommend([1])) == 1
    for dense in (lambda: knn.similarity_, lambda: hybrid.similarity()):
        with pytest.raises(ValueError, match=r"dense 3 x 3 .* matrix .* use a smaller dataset"):
            dense()
