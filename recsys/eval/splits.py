"""Train/test splits that the app, the CLI and the benchmarks share.

Kinds (all deterministic for a seed):
- "holdout":    one random split, `test_size` of the ratings in test;
- "kfold":      `n_folds` disjoint test folds covering every rating once;
- "per_user":   every user keeps (1 − test_size) of their ratings in train and the rest in test
                (at least one rating each side for users with two or more ratings; users with a
                single rating stay in train);
- "cold_items": a share `item_share` of the items is held out entirely: all their ratings are in
                test and none in train (`n_folds` > 1 partitions the items instead).

A split is stored as the test row positions of each fold (train = the other rows, so folds are
disjoint by construction) plus a fingerprint of the ratings, as an .npz under
``cache_dir()/splits``. Loading checks the fingerprint, so a split is never silently applied to
different ratings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.cache import atomic_save
from recsys.config import cache_dir
from recsys.errors import InvalidInput, InvalidParameter, StorageError
from recsys.models.base import check_count, check_ratings_frame

logger = logging.getLogger(__name__)

SPLIT_KINDS = ("holdout", "kfold", "per_user", "cold_items")


@dataclass
class Fold:
    """One train/test pair. `cold_items` lists the held-out items of a cold-start split."""

    fold: int
    train: pd.DataFrame
    test: pd.DataFrame
    test_positions: np.ndarray
    cold_items: np.ndarray | None = None

    def __iter__(self):  # `train, test = fold`
        return iter((self.train, self.test))


@dataclass
class Splits:
    kind: str
    params: dict
    fingerprint: str
    folds: list[Fold] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.folds)

    def __iter__(self):
        return iter(self.folds)

    def __getitem__(self, index: int) -> Fold:
        return self.folds[index]


def ratings_fingerprint(ratings: pd.DataFrame) -> str:
    """Hash of the (user, item, rating) rows in order: identifies the data a split belongs to."""
    check_ratings_frame(ratings)
    digest = hashlib.sha1()
    for column, dtype in (("user_id", np.int64), ("item_id", np.int64), ("rating", np.float64)):
        digest.update(np.ascontiguousarray(ratings[column].to_numpy(dtype=dtype)).tobytes())
    return digest.hexdigest()[:16]


def _check_share(value: float, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{what} must be between 0 and 1 (exclusive), got {value!r}") from None
    if not 0.0 < value < 1.0:
        raise InvalidParameter(f"{what} must be between 0 and 1 (exclusive), got {value}")
    return value


def _check_folds(n_folds: int) -> int:
    return check_count(n_folds, "n_folds", minimum=2)


def _holdout(ratings, rng, test_size):
    n_test = int(round(len(ratings) * _check_share(test_size, "test_size")))
    if not 0 < n_test < len(ratings):
        raise InvalidParameter(f"test_size {test_size} leaves an empty train or test set for {len(ratings)} ratings")
    return [np.sort(rng.permutation(len(ratings))[:n_test])], [None]


def _kfold(ratings, rng, n_folds):
    n_folds = _check_folds(n_folds)
    if len(ratings) < n_folds:
        raise InvalidParameter(f"{len(ratings)} ratings cannot fill {n_folds} folds")
    permutation = rng.permutation(len(ratings))
    return [np.sort(part) for part in np.array_split(permutation, n_folds)], [None] * n_folds


def _per_user(ratings, rng, test_size):
    test_size = _check_share(test_size, "test_size")
    users = ratings["user_id"].to_numpy()
    # Random order within each user: shuffle once, then group stably by user.
    shuffled = rng.permutation(len(ratings))
    shuffled = shuffled[np.argsort(users[shuffled], kind="stable")]
    grouped_users = users[shuffled]
    starts = np.flatnonzero(np.r_[True, grouped_users[1:] != grouped_users[:-1]])
    counts = np.diff(np.r_[starts, len(shuffled)])
    n_test = np.where(counts >= 2, np.clip(np.round(counts * test_size), 1, counts - 1), 0).astype(np.int64)
    rank_in_user = np.arange(len(shuffled)) - np.repeat(starts, counts)
    in_test = rank_in_user < np.repeat(n_test, counts)
    return [np.sort(shuffled[in_test])], [None]


def _cold_items(ratings, rng, item_share, n_folds):
    items = np.sort(ratings["item_id"].unique())
    permuted = items[rng.permutation(len(items))]
    if n_folds is None or n_folds == 1:
        n_cold = int(round(len(items) * _check_share(item_share, "item_share")))
        if not 0 < n_cold < len(items):
            raise InvalidParameter(f"item_share {item_share} holds out no item or every item of {len(items)}")
        groups = [permuted[:n_cold]]
    else:
        groups = np.array_split(permuted, _check_folds(n_folds))
    item_ids = ratings["item_id"].to_numpy()
    positions = [np.flatnonzero(np.isin(item_ids, group)) for group in groups]
    return positions, [np.sort(group) for group in groups]


def make_splits(
    ratings: pd.DataFrame,
    kind: str = "holdout",
    seed: int = 0,
    test_size: float = 0.2,
    n_folds: int | None = None,
    item_share: float = 0.2,
) -> Splits:
    """Split `ratings` (see the module docstring for the kinds); deterministic for `seed`."""
    check_ratings_frame(ratings)
    rng = np.random.default_rng(seed)
    if kind == "holdout":
        params = {"seed": seed, "test_size": test_size}
        positions, cold = _holdout(ratings, rng, test_size)
    elif kind == "kfold":
        params = {"seed": seed, "n_folds": n_folds or 5}
        positions, cold = _kfold(ratings, rng, n_folds or 5)
    elif kind == "per_user":
        params = {"seed": seed, "test_size": test_size}
        positions, cold = _per_user(ratings, rng, test_size)
    elif kind == "cold_items":
        params = {"seed": seed, "item_share": item_share, "n_folds": n_folds or 1}
        positions, cold = _cold_items(ratings, rng, item_share, n_folds)
    else:
        raise InvalidParameter(f"unknown split kind {kind!r}; choose from {', '.join(SPLIT_KINDS)}")
    logger.debug("made a %s split %s (%d folds) of %d ratings", kind, params, len(positions), len(ratings))
    return _assemble(ratings, kind, params, ratings_fingerprint(ratings), positions, cold)


def _assemble(ratings, kind, params, fingerprint, positions, cold) -> Splits:
    folds = []
    for number, (test_positions, cold_items) in enumerate(zip(positions, cold)):
        in_test = np.zeros(len(ratings), dtype=bool)
        in_test[test_positions] = True
        folds.append(
            Fold(
                fold=number,
                train=ratings.iloc[np.flatnonzero(~in_test)].reset_index(drop=True),
                test=ratings.iloc[test_positions].reset_index(drop=True),
                test_positions=np.asarray(test_positions, dtype=np.int64),
                cold_items=cold_items,
            )
        )
    return Splits(kind=kind, params=params, fingerprint=fingerprint, folds=folds)


# ---- persistence ------------------------------------------------------------------------------
def save_splits(splits: Splits, path: str | Path) -> Path:
    """Write `splits` as an .npz atomically (an interrupted save never leaves a half-written split)."""
    path = Path(path)
    arrays = {f"test_{fold.fold}": fold.test_positions for fold in splits}
    arrays.update({f"cold_{fold.fold}": fold.cold_items for fold in splits if fold.cold_items is not None})
    header = json.dumps(
        {"kind": splits.kind, "params": splits.params, "fingerprint": splits.fingerprint, "n_folds": len(splits)}
    )
    atomic_save(path, lambda tmp: np.savez_compressed(tmp, header=np.array(header), **arrays))
    return path


def load_splits(path: str | Path, ratings: pd.DataFrame) -> Splits:
    """Re-create the folds of a saved split on `ratings`; refuses ratings with another fingerprint."""
    path = Path(path)
    if not path.exists():
        raise StorageError(f"no saved split at {path}")
    with np.load(path, allow_pickle=False) as stored:
        header = json.loads(str(stored["header"]))
        positions = [stored[f"test_{number}"] for number in range(header["n_folds"])]
        cold = [stored[f"cold_{n}"] if f"cold_{n}" in stored.files else None for n in range(header["n_folds"])]
    fingerprint = ratings_fingerprint(ratings)
    if fingerprint != header["fingerprint"]:
        raise InvalidInput(
            f"split {path.name} was made for other ratings (fingerprint {header['fingerprint']}, "
            f"these ratings {fingerprint}); make a new split"
        )
    return _assemble(ratings, header["kind"], header["params"], fingerprint, positions, cold)


def split_path(dataset_name: str, kind: str, **params) -> Path:
    label = "-".join(f"{key}{params[key]}" for key in sorted(params) if params[key] is not None)
    return cache_dir() / "splits" / f"{dataset_name}-{kind}-{label}.npz"


def cached_splits(
    ratings: pd.DataFrame,
    dataset_name: str,
    kind: str = "holdout",
    seed: int = 0,
    test_size: float = 0.2,
    n_folds: int | None = None,
    item_share: float = 0.2,
) -> Splits:
    """The saved split for these settings if it exists for these ratings, else a new one (saved).

    A saved split of the same name made for other ratings (the dataset changed) or unreadable is
    replaced, with a logged note; a cache folder that cannot be written only costs the saving.
    """
    relevant = {
        "holdout": {"seed": seed, "test_size": test_size},
        "kfold": {"seed": seed, "n_folds": n_folds or 5},
        "per_user": {"seed": seed, "test_size": test_size},
        "cold_items": {"seed": seed, "item_share": item_share, "n_folds": n_folds or 1},
    }
    if kind not in relevant:
        raise InvalidParameter(f"unknown split kind {kind!r}; choose from {', '.join(SPLIT_KINDS)}")
    path = split_path(dataset_name, kind, **relevant[kind])
    if path.exists():
        try:
            splits = load_splits(path, ratings)
        except InvalidInput as exc:
            logger.info("split %s: %s", path.name, exc)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            logger.warning("split %s is unreadable (%s): making it again", path, exc)
        else:
            logger.info("split loaded: %s (%s %s)", path.name, kind, relevant[kind])
            return splits
    splits = make_splits(ratings, kind, seed=seed, test_size=test_size, n_folds=n_folds, item_share=item_share)
    try:
        save_splits(splits, path)
    except StorageError as exc:
        logger.warning("split made but not saved (%s): it is remade on the next run", exc.user_message())
    else:
        logger.info("split made and saved: %s (%s %s)", path.name, kind, relevant[kind])
    return splits


def per_user_split(
    ratings: pd.DataFrame, test_size: float = 0.2, seed: int = 0, dataset_name: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of the project's per-user holdout: the one split of the top-N study, the
    Recommend page and the group evaluation (Audience page, `audience-eval`).

    With a dataset name the split is the saved one (checked against the ratings' fingerprint),
    else it is made fresh; both are the same for the same seed.
    """
    if dataset_name:
        splits = cached_splits(ratings, dataset_name, "per_user", seed=seed, test_size=test_size)
    else:
        splits = make_splits(ratings, "per_user", seed=seed, test_size=test_size)
    fold = splits[0]
    return fold.train, fold.test
