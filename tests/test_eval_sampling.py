"""Stated samples of costly experiments: only test ratings are sampled, and the sample says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.errors import InvalidParameter
from recsys.eval.experiments import rmse_vs_k
from recsys.eval.sampling import sample_for_experiment
from recsys.eval.splits import make_splits


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    mask = rng.random((120, 40)) < 0.3
    users, items = np.nonzero(mask)
    return pd.DataFrame({"user_id": users + 1, "item_id": items + 1, "rating": rng.integers(1, 6, len(users)) * 1.0})


def test_sample_keeps_training_whole_and_limits_test_users_and_ratings(ratings):
    splits = make_splits(ratings, "kfold", seed=0, n_folds=3)
    sample = sample_for_experiment(splits, max_test=150, max_users=30, seed=4)
    assert sample.sampled and len(sample.folds) == 3
    for full, kept in zip(splits, sample.folds):
        assert kept.train is full.train  # neighbours and means from every training rating
        assert kept.test["user_id"].nunique() <= 30 and len(kept.test) <= 150
        merged = kept.test.merge(full.test, on=["user_id", "item_id", "rating"], how="left", indicator=True)
        assert (merged["_merge"] == "both").all()  # a subset of the fold's test ratings
        np.testing.assert_array_equal(ratings.iloc[kept.test_positions]["item_id"], kept.test["item_id"])
    assert sample.n_test == sum(len(f.test) for f in sample.folds) and sample.n_test_total == len(ratings)
    assert "test ratings of 30 of" in sample.description and "seed 4" in sample.description
    again = sample_for_experiment(splits, max_test=150, max_users=30, seed=4)
    pd.testing.assert_frame_equal(again.folds[1].test, sample.folds[1].test)


def test_sampled_predictions_equal_the_full_runs_on_those_pairs(ratings):
    splits = make_splits(ratings, "holdout", seed=0)
    full = rmse_vs_k(splits, {"ratings": None}, ks=[5])
    sample = sample_for_experiment(splits, max_users=20, max_test=None, seed=1)
    from recsys.models.knn import UserKNN

    fold, kept = splits[0], sample.folds[0]
    model = UserKNN(k=5).fit(fold.train)
    everything = pd.Series(model.predict(fold.test.user_id, fold.test.item_id), index=fold.test_positions)
    np.testing.assert_array_equal(model.predict(kept.test.user_id, kept.test.item_id), everything[kept.test_positions])
    assert rmse_vs_k(sample.folds, {"ratings": None}, ks=[5])["n_test"].iloc[0] < full["n_test"].iloc[0]


def test_within_the_limits_nothing_is_sampled(ratings):
    splits = make_splits(ratings, "holdout", seed=0)
    sample = sample_for_experiment(splits)  # 10,000 users / 1,000,000 ratings
    assert not sample.sampled and sample.folds[0] is splits[0]
    assert sample.description.startswith("all ") and "(no sample)" in sample.description
    assert sample_for_experiment(splits, max_test=None, max_users=None).folds[0] is splits[0]
    with pytest.raises(InvalidParameter, match="max_users must be a positive integer"):
        sample_for_experiment(splits, max_users=0)


def test_cli_states_the_sample_and_runs_in_full_with_full(ratings, tmp_path, capsys, shared_data_dir):
    from recsys.cli import main

    common = ["evaluate", "rmse-k", "--dataset", "ml-100k", "--data-dir", str(shared_data_dir)]
    common += ["--representations", "ratings", "--k", "10"]
    assert main([*common, "--max-users", "50"]) == 0
    out = capsys.readouterr().out
    assert "sample: test ratings of 50 of 943 test users" in out
    assert main([*common, "--full"]) == 0
    out = capsys.readouterr().out
    assert "all 20,000 test ratings of 943 test users (no sample)" in out
