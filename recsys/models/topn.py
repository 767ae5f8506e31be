"""Top-N recommendation from any fitted rating predictor, excluding items the user already rated.

Scores are the model's predicted ratings; ties are broken by lower item id so lists are
deterministic. Candidates default to every item the training data knows (pass `candidates` to
include cold-start items that a content model can score).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from recsys.models.base import RatingPredictor, check_ratings_frame

# Pairs scored per predict call: bounds memory for big catalogues x many users.
_PAIRS_PER_CALL = 500_000


def _rated_items(train: pd.DataFrame) -> dict:
    return {user: set(items) for user, items in train.groupby("user_id")["item_id"]}


def _fallback_flags(model: RatingPredictor, n_pairs: int) -> np.ndarray:
    """Per scored pair: did the last predict fall back (no evidence, unseen user or item)?"""
    flags = np.zeros(n_pairs, dtype=bool)
    for attribute in ("last_fallback_", "last_unknown_"):
        values = getattr(model, attribute, None)
        if values is not None and np.shape(values) == (n_pairs,):
            flags |= np.asarray(values, dtype=bool)
    return flags


def recommend_many(
    model: RatingPredictor,
    train: pd.DataFrame,
    user_ids: Iterable[int],
    n: int = 10,
    candidates: Iterable[int] | None = None,
    exclude_rated: bool = True,
    progress=None,
) -> pd.DataFrame:
    """Top-`n` items per user: tidy frame [user_id, rank (1-based), item_id, score, fallback].

    `train` is the frame the model was fitted on (it says what each user already rated).
    Users unknown to `train` still get a list, from the model's fallback scores (for most models
    a constant, so the order is just item id): `fallback` is True wherever the model reported
    (`last_fallback_` / `last_unknown_`) that it had no evidence for that pair, so callers can
    show such lists as what they are instead of as recommendations.
    """
    check_ratings_frame(train)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    user_ids = np.asarray(list(user_ids), dtype=np.int64)
    candidates = np.sort(
        np.asarray(train["item_id"].unique() if candidates is None else list(candidates), dtype=np.int64)
    )
    candidates = np.unique(candidates)
    rated = _rated_items(train) if exclude_rated else {}
    users_per_call = max(1, _PAIRS_PER_CALL // max(len(candidates), 1))
    frames = []
    for start in range(0, len(user_ids), users_per_call):
        batch = user_ids[start : start + users_per_call]
        scores = model.predict(np.repeat(batch, len(candidates)), np.tile(candidates, len(batch)))
        scores = np.asarray(scores, dtype=np.float64).reshape(len(batch), len(candidates))
        no_evidence = _fallback_flags(model, scores.size).reshape(scores.shape)
        for row, user in enumerate(batch):
            user_scores = scores[row]
            keep = np.ones(len(candidates), dtype=bool)
            if user in rated:
                keep &= ~np.isin(candidates, list(rated[user]))
            items, values, flags = candidates[keep], user_scores[keep], no_evidence[row][keep]
            # lexsort: last key is primary -> descending score, then ascending item id.
            order = np.lexsort((items, -values))[:n]
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": user,
                        "rank": np.arange(1, len(order) + 1),
                        "item_id": items[order],
                        "score": values[order],
                        "fallback": flags[order],
                    }
                )
            )
        if progress is not None:
            progress(min(start + users_per_call, len(user_ids)), len(user_ids), "scoring candidate items")
    if not frames:
        return pd.DataFrame(
            {
                "user_id": pd.Series(dtype=np.int64),
                "rank": pd.Series(dtype=np.int64),
                "item_id": pd.Series(dtype=np.int64),
                "score": pd.Series(dtype=np.float64),
                "fallback": pd.Series(dtype=bool),
            }
        )
    return pd.concat(frames, ignore_index=True)


def recommend(
    model: RatingPredictor,
    train: pd.DataFrame,
    user_id: int,
    n: int = 10,
    candidates: Iterable[int] | None = None,
    exclude_rated: bool = True,
) -> pd.DataFrame:
    """Top-`n` list for one user: frame [rank, item_id, score, fallback]."""
    frame = recommend_many(model, train, [user_id], n=n, candidates=candidates, exclude_rated=exclude_rated)
    return frame.drop(columns="user_id")
