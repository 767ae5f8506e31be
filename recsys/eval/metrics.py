"""Rating-error metrics and fold summaries (the bands the VT2 paper plots).

Top-N ranking metrics live in `recsys.eval.ranking_metrics`; this module only scores rating
predictions, so it never needs to know which model produced them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SUMMARY_STATISTICS = ("mean", "median", "min", "max", "p10", "p90", "std", "n_folds")


def _check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} true ratings but {len(y_pred)} predictions")
    if y_true.size == 0:
        raise ValueError("no ratings to score")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ValueError("ratings or predictions contain NaN or infinity")
    return y_true, y_pred


def rmse(y_true, y_pred) -> float:
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true, y_pred) -> float:
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse_rows(y_true, predictions: np.ndarray) -> np.ndarray:
    """RMSE of every row of a (n_settings, n_pairs) prediction matrix against one truth vector."""
    predictions = np.atleast_2d(np.asarray(predictions, dtype=np.float64))
    y_true, _ = _check_pair(y_true, predictions[0])
    return np.sqrt(np.mean((predictions - y_true) ** 2, axis=1))


def mae_rows(y_true, predictions: np.ndarray) -> np.ndarray:
    predictions = np.atleast_2d(np.asarray(predictions, dtype=np.float64))
    y_true, _ = _check_pair(y_true, predictions[0])
    return np.mean(np.abs(predictions - y_true), axis=1)


def fold_summary(values: Sequence[float]) -> dict:
    """mean, median, min, max, 10th/90th percentiles, std (ddof=0) and count of per-fold values."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {name: (0 if name == "n_folds" else np.nan) for name in SUMMARY_STATISTICS}
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "min": float(values.min()),
        "max": float(values.max()),
        "p10": float(np.percentile(values, 10)),
        "p90": float(np.percentile(values, 90)),
        "std": float(values.std()),
        "n_folds": int(values.size),
    }


def summarise_folds(frame: pd.DataFrame, by: Sequence[str], value: str = "rmse") -> pd.DataFrame:
    """One row per group of `by` with the fold summary of column `value` (tidy, flat columns)."""
    missing = set(by) | {value}
    missing -= set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}")
    rows = []
    for key, group in frame.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "metric": value, **fold_summary(group[value].to_numpy())})
    return pd.DataFrame(rows, columns=[*by, "metric", *SUMMARY_STATISTICS])
