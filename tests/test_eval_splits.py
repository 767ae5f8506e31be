"""Split properties: disjoint and complete, cold-start items absent from train, reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.errors import InvalidParameter, StorageError
from recsys.eval.splits import cached_splits, load_splits, make_splits, per_user_split, save_splits, split_path


@pytest.fixture(scope="module")
def ratings():
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(1, 80, n),
            "item_id": rng.integers(1, 120, n),
            "rating": rng.integers(1, 6, n).astype(np.float32),
        }
    )
    return frame.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)


def keys(frame):
    return set(zip(frame.user_id, frame.item_id))


@pytest.mark.parametrize("kind", ["holdout", "kfold", "per_user", "cold_items"])
def test_folds_are_disjoint_and_deterministic(ratings, kind):
    splits = make_splits(ratings, kind, seed=3, n_folds=5 if kind == "kfold" else None)
    again = make_splits(ratings, kind, seed=3, n_folds=5 if kind == "kfold" else None)
    other = make_splits(ratings, kind, seed=4, n_folds=5 if kind == "kfold" else None)
    assert not np.array_equal(splits[0].test_positions, other[0].test_positions)
    for fold, twin in zip(splits, again):
        assert not keys(fold.train) & keys(fold.test)
        assert len(fold.train) + len(fold.test) == len(ratings)
        assert np.array_equal(fold.test_positions, twin.test_positions)


def test_holdout_size_and_kfold_cover_everything_once(ratings):
    holdout = make_splits(ratings, "holdout", seed=0, test_size=0.2)
    assert len(holdout) == 1 and len(holdout[0].test) == round(0.2 * len(ratings))
    kfold = make_splits(ratings, "kfold", seed=0, n_folds=5)
    positions = np.concatenate([fold.test_positions for fold in kfold])
    assert len(kfold) == 5 and np.array_equal(np.sort(positions), np.arange(len(ratings)))


def test_per_user_keeps_every_user_in_train(ratings):
    fold = make_splits(ratings, "per_user", seed=0, test_size=0.25)[0]
    counts = ratings.groupby("user_id").size()
    assert set(fold.train.user_id) == set(ratings.user_id)
    test_counts = fold.test.groupby("user_id").size().reindex(counts.index, fill_value=0)
    assert (test_counts[counts >= 2] >= 1).all()
    assert (abs(test_counts - counts * 0.25) <= 1).all()


def test_cold_items_are_absent_from_train(ratings):
    splits = make_splits(ratings, "cold_items", seed=1, item_share=0.2)
    fold = splits[0]
    assert len(fold.cold_items) == round(0.2 * ratings.item_id.nunique())
    assert not set(fold.train.item_id) & set(fold.cold_items)
    assert set(fold.test.item_id) == set(fold.cold_items)
    partition = make_splits(ratings, "cold_items", seed=1, n_folds=4)
    assert len(partition) == 4
    assert sorted(np.concatenate([f.cold_items for f in partition])) == sorted(ratings.item_id.unique())


def test_save_load_roundtrip_and_fingerprint(ratings, tmp_path):
    splits = make_splits(ratings, "cold_items", seed=2, n_folds=3)
    path = save_splits(splits, tmp_path / "s.npz")
    loaded = load_splits(path, ratings)
    assert loaded.kind == "cold_items" and loaded.params == splits.params
    for a, b in zip(splits, loaded):
        pd.testing.assert_frame_equal(a.test, b.test)
        assert np.array_equal(a.cold_items, b.cold_items)
    changed = ratings.assign(rating=ratings.rating.where(ratings.index != 0, 5.0 if ratings.rating[0] != 5 else 1.0))
    with pytest.raises(ValueError, match="other ratings"):
        load_splits(path, changed)
    with pytest.raises(StorageError, match="no saved split"):
        load_splits(tmp_path / "missing.npz", ratings)


def test_cached_splits_reuses_saved_file(ratings, isolated_cache):
    first = cached_splits(ratings, "toy", "kfold", seed=0, n_folds=5)
    path = split_path("toy", "kfold", seed=0, n_folds=5)
    assert path.exists() and str(path).startswith(str(isolated_cache))
    second = cached_splits(ratings, "toy", "kfold", seed=0, n_folds=5)
    assert all(np.array_equal(a.test_positions, b.test_positions) for a, b in zip(first, second))


def test_bad_parameters_are_rejected(ratings):
    with pytest.raises(ValueError, match="unknown split kind"):
        make_splits(ratings, "temporal")
    with pytest.raises(ValueError, match="test_size"):
        make_splits(ratings, "holdout", test_size=1.5)
    with pytest.raises(InvalidParameter, match="n_folds must be an integer >= 2"):
        make_splits(ratings, "kfold", n_folds=1)
    with pytest.raises(InvalidParameter, match="n_folds must be an integer >= 2, got 2.5"):
        make_splits(ratings, "kfold", n_folds=2.5)


def test_cached_splits_replaces_an_unreadable_or_foreign_file(ratings, isolated_cache, caplog):
    path = split_path("toy", "holdout", seed=0, test_size=0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an npz")
    with caplog.at_level("INFO", logger="recsys.eval.splits"):
        splits = cached_splits(ratings, "toy", "holdout", seed=0)
    assert "unreadable" in caplog.text and "made and saved" in caplog.text
    assert np.array_equal(splits[0].test_positions, make_splits(ratings, "holdout", seed=0)[0].test_positions)
    caplog.clear()
    with caplog.at_level("INFO", logger="recsys.eval.splits"):
        cached_splits(ratings, "toy", "holdout", seed=0)
    assert "split loaded" in caplog.text
    other = ratings.assign(rating=6 - ratings.rating)  # same name, other ratings: made again, not reused
    caplog.clear()
    with caplog.at_level("INFO", logger="recsys.eval.splits"):
        cached_splits(other, "toy", "holdout", seed=0)
    assert "other ratings" in caplog.text and "made and saved" in caplog.text


def test_per_user_split_is_the_saved_per_user_split(ratings, isolated_cache):
    train, test = per_user_split(ratings, test_size=0.2, seed=3)
    fold = make_splits(ratings, "per_user", seed=3, test_size=0.2)[0]
    pd.testing.assert_frame_equal(train, fold.train)
    pd.testing.assert_frame_equal(test, fold.test)
    saved_train, saved_test = per_user_split(ratings, test_size=0.2, seed=3, dataset_name="toy")
    assert split_path("toy", "per_user", seed=3, test_size=0.2).exists()
    pd.testing.assert_frame_equal(saved_test, fold.test)
    assert not per_user_split(ratings, test_size=0.2, seed=4)[1].equals(test)
