"""Stated samples for costly experiments at ML-20M/25M size (issue 13, item 6).

On a 25 M-rating dataset an RMSE-vs-K curve or a fusion curve scores millions of test pairs, each
needing its user's similarities to every co-rater: minutes to an hour on a CPU. Pages therefore
default to a *stated* sample and the CLI can run the full experiment (``--full``).

What is sampled: only the **test side**. Each fold keeps its whole training set, so every sampled
prediction is exactly what the full experiment computes for that pair (neighbours, means and
models come from all training ratings); the sample only decides which test pairs are scored:
the test ratings of ``max_users`` randomly chosen test users, then at most ``max_test`` of those
ratings. Datasets within both limits are not sampled at all (ML-100K, ML-1M run in full).

    sample = sample_for_experiment(splits, max_test=1_000_000, max_users=10_000, seed=0)
    frame = rmse_vs_k(sample.folds, ...)
    st.caption(sample.description)   # "test ratings of 10,000 of 138,493 users (random, seed 0) ..."
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from recsys.errors import InvalidParameter
from recsys.eval.splits import Fold
from recsys.models.base import check_count

DEFAULT_MAX_TEST = 1_000_000
DEFAULT_MAX_USERS = 10_000


class ExperimentSample(NamedTuple):
    """The folds to run (test sets possibly reduced, training sets whole) and what was kept."""

    folds: list[Fold]
    description: str
    sampled: bool
    n_test: int  # test ratings kept, over all folds
    n_test_total: int
    n_users: int  # test users kept (largest fold)
    n_users_total: int


def _fmt(value: int) -> str:
    return f"{value:,}"


def sample_for_experiment(
    folds,
    max_test: int | None = DEFAULT_MAX_TEST,
    max_users: int | None = DEFAULT_MAX_USERS,
    seed: int = 0,
) -> ExperimentSample:
    """Restrict each fold's test set to a stated random sample (module docstring); None: no limit.

    `folds`: a Splits, a list of Fold or a (train, test) tuple (as the experiments accept).
    The same seed gives the same sample; each fold draws its own users (folds hold different
    test users). `description` says what was kept, for a page caption or a CLI line.
    """
    from recsys.eval.experiments import as_folds

    max_test = check_count(max_test, "max_test", allow_none=True)
    max_users = check_count(max_users, "max_users", allow_none=True)
    folds = as_folds(folds)
    kept_folds, kept_total, all_total, kept_users, all_users = [], 0, 0, 0, 0
    sampled = False
    rng = np.random.default_rng(seed)
    for fold in folds:
        test = fold.test
        users = test["user_id"].to_numpy()
        unique_users = np.unique(users)
        keep = np.ones(len(test), dtype=bool)
        if max_users is not None and len(unique_users) > max_users:
            chosen = rng.choice(unique_users, max_users, replace=False)
            keep &= np.isin(users, chosen)
        if max_test is not None and keep.sum() > max_test:
            positions = np.flatnonzero(keep)
            keep[:] = False
            keep[np.sort(rng.choice(positions, max_test, replace=False))] = True
        all_total += len(test)
        all_users = max(all_users, len(unique_users))
        if keep.all():
            kept_folds.append(fold)
            kept_total += len(test)
            kept_users = max(kept_users, len(unique_users))
            continue
        sampled = True
        positions = np.flatnonzero(keep)
        kept_users = max(kept_users, len(np.unique(users[positions])))
        kept_total += len(positions)
        kept_folds.append(
            Fold(
                fold=fold.fold,
                train=fold.train,
                test=test.iloc[positions].reset_index(drop=True),
                test_positions=np.asarray(fold.test_positions)[positions],
                cold_items=fold.cold_items,
            )
        )
    if not kept_total:
        raise InvalidParameter("the sample holds no test rating")
    n_train = sum(len(fold.train) for fold in folds) // max(len(folds), 1)
    per_fold = " per fold" if len(folds) > 1 else ""
    if sampled:
        description = (
            f"test ratings of {_fmt(kept_users)} of {_fmt(all_users)} test users{per_fold} "
            f"(random, seed {seed}), {_fmt(kept_total)} of {_fmt(all_total)} test ratings in all; "
            f"models use all {_fmt(n_train)} training ratings{per_fold}, so each sampled prediction equals "
            "the full run's"
        )
    else:
        description = f"all {_fmt(all_total)} test ratings of {_fmt(all_users)} test users{per_fold} (no sample)"
    return ExperimentSample(kept_folds, description, sampled, kept_total, all_total, kept_users, all_users)
