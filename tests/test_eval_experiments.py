"""Experiment runners give the numbers the models give directly, in tidy frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from recsys.errors import InvalidParameter
from recsys.eval.experiments import (
    best_fusion_weight,
    cold_start_rmse,
    embedding_r2,
    fusion_curve,
    fusion_summary,
    rmse_vs_k,
)
from recsys.eval.metrics import rmse
from recsys.eval.splits import make_splits
from recsys.features.item_features import ItemFeatures
from recsys.models.content import ContentPredictor
from recsys.models.knn import UserKNN
from recsys.models.profiles import ProfileKNN


@pytest.fixture(scope="module")
def ratings():
    rng = np.random.default_rng(7)
    n_users, n_items = 60, 50
    taste = rng.normal(size=(n_users, 3))
    traits = rng.normal(size=(n_items, 3))
    mask = rng.random((n_users, n_items)) < 0.3
    users, items = np.nonzero(mask)
    scores = 3 + (taste[users] * traits[items]).sum(axis=1) + rng.normal(scale=0.5, size=len(users))
    frame = pd.DataFrame({"user_id": users + 1, "item_id": items + 1, "rating": np.clip(np.round(scores), 1, 5)})
    return frame, ItemFeatures(np.arange(1, n_items + 1), traits, name="traits")


def test_rmse_vs_k_matches_direct_fits(ratings):
    frame, features = ratings
    splits = make_splits(frame, "kfold", seed=0, n_folds=3)
    calls = []
    result = rmse_vs_k(
        splits, {"ratings": None, "traits": features}, ks=[5, 20], progress=lambda d, t, m: calls.append((d, t))
    )
    assert list(result.columns[:5]) == ["representation", "fold", "k", "rmse", "mae"]
    assert len(result) == 2 * 3 * 2 and calls[-1] == (6, 6)
    fold = splits[1]
    direct = UserKNN(k=20).fit(fold.train).predict(fold.test.user_id, fold.test.item_id)
    row = result.query("representation == 'ratings' and fold == 1 and k == 20")
    assert row["rmse"].item() == pytest.approx(rmse(fold.test.rating, direct), abs=1e-12)
    direct = ProfileKNN(features, k=5).fit(fold.train).predict(fold.test.user_id, fold.test.item_id)
    row = result.query("representation == 'traits' and fold == 1 and k == 5")
    assert row["rmse"].item() == pytest.approx(rmse(fold.test.rating, direct), abs=1e-12)


def test_fusion_curve_endpoints_and_summary(ratings):
    frame, features = ratings
    splits = make_splits(frame, "cold_items", seed=0, item_share=0.2)
    holdout = make_splits(frame, "holdout", seed=1)
    train, test = holdout[0]
    curve = fusion_curve((train, test), features, weights=[0.0, 0.5, 1.0], k=10)
    cf = UserKNN(k=10).fit(train).predict(test.user_id, test.item_id)
    content = ContentPredictor(features).fit(train).predict(test.user_id, test.item_id)
    by_weight = curve[curve.subset == "all"].set_index("weight")["rmse"]
    assert by_weight[1.0] == pytest.approx(rmse(test.rating, cf))
    assert by_weight[0.0] == pytest.approx(rmse(test.rating, content))
    assert by_weight[0.5] == pytest.approx(rmse(test.rating, np.clip(0.5 * (cf + content), 1, 5)))
    summary = fusion_summary(curve)
    best = best_fusion_weight(curve)
    assert best["rmse"] == pytest.approx(by_weight.min())
    assert best["gain"] == pytest.approx(by_weight[1.0] - by_weight.min())
    assert summary.loc[summary.best & (summary.subset == "all"), "weight"].item() == best["weight"]
    cold_curve = fusion_curve(splits, features, weights=[0.0, 1.0], k=10)
    assert set(cold_curve.subset) == {"all", "cold-start"}
    # Estimators passed in are cloned per fold, so the same numbers come from explicit templates.
    explicit = fusion_curve(
        (train, test),
        features,
        weights=[0.0, 0.5, 1.0],
        cf_model=UserKNN(k=10),
        content_model=ContentPredictor(features),
    )
    pd.testing.assert_frame_equal(explicit, curve)
    with pytest.raises(InvalidParameter, match="must be an estimator"):
        fusion_curve((train, test), features, cf_model=lambda: UserKNN(k=10))


def test_rmse_vs_k_reports_fallback_share_and_refuses_fractional_k(ratings):
    frame, _ = ratings
    fold = make_splits(frame, "holdout", seed=0)[0]
    result = rmse_vs_k([fold], {"ratings": None}, ks=[1, 30], similarity="pearson")
    knn = UserKNN(similarity="pearson").fit(fold.train)
    curve = knn.predict_k_curve(fold.test.user_id, fold.test.item_id, [1, 30])
    assert result["fallback_share"].tolist() == pytest.approx(curve.fallback.mean(axis=1).tolist())
    # With Pearson some users have no positively correlated co-rater of the item: flagged, not hidden.
    assert (result["fallback_share"] > 0).all() and (result["fallback_share"] < 0.5).all()
    with pytest.raises(InvalidParameter, match="K \\(neighbours\\) must be a positive integer, got 2.5"):
        rmse_vs_k([fold], {"ratings": None}, ks=[2.5])


def test_cold_start_rmse_reports_user_mean_baseline(ratings):
    frame, features = ratings
    splits = make_splits(frame, "cold_items", seed=2, n_folds=2)
    template = ContentPredictor(features)
    result = cold_start_rmse(splits, {"content": template})
    assert set(result.model) == {"user mean", "content"} and len(result) == 4
    assert not hasattr(template, "user_votes_")  # each fold fitted a clone, the template is untouched
    fold = splits[0]
    means = fold.train.groupby("user_id").rating.mean()
    baseline = np.clip(fold.test.user_id.map(means).fillna(fold.train.rating.mean()), 1, 5)
    got = result.query("fold == 0 and model == 'user mean'")["rmse"].item()
    assert got == pytest.approx(rmse(fold.test.rating, baseline))
    # Features that carry the taste signal beat the user mean on items never seen in training.
    assert result.groupby("model").rmse.mean()["content"] < result.groupby("model").rmse.mean()["user mean"]
    with pytest.raises(ValueError, match="cold-start"):
        cold_start_rmse(make_splits(frame, "kfold", n_folds=2), {})
    # fallback_share: the user mean falls back exactly on users unseen in the fold's training data;
    # the content model also scores those cold items whose features give some weight.
    cold = fold.test[~fold.test.item_id.isin(fold.train.item_id)]
    unseen_users = float((~cold.user_id.isin(fold.train.user_id)).mean())
    shares = result.query("fold == 0").set_index("model")["fallback_share"]
    assert shares["user mean"] == pytest.approx(unseen_users)
    content = ContentPredictor(features).fit(fold.train).predict(cold.user_id, cold.item_id, return_fallback=True)
    assert shares["content"] == pytest.approx(content.fallback.mean()) and shares["content"] < 0.05
    with pytest.raises(InvalidParameter, match="must be an estimator"):
        cold_start_rmse(splits, {"content": lambda: ContentPredictor(features)})


def test_embedding_r2_in_sample_and_cross_validated(ratings):
    frame, features = ratings
    means = frame.groupby("item_id").rating.mean()
    exact = ItemFeatures(means.index, np.c_[means.to_numpy(), np.ones(len(means))], name="exact")
    rng = np.random.default_rng(0)
    noise = ItemFeatures(means.index, rng.normal(size=(len(means), 20)), name="noise")
    result = embedding_r2(frame, {"exact": exact, "noise": noise}, cv=5, alpha=0.0).set_index("representation")
    assert result.loc["exact", "r2_in_sample"] == pytest.approx(1.0)
    assert result.loc["exact", "r2_cv"] == pytest.approx(1.0)
    X = noise.aligned(means.index)[0]
    expected = LinearRegression().fit(X, means).score(X, means)
    assert result.loc["noise", "r2_in_sample"] == pytest.approx(expected)
    assert result.loc["noise", "r2_cv"] < result.loc["noise", "r2_in_sample"]
    assert result.loc["noise", "n_items"] == len(means) and result.loc["noise", "dim"] == 20


@pytest.mark.parametrize("cv", [1, 0, 2.5])
def test_embedding_r2_names_a_bad_fold_count(ratings, cv):
    frame, features = ratings
    # cv=1 used to surface as scikit-learn's KFold message, which names neither option nor fix.
    with pytest.raises(ValueError, match="cv must be a whole number of folds >= 2"):
        embedding_r2(frame, features, cv=cv)


def test_embedding_r2_refuses_folds_with_a_single_item(ratings):
    frame, _ = ratings
    means = frame.groupby("item_id").rating.mean()
    few = ItemFeatures(means.index[:9], np.random.default_rng(1).normal(size=(9, 3)), name="few")
    # 9 items in 5 folds leave folds of one item, whose R² is undefined (NaN): refuse, naming why.
    with pytest.raises(ValueError, match="only 9 rated items have features; need at least 10 for 5-fold"):
        embedding_r2(frame, few, cv=5)
    assert len(embedding_r2(frame, few, cv=4)) == 1
