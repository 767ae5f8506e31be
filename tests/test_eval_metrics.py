"""Rating metrics against scikit-learn and fold summaries against numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error

from recsys.eval.metrics import fold_summary, mae, mae_rows, rmse, rmse_rows, summarise_folds


def test_rmse_and_mae_match_sklearn():
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, 500).astype(float)
    predictions = rng.uniform(1, 5, size=(3, 500))
    for row in predictions:
        assert rmse(truth, row) == pytest.approx(np.sqrt(mean_squared_error(truth, row)), rel=1e-12)
        assert mae(truth, row) == pytest.approx(mean_absolute_error(truth, row), rel=1e-12)
    np.testing.assert_allclose(rmse_rows(truth, predictions), [rmse(truth, p) for p in predictions])
    np.testing.assert_allclose(mae_rows(truth, predictions), [mae(truth, p) for p in predictions])


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="3 true ratings but 2"):
        rmse([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="no ratings"):
        mae([], [])
    with pytest.raises(ValueError, match="NaN"):
        rmse([1.0, 2.0], [1.0, np.nan])


def test_fold_summary_and_grouped_summary():
    values = [0.91, 0.95, 0.93, 0.97, 0.90]
    summary = fold_summary(values)
    assert summary["mean"] == pytest.approx(np.mean(values))
    assert summary["median"] == pytest.approx(0.93)
    assert (summary["min"], summary["max"]) == (0.90, 0.97)
    assert summary["p10"] == pytest.approx(np.percentile(values, 10))
    assert summary["p90"] == pytest.approx(np.percentile(values, 90))
    assert summary["n_folds"] == 5
    assert np.isnan(fold_summary([])["mean"])
    frame = pd.DataFrame({"k": [10, 10, 20, 20], "fold": [0, 1, 0, 1], "rmse": [1.0, 0.8, 0.9, 0.7]})
    grouped = summarise_folds(frame, ["k"])
    assert grouped["k"].tolist() == [10, 20]
    np.testing.assert_allclose(grouped["mean"], [0.9, 0.8])
    with pytest.raises(ValueError, match="lacks"):
        summarise_folds(frame, ["weight"])
