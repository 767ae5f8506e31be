"""Feature baselines that need no network and no neural net: raw pixels, colour histograms, genres.

Raw pixels follow the poster-similarity blog post (resized, flattened image arrays scaled to
[-1, 1]); the post used 299x299 inputs, here the size is a parameter with a small default so
1,700 posters fit in memory. Items whose poster cannot be read are left out and listed in
``meta["failures"]`` as (item_id, reason) pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from recsys.errors import InvalidInput, InvalidParameter
from recsys.features.item_features import ItemFeatures
from recsys.progress import Progress

if TYPE_CHECKING:  # pragma: no cover
    from recsys.data.dataset import Dataset


def _poster_items(dataset: Dataset, item_ids: Sequence[int] | None):
    ids = dataset.items.index if item_ids is None else np.asarray(item_ids, dtype=np.int64)
    paths = dataset.posters.reindex(ids)
    return [(int(i), p if isinstance(p, str) else None) for i, p in zip(ids, paths.tolist())]


def _per_poster(dataset: Dataset, item_ids, compute, name: str, meta: dict, progress: Progress | None) -> ItemFeatures:
    from recsys.data.errors import MediaError
    from recsys.data.posters import open_image

    items = _poster_items(dataset, item_ids)
    ids, rows, failures = [], [], []
    for done, (item_id, path) in enumerate(items, start=1):
        try:
            rows.append(compute(open_image(path)))
            ids.append(item_id)
        except MediaError as exc:
            failures.append((item_id, str(exc)))
        if progress and (done % 100 == 0 or done == len(items)):
            progress(done, len(items), f"{name}: {done}/{len(items)} posters")
    dim = len(rows[0]) if rows else 0
    matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    return ItemFeatures(
        ids, matrix, name, {**meta, "dataset": dataset.name, "failures": failures, "n_failures": len(failures)}
    )


def raw_pixel_features(
    dataset: Dataset, size: tuple[int, int] = (32, 48), item_ids=None, progress: Progress | None = None
) -> ItemFeatures:
    """Posters resized to `size` = (width, height), RGB, flattened and scaled to [-1, 1]."""
    from PIL import Image

    width, height = int(size[0]), int(size[1])

    def compute(image):
        array = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)
        return (array / 127.5 - 1.0).ravel()

    return _per_poster(
        dataset,
        item_ids,
        compute,
        f"poster · raw pixels {width}x{height}",
        {"baseline": "raw_pixels", "size": [width, height]},
        progress,
    )


def color_histogram_features(
    dataset: Dataset, bins: int = 8, space: str = "HSV", item_ids=None, progress: Progress | None = None
) -> ItemFeatures:
    """Joint colour histogram with `bins` per channel (bins**3 values summing to 1) in HSV or RGB."""
    if space not in ("HSV", "RGB"):
        raise InvalidParameter(f"space must be 'HSV' or 'RGB', got {space!r}")

    def compute(image):
        pixels = np.asarray(image.convert(space) if space != "RGB" else image, dtype=np.uint8).reshape(-1, 3)
        quantised = (pixels.astype(np.int64) * bins) // 256
        codes = (quantised[:, 0] * bins + quantised[:, 1]) * bins + quantised[:, 2]
        histogram = np.bincount(codes, minlength=bins**3).astype(np.float32)
        return histogram / max(histogram.sum(), 1.0)

    return _per_poster(
        dataset,
        item_ids,
        compute,
        f"poster · {space} histogram {bins}^3",
        {"baseline": "color_histogram", "bins": bins, "space": space},
        progress,
    )


def genre_features(dataset: Dataset, item_ids=None) -> ItemFeatures:
    """Multi-hot genre vectors (the content baseline every CNN feature has to beat)."""
    genres = dataset.genres if item_ids is None else dataset.genres.reindex(np.asarray(item_ids, dtype=np.int64))
    if genres.isna().any().any():
        missing = genres.index[genres.isna().any(axis=1)].tolist()
        raise InvalidInput(f"items without genre rows in '{dataset.name}': {missing[:10]}")
    return ItemFeatures(
        genres.index.to_numpy(),
        genres.to_numpy(dtype=np.float32),
        "genres one-hot",
        {"baseline": "genres", "dataset": dataset.name, "columns": list(genres.columns)},
    )


# ---- poster baselines kept on disk -----------------------------------------------------------------
_BASELINE_FILES = {"pixels": "raw_pixels", "histogram": "colour_histogram"}
_BASELINE_DEFAULTS = {"pixels": {"size": (32, 48)}, "histogram": {"bins": 8, "space": "HSV"}}


def baseline_cache_path(dataset: Dataset, name: str, params: dict):
    """Where a poster baseline of `dataset` is kept: per poster set (fingerprint) and parameters."""
    from recsys.config import cache_dir
    from recsys.features.store import media_fingerprint

    if name not in _BASELINE_FILES:
        raise InvalidParameter(f"unknown poster baseline {name!r}; use {', '.join(_BASELINE_FILES)}")
    fingerprint = media_fingerprint(zip(dataset.posters.index, dataset.posters.tolist()))
    stem = _BASELINE_FILES[name]
    if params != _BASELINE_DEFAULTS[name]:  # the defaults keep the file names the app has always used
        stem += "-" + "-".join(
            "x".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v) for _, v in sorted(params.items())
        )
    return cache_dir() / "baselines" / f"{dataset.name}-{stem}-{fingerprint[:20]}.npz"


def cached_baseline(
    dataset: Dataset, name: str, params: dict | None = None, progress: Progress | None = None
) -> ItemFeatures:
    """A poster baseline ("pixels" or "histogram") computed once per poster set and kept on disk
    (reading 1,700 posters takes seconds). An unreadable file is recomputed (logged); a folder
    that cannot be written only means it is not kept."""
    import json
    import logging

    from recsys.cache import atomic_save
    from recsys.errors import StorageError

    log = logging.getLogger(__name__)
    params = dict(_BASELINE_DEFAULTS[name] if params is None else params)
    path = baseline_cache_path(dataset, name, params)
    try:
        with np.load(path, allow_pickle=False) as data:
            features = ItemFeatures(data["item_ids"], data["matrix"], str(data["name"]), json.loads(str(data["meta"])))
        log.info("poster baseline %s read from %s", name, path)
        return features
    except FileNotFoundError:
        log.info("poster baseline %s not cached yet: computing it", name)
    except Exception as exc:  # noqa: BLE001 - a damaged cache file of any kind means "recompute"
        log.warning("poster baseline cache %s is unreadable (%s); recomputing", path, exc)
    if name == "pixels":
        features = raw_pixel_features(dataset, size=tuple(params["size"]), progress=progress)
    else:
        features = color_histogram_features(dataset, bins=int(params["bins"]), space=params["space"], progress=progress)
    try:
        atomic_save(
            path,
            lambda tmp: np.savez(
                tmp,
                item_ids=features.item_ids,
                matrix=features.matrix,
                name=features.name,
                meta=json.dumps(features.meta, default=str),
            ),
        )
    except StorageError as exc:
        log.warning("poster baseline not cached: %s", exc)
    return features
