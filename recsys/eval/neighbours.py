"""Nearest posters and genre precision@N: the blog post's visual claim, measured over all movies.

genre precision@N of a representation = for each query movie with at least one genre, the share
of its N nearest other movies that share at least one genre with it, averaged over queries. The
chance level (what random neighbours would score) is reported beside it so the number has a scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput
from recsys.features.item_features import ItemFeatures

METRICS = ("euclidean", "cosine")


def _prepared(matrix: np.ndarray, metric: str) -> np.ndarray:
    if metric not in METRICS:
        raise ValueError(f"unknown distance {metric!r}; choose one of {METRICS}")
    # float64 and centred: the expansion |q|² + |x|² - 2 q·x loses small distances to rounding
    # when vectors are long, which would reorder close neighbours.
    matrix = np.asarray(matrix, dtype=np.float64)
    if metric == "euclidean":
        matrix = matrix - matrix.mean(axis=0, keepdims=True)
    if metric == "cosine":
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return matrix


def _distances(queries: np.ndarray, matrix: np.ndarray, metric: str, squared_norms: np.ndarray) -> np.ndarray:
    if metric == "cosine":  # rows are unit vectors: distance = 1 - cosine similarity
        return 1.0 - queries @ matrix.T
    query_norms = np.einsum("ij,ij->i", queries, queries)[:, None]
    squared = query_norms + squared_norms[None, :] - 2.0 * (queries @ matrix.T)
    return np.sqrt(np.maximum(squared, 0.0))


def nearest_items(features: ItemFeatures, item_id: int, n: int = 5, metric: str = "euclidean") -> pd.DataFrame:
    """The n items closest to `item_id` (itself excluded): rank, item_id, distance."""
    positions = np.flatnonzero(features.item_ids == int(item_id))
    if len(positions) == 0:
        raise KeyError(f"item {item_id} has no features in '{features.name}' (no poster or extraction failed)")
    if metric not in METRICS:
        raise ValueError(f"unknown distance {metric!r}; choose one of {METRICS}")
    matrix = features.matrix
    query = matrix[positions[0]]
    if metric == "euclidean":  # one query: the direct difference is exact and cheap
        distances = np.linalg.norm(matrix - query, axis=1).astype(np.float64)
    else:
        norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(query)
        distances = 1.0 - np.divide(matrix @ query, norms, out=np.zeros(len(matrix)), where=norms > 0)
    distances[positions[0]] = np.inf
    n = min(n, len(distances) - 1)
    order = np.argsort(distances, kind="stable")[:n]
    return pd.DataFrame(
        {"rank": np.arange(1, n + 1), "item_id": features.item_ids[order], "distance": distances[order]}
    )


def neighbour_indices(matrix: np.ndarray, n: int, metric: str = "euclidean", chunk: int = 1024) -> np.ndarray:
    """For every row, the indices of its n nearest other rows (chunked: memory O(chunk x items))."""
    matrix = _prepared(matrix, metric)
    squared_norms = np.einsum("ij,ij->i", matrix, matrix)
    n = min(n, len(matrix) - 1)
    result = np.empty((len(matrix), n), dtype=np.int64)
    for start in range(0, len(matrix), chunk):
        stop = min(start + chunk, len(matrix))
        distances = _distances(matrix[start:stop], matrix, metric, squared_norms)
        distances[np.arange(stop - start), np.arange(start, stop)] = np.inf
        part = (
            np.argpartition(distances, n - 1, axis=1)[:, :n]
            if n < len(matrix) - 1
            else np.argsort(distances, axis=1)[:, :n]
        )
        rows = np.arange(stop - start)[:, None]
        part = part[rows, np.argsort(distances[rows, part], axis=1, kind="stable")]
        result[start:stop] = part
    return result


def items_with_genre(features: ItemFeatures, genres: pd.DataFrame) -> tuple[pd.Index, np.ndarray]:
    """(item ids with both a feature vector and at least one genre, their boolean genre flags): the
    movies genre precision is measured on. InvalidInput when fewer than 2 remain."""
    common = pd.Index(features.item_ids).intersection(genres.index)
    flags = genres.loc[common].to_numpy().astype(bool)
    has_genre = flags.any(axis=1)
    common, flags = common[has_genre], flags[has_genre]
    if len(common) < 2:
        raise InvalidInput(f"'{features.name}': fewer than 2 movies with both features and a genre")
    return common, flags


def shares_genre(genres: pd.DataFrame, query, item_ids) -> np.ndarray:
    """Per item of `item_ids`: does it share at least one genre with `query` (the ✓/✗ of the galleries)."""
    items = genres.loc[pd.Index(item_ids)].to_numpy().astype(bool)
    return (items & genres.loc[query].to_numpy().astype(bool)).any(axis=1)


def _genre_hits(features: ItemFeatures, genres: pd.DataFrame, max_n: int, metric: str):
    """(items, hits matrix items x max_n: neighbour at rank r shares a genre, chance per item)."""
    common, flags = items_with_genre(features, genres)
    matrix, _ = features.aligned(common.to_numpy())
    neighbours = neighbour_indices(matrix, max_n, metric)
    flags_f = flags.astype(np.float32)
    hits = (flags_f[:, None, :] * flags_f[neighbours]).sum(axis=2) > 0
    # Chance: a random other movie shares a genre with the query with probability (overlaps - 1) / (m - 1).
    overlaps = (flags_f @ flags_f.T) > 0
    chance = (overlaps.sum(axis=1) - 1) / (len(common) - 1)
    return common, hits, chance


def genre_precision_at_n(features: ItemFeatures, genres: pd.DataFrame, n: int = 5, metric: str = "euclidean") -> dict:
    """Mean share of each movie's n nearest neighbours that share a genre with it, plus chance level.

    Only movies that have features and at least one genre take part (as queries and as neighbours).
    """
    common, hits, chance = _genre_hits(features, genres, n, metric)
    per_item = hits.mean(axis=1)
    return {
        "representation": features.name,
        "n": int(hits.shape[1]),
        "metric": metric,
        "genre_precision": float(per_item.mean()),
        "chance": float(chance.mean()),
        "queries": int(len(common)),
        "per_item": pd.Series(per_item, index=common, name="genre_precision"),
    }


def genre_precision_curve(
    features: ItemFeatures, genres: pd.DataFrame, max_n: int = 20, metric: str = "euclidean"
) -> pd.DataFrame:
    """genre precision@N for every N = 1..max_n from one neighbour search (tidy: n, genre_precision, chance, queries).

    The same numbers as `genre_precision_at_n` for each N, so a page can change N without searching again.
    """
    common, hits, chance = _genre_hits(features, genres, max_n, metric)
    cumulative = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    return pd.DataFrame(
        {
            "representation": features.name,
            "metric": metric,
            "n": np.arange(1, hits.shape[1] + 1),
            "genre_precision": cumulative.mean(axis=0),
            "chance": float(chance.mean()),
            "queries": int(len(common)),
        }
    )
