"""Shared machinery of the implicit-feedback rankers (MostPop, ItemKNN, BPR-MF, VBPR).

A ranker learns from which items each user rated (optionally only ratings >= a threshold) and
exposes two things:

- ``score(user_ids, item_ids=None) -> (len(user_ids), len(item_ids))`` float scores, higher is
  better, columns in ``item_ids`` order (default: the model's ``item_ids_``); items the model
  cannot score get ``-inf`` and users it never saw get the model's user-independent scores
  (:meth:`_fallback_scores`, e.g. popularity).
- ``recommend(user_ids=None, n=None, *, exclude_seen=True, candidates=None)`` from
  :class:`~recsys.models.base.TopNRecommender`, built on ``score``: ties broken by the lower item
  id, training items removed unless ``exclude_seen=False``, ``fallback`` True for unknown users.

Subclasses implement ``_fit(interactions)`` and ``_score_codes(user_codes) -> (users, items_)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.errors import InvalidInput
from recsys.models.base import (
    TOPN_COLUMNS,
    BaseEstimator,
    TopNRecommender,
    check_count,
    check_is_fitted,
    check_ratings_frame,
    empty_topn,
)

_BLOCK_USERS = 2048


def top_k(scores: np.ndarray, k: int, excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` columns per row, best first, ties broken by the lower column: (codes, scores).

    `excluded` (same shape, bool) masks columns out; rows with fewer than `k` rankable columns
    (finite score or +inf, not excluded) are padded with code -1 and score -inf. NaN scores are
    refused. ``argpartition`` does the selection (O(n) per row); only rows whose k-th score is
    tied with columns left outside the selection are re-ranked with a stable full sort.
    """
    k = check_count(k, "k")
    s = np.array(scores, dtype=np.float64, copy=True)
    if s.ndim != 2:
        raise InvalidInput(f"scores must be a (users x items) matrix, got shape {s.shape}")
    if np.isnan(s).any():
        raise InvalidInput("scores contain NaN: the model produced an undefined score")
    if excluded is not None:
        s[np.asarray(excluded, dtype=bool)] = -np.inf
    n_rows, n_cols = s.shape
    width = min(k, n_cols)
    if n_cols == 0 or n_rows == 0:
        return np.full((n_rows, k), -1, dtype=np.int64), np.full((n_rows, k), -np.inf)
    neg = -s
    if width < n_cols:
        chosen = np.argpartition(neg, width - 1, axis=1)[:, :width]
    else:
        chosen = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    chosen.sort(axis=1)  # column order first, so the stable sort below breaks ties by lower column
    values = np.take_along_axis(s, chosen, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    codes = np.take_along_axis(chosen, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    if width < n_cols:
        kth = values[:, -1:]
        ambiguous = ((s == kth).sum(axis=1) > (values == kth).sum(axis=1)) & np.isfinite(kth[:, 0])
        for row in np.flatnonzero(ambiguous):
            best = np.argsort(neg[row], kind="stable")[:width]
            codes[row], values[row] = best, s[row, best]
    codes = np.where(np.isneginf(values), -1, codes)
    if width < k:
        codes = np.hstack([codes, np.full((n_rows, k - width), -1, dtype=codes.dtype)])
        values = np.hstack([values, np.full((n_rows, k - width), -np.inf)])
    return codes.astype(np.int64), values


class Interactions:
    """Users x items implicit feedback from a ratings frame: codes, the CSR pattern, the ratings."""

    def __init__(self, train: pd.DataFrame, positive_threshold: float | None = None):
        check_ratings_frame(train)
        frame = train[["user_id", "item_id", "rating"]]
        if not np.isfinite(frame["rating"].to_numpy(dtype=np.float64)).all():
            raise InvalidInput("training ratings contain NaN or infinite values")
        frame = frame.drop_duplicates(["user_id", "item_id"], keep="first")
        # Every rated item is known (it can be sampled as a negative, it is excluded as seen);
        # only pairs at or above the threshold are positives.
        self.user_ids = np.sort(frame["user_id"].unique()).astype(np.int64)
        self.item_ids = np.sort(frame["item_id"].unique()).astype(np.int64)
        self.user_index = pd.Index(self.user_ids)
        self.item_index = pd.Index(self.item_ids)
        rows = self.user_index.get_indexer(frame["user_id"].to_numpy())
        cols = self.item_index.get_indexer(frame["item_id"].to_numpy())
        ratings = frame["rating"].to_numpy(dtype=np.float64)
        shape = (len(self.user_ids), len(self.item_ids))
        self.rated = sp.csr_matrix((ratings, (rows, cols)), shape=shape)
        self.rated.sort_indices()
        positive = np.ones(len(ratings), dtype=bool) if positive_threshold is None else ratings >= positive_threshold
        if not positive.any():
            raise InvalidInput(f"no training rating reaches the positive threshold {positive_threshold}")
        self.pos_users = rows[positive].astype(np.int64)
        self.pos_items = cols[positive].astype(np.int64)
        self.pos_ratings = ratings[positive]
        self.positives = sp.csr_matrix(
            (np.ones(int(positive.sum()), dtype=np.float32), (self.pos_users, self.pos_items)), shape=shape
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self.rated.shape


class ImplicitRanker(BaseEstimator, TopNRecommender):
    """Base class: ``fit(train)`` -> self, ``score``, ``recommend`` (see the module docstring)."""

    def _positive_threshold(self) -> float | None:
        return getattr(self, "positive_threshold", None)

    def fit(self, train: pd.DataFrame, progress=None):
        self._validate_params()
        interactions = Interactions(train, self._positive_threshold())
        self.user_ids_ = interactions.user_ids
        self.train_item_ids_ = interactions.item_ids
        self._seen = interactions.rated.astype(bool)
        self.item_ids_ = interactions.item_ids  # _fit may widen it (items scored from features)
        self._fit(interactions, progress)
        return self

    # -- subclass hooks --
    def _validate_params(self) -> None:
        pass

    def _fit(self, interactions: Interactions, progress) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _score_codes(self, user_codes: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def _fallback_scores(self) -> np.ndarray:
        """Scores over ``item_ids_`` for a user the model never saw (default: all equal)."""
        return np.zeros(len(self.item_ids_))

    # -- scoring --
    def user_codes(self, user_ids) -> np.ndarray:
        check_is_fitted(self, "user_ids_")
        return pd.Index(self.user_ids_).get_indexer(np.asarray(user_ids, dtype=np.int64).ravel())

    def score(self, user_ids, item_ids=None) -> np.ndarray:
        """(len(user_ids) x len(item_ids)) scores; see the module docstring for unknowns."""
        check_is_fitted(self, "user_ids_")
        user_ids = np.asarray(user_ids, dtype=np.int64).ravel()
        codes = self.user_codes(user_ids)
        out = np.empty((len(user_ids), len(self.item_ids_)), dtype=np.float64)
        known = codes >= 0
        if known.any():
            out[known] = self._score_codes(codes[known])
        if (~known).any():
            out[~known] = self._fallback_scores()
        if item_ids is None:
            return out
        positions = pd.Index(self.item_ids_).get_indexer(np.asarray(item_ids, dtype=np.int64).ravel())
        aligned = np.full((len(user_ids), len(positions)), -np.inf)
        aligned[:, positions >= 0] = out[:, positions[positions >= 0]]
        return aligned

    def seen_items(self, user_id) -> np.ndarray:
        """Item ids the user rated in training (what ``exclude_seen`` removes)."""
        code = self.user_codes([user_id])[0]
        if code < 0:
            return np.array([], dtype=np.int64)
        return self.train_item_ids_[self._seen[code].indices]

    def recommend(
        self, user_ids=None, n: int | None = None, *, exclude_seen: bool = True, candidates=None
    ) -> pd.DataFrame:
        """Top-`n` frame ``user_id, rank, item_id, score, fallback`` (see TopNRecommender): every
        training user when `user_ids` is None, 10 items when `n` is None."""
        check_is_fitted(self, "user_ids_")
        n = self._list_length(n)
        user_ids = self.user_ids_ if user_ids is None else user_ids
        user_ids = np.asarray(list(np.atleast_1d(user_ids)), dtype=np.int64)
        items = self.item_ids_ if candidates is None else np.unique(np.asarray(list(candidates), dtype=np.int64))
        if len(user_ids) == 0 or len(items) == 0:
            return empty_topn()
        frames = []
        seen_columns = pd.Index(items).get_indexer(self.train_item_ids_)
        for start in range(0, len(user_ids), _BLOCK_USERS):
            batch = user_ids[start : start + _BLOCK_USERS]
            scores = self.score(batch, items)
            codes = self.user_codes(batch)
            excluded = np.zeros(scores.shape, dtype=bool)
            if exclude_seen and (codes >= 0).any():
                seen = self._seen[codes[codes >= 0]].tocoo()
                columns = seen_columns[seen.col]
                keep = columns >= 0
                excluded[np.flatnonzero(codes >= 0)[seen.row[keep]], columns[keep]] = True
            top, values = top_k(scores, n, excluded)
            rows, slots = np.nonzero(top >= 0)
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": batch[rows],
                        "rank": slots + 1,
                        "item_id": items[top[rows, slots]],
                        "score": values[rows, slots],
                        "fallback": codes[rows] < 0,
                    }
                )
            )
        frame = pd.concat(frames, ignore_index=True)[TOPN_COLUMNS]
        return frame.astype({"user_id": np.int64, "rank": np.int64, "item_id": np.int64, "fallback": bool})
