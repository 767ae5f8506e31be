"""2-D/3-D projections of item features (PCA, UMAP), cached on disk by content + method.

A projection is a pure function of the feature matrix and its settings, so it is keyed by a hash
of the matrix bytes: the Embedding map page recomputes nothing when only colours or sizes change,
and a UMAP fitted once survives server restarts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from recsys.cache import atomic_save, atomic_write_text
from recsys.config import cache_dir
from recsys.errors import InvalidInput, InvalidParameter, StorageError

log = logging.getLogger(__name__)

METHODS = ("pca", "umap")


def matrix_fingerprint(matrix: np.ndarray) -> str:
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    digest = hashlib.sha1(matrix.tobytes())
    digest.update(str(matrix.shape).encode())
    return digest.hexdigest()[:20]


def project(
    matrix: np.ndarray,
    method: str = "pca",
    dims: int = 2,
    seed: int = 0,
    metric: str = "cosine",
    return_info: bool = False,
):
    """Low-dimensional coordinates (n_items x dims) of the rows of `matrix`.

    With `return_info`, also a dict: {"method", "explained": share of variance per PCA axis}
    (empty for UMAP, whose axes have no variance share).
    """
    method = method.lower()
    if method not in METHODS:
        raise InvalidParameter(f"unknown projection {method!r}; choose one of {METHODS}")
    if dims not in (2, 3):
        raise InvalidParameter(f"dims must be 2 or 3, got {dims}")
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or len(matrix) < dims + 1:
        raise InvalidInput(f"need at least {dims + 1} items to project, got matrix of shape {matrix.shape}")
    info = {"method": method, "explained": []}
    if method == "pca":
        from sklearn.decomposition import PCA

        n_components = min(dims, matrix.shape[1])
        pca = PCA(n_components=n_components, random_state=seed)
        coords = pca.fit_transform(matrix)
        info["explained"] = [float(v) for v in pca.explained_variance_ratio_] + [0.0] * (dims - n_components)
        if n_components < dims:  # e.g. 1-D features: pad so callers always get `dims` columns
            coords = np.hstack([coords, np.zeros((len(coords), dims - n_components))])
        coords = coords.astype(np.float32)
    else:
        import umap  # deliberately lazy: importing umap compiles numba code (seconds)

        n_neighbors = int(min(15, max(2, len(matrix) - 1)))
        reducer = umap.UMAP(n_components=dims, n_neighbors=n_neighbors, metric=metric, random_state=seed, n_jobs=1)
        coords = reducer.fit_transform(matrix).astype(np.float32)
    return (coords, info) if return_info else coords


def _cache_path(matrix: np.ndarray, method: str, dims: int, seed: int, root) -> Path:
    root = Path(root) if root is not None else cache_dir() / "projections"
    return root / f"{matrix_fingerprint(matrix)}-{method}-{dims}d-s{seed}.npy"


def cached_projection_exists(
    matrix: np.ndarray, method: str = "pca", dims: int = 2, seed: int = 0, root: str | os.PathLike | None = None
) -> bool:
    """Whether `project_cached` would read this projection from disk (a page can then skip the
    "computing UMAP, about N min" notice)."""
    return _cache_path(matrix, method, dims, seed, root).exists()


def project_cached(
    matrix: np.ndarray,
    method: str = "pca",
    dims: int = 2,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    return_info: bool = False,
):
    """`project` with an on-disk cache keyed by the matrix content, method, dims and seed.

    The coordinates are kept as ``.npy`` and the info (PCA's explained variance) as a ``.json``
    beside them, so a rerun or a restarted server never recomputes a UMAP.
    """
    path = _cache_path(matrix, method, dims, seed, root)
    info_path = path.with_suffix(".json")
    if path.exists():
        try:
            coords = np.load(path, allow_pickle=False)
            if coords.shape == (len(matrix), dims):
                log.debug("projection read from %s", path)
                if not return_info:
                    return coords
                try:
                    return coords, json.loads(info_path.read_text())
                except (OSError, ValueError):
                    if method == "umap":
                        return coords, {"method": method, "explained": []}
                    log.info("projection info %s missing; recomputing the PCA", info_path)
            else:
                log.warning(
                    "projection cache %s has shape %s, expected %s; recomputing",
                    path,
                    coords.shape,
                    (len(matrix), dims),
                )
        except (OSError, ValueError, EOFError) as exc:  # a damaged (or empty) cache file is recomputed, not trusted
            log.warning("projection cache %s is unreadable (%s); recomputing", path, exc)
    coords, info = project(matrix, method, dims, seed, return_info=True)
    try:
        atomic_save(path, lambda tmp: np.save(tmp, coords))
        atomic_write_text(info_path, json.dumps(info))
    except StorageError as exc:  # best effort: the coordinates are valid, only not kept
        log.warning("projection not cached: %s", exc)
    return (coords, info) if return_info else coords


def project_windows(window_matrix: np.ndarray, dims: int = 2, seed: int = 0) -> np.ndarray:
    """PCA of per-window trailer embeddings, all movies in one space (the VT2 trajectory plot)."""
    return project(window_matrix, "pca", dims, seed)
