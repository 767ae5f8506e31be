"""ItemFeatures: the item x dimension matrix that models and figures consume."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput


@dataclass
class ItemFeatures:
    """One vector per item. Rows follow `item_ids`; items without media are simply absent.

    name: short label used in legends and tables (e.g. "poster · tf_efficientnet_lite0").
    meta: everything that determined the features (backbone, weights, layer, fps, ...).
    """

    item_ids: np.ndarray
    matrix: np.ndarray
    name: str = "features"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.item_ids = np.asarray(self.item_ids, dtype=np.int64)
        self.matrix = np.asarray(self.matrix, dtype=np.float32)
        if self.matrix.ndim != 2 or len(self.matrix) != len(self.item_ids):
            raise InvalidInput(
                f"ItemFeatures '{self.name}': matrix shape {self.matrix.shape} does not match "
                f"{len(self.item_ids)} item ids"
            )
        if len(np.unique(self.item_ids)) != len(self.item_ids):
            raise InvalidInput(f"ItemFeatures '{self.name}': duplicate item ids")

    def non_finite_items(self) -> np.ndarray:
        """Ids of items whose vector holds NaN or inf (e.g. a failed decode written as NaN), which
        every similarity, profile or reduction would otherwise spread silently."""
        return self.item_ids[~np.isfinite(self.matrix).all(axis=1)]

    def check_finite(self, who: str) -> None:
        """ValueError naming `who` and the first affected items if any vector is not finite."""
        bad = self.non_finite_items()
        if len(bad):
            raise InvalidInput(
                f"{who}: item features '{self.name}' have NaN or infinite values for {len(bad)} items "
                f"(e.g. {bad[:5].tolist()}); drop them with features.subset(...) or re-extract"
            )

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def __len__(self) -> int:
        return len(self.item_ids)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.matrix, index=pd.Index(self.item_ids, name="item_id"))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, name: str = "features", meta: dict | None = None) -> ItemFeatures:
        return cls(frame.index.to_numpy(), frame.to_numpy(dtype=np.float32), name=name, meta=meta or {})

    def subset(self, item_ids) -> ItemFeatures:
        """Rows for the given items that exist here (order of `item_ids`)."""
        position = pd.Index(self.item_ids).get_indexer(np.asarray(item_ids))
        keep = position >= 0
        return ItemFeatures(np.asarray(item_ids)[keep], self.matrix[position[keep]], self.name, dict(self.meta))

    def aligned(self, item_ids, fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(matrix with one row per requested item, mask of rows that had features)."""
        position = pd.Index(self.item_ids).get_indexer(np.asarray(item_ids))
        present = position >= 0
        out = np.full((len(position), self.dim), fill, dtype=np.float32)
        out[present] = self.matrix[position[present]]
        return out, present
