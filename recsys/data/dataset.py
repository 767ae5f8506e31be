"""The one Dataset object every other layer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


@dataclass
class Dataset:
    """Ratings, items, users and item media of one dataset.

    ratings:  columns user_id (int64), item_id (int64), rating (float32), timestamp (int64);
              one row per (user, item) pair, validated by the loaders.
    items:    index item_id (int64, named "item_id"); columns title (str), year (Int64, nullable).
    genres:   index item_id aligned with `items`; one uint8 column per genre (multi-hot).
    users:    index user_id; columns age (Int64), gender ("M"/"F"), occupation (str) where the
              dataset has them, else None.
    posters:  index item_id aligned with `items`; a filesystem path (str) or None per item.
    trailers: index item_id aligned with `items`; a filesystem path (str) or None per item.
    synthetic: True for the generated offline demo (the app labels it everywhere).
    """

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    genres: pd.DataFrame
    users: pd.DataFrame | None = None
    posters: pd.Series | None = None
    trailers: pd.Series | None = None
    synthetic: bool = False
    rating_scale: tuple[float, float] = (1.0, 5.0)
    source_dir: Path | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.posters is None:
            self.posters = pd.Series(None, index=self.items.index, dtype=object, name="poster")
        if self.trailers is None:
            self.trailers = pd.Series(None, index=self.items.index, dtype=object, name="trailer")

    # ---- sizes -------------------------------------------------------------------------
    @property
    def n_ratings(self) -> int:
        return len(self.ratings)

    @property
    def n_users(self) -> int:
        return int(self.ratings["user_id"].nunique())

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def genre_names(self) -> list[str]:
        return list(self.genres.columns)

    @property
    def sparsity(self) -> float:
        """Share of the user x item matrix with no rating."""
        cells = self.n_users * max(self.ratings["item_id"].nunique(), 1)
        return 1.0 - self.n_ratings / cells if cells else 1.0

    # ---- media ---------------------------------------------------------------------------
    def items_with_poster(self) -> pd.Index:
        return self.posters.index[self.posters.notna()]

    def items_with_trailer(self) -> pd.Index:
        return self.trailers.index[self.trailers.notna()]

    def media_coverage(self, kind: str = "poster") -> dict:
        """Items and ratings covered by a medium ("poster" or "trailer")."""
        paths = self.posters if kind == "poster" else self.trailers
        covered = set(paths.index[paths.notna()])
        rated = self.ratings["item_id"].isin(covered)
        return {
            "kind": kind,
            "items": len(covered),
            "items_total": self.n_items,
            "items_share": len(covered) / self.n_items if self.n_items else 0.0,
            "ratings": int(rated.sum()),
            "ratings_total": self.n_ratings,
            "ratings_share": float(rated.mean()) if self.n_ratings else 0.0,
        }

    def summary(self) -> dict:
        users_with_demographics = 0
        if self.users is not None and {"age", "gender"} <= set(self.users.columns):
            users_with_demographics = int((self.users["age"].notna() & self.users["gender"].notna()).sum())
        return {
            "dataset": self.name,
            "synthetic": self.synthetic,
            "ratings": self.n_ratings,
            "users": self.n_users,
            "items": self.n_items,
            "genres": len(self.genre_names),
            "users_with_age_gender": users_with_demographics,
            "items_with_poster": int(self.posters.notna().sum()),
            "items_with_trailer": int(self.trailers.notna().sum()),
            "sparsity": round(self.sparsity, 6),
        }

    def title_of(self, item_ids) -> list[str]:
        return self.items.loc[np.asarray(item_ids), "title"].tolist()
