"""Ranking metrics on hand-made lists with known answers, and against scikit-learn / scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import ndcg_score

from recsys.eval import ranking_metrics as rm

# Catalogue of 6 items with ids 10..15; the user liked 11, 13 and 15.
RELEVANT = {11, 13, 15}
LIST = [13, 10, 11, 12, 14]  # hits at ranks 1 and 3


def test_single_list_metrics_known_answers():
    assert rm.precision_at_n(LIST, RELEVANT, 5) == pytest.approx(2 / 5)
    assert rm.recall_at_n(LIST, RELEVANT, 5) == pytest.approx(2 / 3)
    assert rm.f1_at_n(LIST, RELEVANT, 5) == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert rm.ndcg_at_n(LIST, RELEVANT, 5) == pytest.approx(dcg / idcg)
    assert rm.hit_at_n(LIST, RELEVANT, 5) == 1.0
    assert rm.hit_at_n([10, 12], RELEVANT, 2) == 0.0
    # Truncation: only the first N count; a short list is charged for its empty slots.
    assert rm.precision_at_n(LIST, RELEVANT, 2) == pytest.approx(1 / 2)
    assert rm.precision_at_n([11], RELEVANT, 5) == pytest.approx(1 / 5)
    assert rm.f1_at_n([10, 12], RELEVANT, 2) == 0.0


def test_bad_lists_are_rejected():
    with pytest.raises(ValueError, match="repeats"):
        rm.precision_at_n([11, 11], RELEVANT, 2)
    with pytest.raises(ValueError, match="undefined"):
        rm.recall_at_n(LIST, set(), 5)
    with pytest.raises(ValueError, match="positive integer"):
        rm.precision_at_n(LIST, RELEVANT, 0)


def test_ndcg_matches_scikit_learn():
    rng = np.random.default_rng(3)
    catalogue = np.arange(30)
    for _ in range(20):
        relevant = set(rng.choice(catalogue, size=rng.integers(1, 8), replace=False).tolist())
        ranked = rng.permutation(catalogue)[:5].tolist()
        y_true = np.isin(catalogue, list(relevant)).astype(float)[None, :]
        y_score = np.zeros(len(catalogue))
        y_score[ranked] = np.arange(len(ranked), 0, -1)  # distinct scores in list order, rest 0
        expected = ndcg_score(y_true, y_score[None, :], k=5)
        assert rm.ndcg_at_n(ranked, relevant, 5) == pytest.approx(expected)


def test_genre_count_and_coverage():
    genres = pd.DataFrame(
        {"Action": [1, 0, 1, 0], "Comedy": [0, 1, 1, 0], "Drama": [0, 0, 0, 1]},
        index=pd.Index([1, 2, 3, 4], name="item_id"),
    )
    assert rm.genre_count([1, 3], genres) == 2
    assert rm.genre_count([1, 2, 4], genres) == 3
    assert rm.genre_count([], genres) == 0
    with pytest.raises(ValueError, match="no genre row"):
        rm.genre_count([99], genres)
    assert rm.catalogue_coverage([[1, 2], [2, 3]], 10) == pytest.approx(0.3)


def test_vectorised_metrics_equal_single_list_functions():
    rng = np.random.default_rng(0)
    item_ids = np.arange(100, 140)
    n_users, n = 25, 5
    relevant = rng.random((n_users, len(item_ids))) < 0.1
    relevant[0] = False  # a user without relevant items is dropped
    recs = np.array([rng.permutation(len(item_ids))[:n] for _ in range(n_users)])
    recs[1, 3:] = -1  # a short list
    genre_matrix = rng.random((len(item_ids), 6)) < 0.3
    popularity = rng.random(len(item_ids))
    frame = rm.per_user_metrics(recs, np.arange(n_users), item_ids, relevant, n, genre_matrix, popularity)
    assert list(frame["user_id"]) == [u for u in range(n_users) if relevant[u].any()]
    genres = pd.DataFrame(genre_matrix.astype(int), index=item_ids)
    for row in frame.itertuples():
        codes = [c for c in recs[row.user_id] if c >= 0]
        listed = item_ids[codes].tolist()
        liked = set(item_ids[relevant[row.user_id]].tolist())
        assert row.precision == pytest.approx(rm.precision_at_n(listed, liked, n))
        assert row.recall == pytest.approx(rm.recall_at_n(listed, liked, n))
        assert row.f1 == pytest.approx(rm.f1_at_n(listed, liked, n))
        assert row.ndcg == pytest.approx(rm.ndcg_at_n(listed, liked, n))
        assert row.hit_rate == rm.hit_at_n(listed, liked, n)
        assert row.genre_diversity == rm.genre_count(listed, genres)
        assert row.popularity == pytest.approx(popularity[codes].mean())
    codes = rm.lists_to_codes([item_ids[[c for c in r if c >= 0]] for r in recs], item_ids, n)
    np.testing.assert_array_equal(codes, recs)


def test_mean_ci_is_the_student_t_interval():
    values = np.array([0.0, 0.2, 0.4, 0.4, 1.0])
    mean, low, high = rm.mean_ci(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(0.4)
    assert (low, high) == pytest.approx(expected)
    assert np.isnan(rm.mean_ci([1.0])[1])


def test_coverage_bootstrap_interval_brackets_point_estimate():
    rng = np.random.default_rng(1)
    recs = rng.integers(0, 2000, size=(300, 5))
    point, low, high = rm.coverage_with_ci(recs, 2000, n_boot=200)
    assert point == pytest.approx(len(np.unique(recs)) / 2000)
    assert low < point < high
    # The spread is re-centred on the estimate: resampling users only ever loses items, so raw
    # percentiles would lie entirely below the estimate.
    assert high - low < 0.2


def test_paired_test_detects_a_shift_and_reports_no_difference_for_equal_settings():
    rng = np.random.default_rng(2)
    base = rng.random(200)
    better = base + 0.05 + rng.normal(0, 0.02, 200)
    result = rm.paired_test(better, base)
    assert result["mean_diff"] == pytest.approx(np.mean(better - base))
    assert result["t_p"] == pytest.approx(stats.ttest_rel(better, base).pvalue)
    assert result["t_p"] < 1e-10 and result["wilcoxon_p"] < 1e-10
    same = rm.paired_test(base, base)
    assert same["t_p"] == 1.0 and same["wilcoxon_p"] == 1.0 and same["mean_diff"] == 0.0


def test_holm_adjustment():
    adjusted = rm.holm_adjust([0.01, 0.04, np.nan, 0.03])
    np.testing.assert_allclose(adjusted[[0, 1, 3]], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[2])
