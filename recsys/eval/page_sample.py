"""The stated sample a page computes on when a dataset is too big to experiment on interactively.

A page at ML-20M/25M scale opens on a random sample of users (all their ratings, so user profiles
stay whole), says so in a banner, and names the CLI command that runs the full data. The sample
is deterministic (seeded), so a page and a rerun agree; :func:`sample_name` gives the name its
splits are cached under (the dataset's own splits stay those of the full data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.errors import InvalidParameter

PAGE_MAX_RATINGS = 2_000_000  # beyond this many ratings the experiment pages sample users
PAGE_SAMPLE_USERS = 5_000


@dataclass(frozen=True)
class RatingSample:
    """The ratings a page works on and how they were drawn."""

    ratings: pd.DataFrame
    sampled: bool
    users: int
    users_total: int
    ratings_total: int
    seed: int = 0

    @property
    def n_ratings(self) -> int:
        return len(self.ratings)

    def describe(self) -> str:
        if not self.sampled:
            return f"all {self.ratings_total:,} ratings"
        return (
            f"a random sample of {self.users:,} of {self.users_total:,} users (seed {self.seed}) with all their "
            f"{self.n_ratings:,} ratings, of {self.ratings_total:,}"
        )


def sample_users(
    ratings: pd.DataFrame,
    max_ratings: int = PAGE_MAX_RATINGS,
    users: int = PAGE_SAMPLE_USERS,
    seed: int = 0,
) -> RatingSample:
    """All of `ratings` when there are at most `max_ratings`; else every rating of `users` random users."""
    if users < 1 or max_ratings < 1:
        raise InvalidParameter(f"users and max_ratings must be >= 1, got {users} and {max_ratings}")
    all_users = ratings["user_id"].unique()
    if len(ratings) <= max_ratings or len(all_users) <= users:
        return RatingSample(ratings, False, len(all_users), len(all_users), len(ratings), seed)
    chosen = np.random.default_rng(seed).choice(np.sort(all_users), size=users, replace=False)
    part = ratings[ratings["user_id"].isin(chosen)].reset_index(drop=True)
    return RatingSample(part, True, users, len(all_users), len(ratings), seed)


def sample_name(dataset_name: str, sample: RatingSample) -> str:
    """The name a sample's splits are cached under (the full data keeps the dataset's name)."""
    return f"{dataset_name}-users{sample.users}-s{sample.seed}" if sample.sampled else dataset_name
