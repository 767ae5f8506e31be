"""Item representations a page can choose from (CNN entries of the feature store, poster baselines, genres)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from recsys import config
from recsys.cache import atomic_save
from recsys.errors import InvalidParameter, StorageError
from recsys.ui.data import dataset_token
from recsys.ui.progress import StreamlitProgress

if TYPE_CHECKING:
    from recsys.data import Dataset

log = logging.getLogger(__name__)

GENRE_REPRESENTATION = "genre one-hot"
BASELINE_REPRESENTATIONS = {
    "poster · raw pixels": "raw_pixels",
    "poster · colour histogram": "colour_histogram",
}


@st.cache_data(show_spinner=False, ttl=10)
def cached_feature_entries(token: str, dataset_name: str) -> pd.DataFrame:
    """Complete FeatureStore entries extracted for this dataset (re-listed at most every 10 s)."""
    from recsys.features.store import FeatureStore

    entries = FeatureStore().list_entries()
    if entries.empty:
        return entries
    return entries[(entries["dataset"] == dataset_name) & entries["complete"]].reset_index(drop=True)


def entry_label(row, n_items: int | None = None) -> str:
    medium = "poster" if row["media"] == "posters" else "trailer"
    label = f"{medium} · {row['backbone']}"
    if row.get("layer") and row["layer"] != "pre-logits":
        label += f" · {row['layer']}"
    if row.get("pooling") and row["pooling"] != "avg":
        label += f" · {row['pooling']}"
    if medium == "trailer" and row.get("fps") == row.get("fps"):  # NaN-safe
        label += f" · {row['fps']:g} fps"
    if str(row.get("weights", "")).startswith("random"):
        label += " · untrained"
    if n_items is not None and row.get("items") is not None and int(row["items"]) < n_items:
        label += f" ({int(row['items'])} items)"  # extracted for part of the catalogue only
    return label


def representation_options(
    dataset: Dataset, media: tuple[str, ...] = ("posters", "trailers"), baselines: bool = True, genres: bool = True
) -> dict[str, str]:
    """label -> source ("entry:<key>", "baseline:<name>", "genres"), CNN entries first."""
    options: dict[str, str] = {}
    entries = cached_feature_entries(dataset_token(dataset), dataset.name)
    if not entries.empty:
        # Defaults take the first entry: trained weights before untrained, posters before trailers
        # (every movie has a poster, few have a trailer), then the entry covering the most items.
        entries = entries.assign(
            _untrained=entries["weights"].astype(str).str.startswith("random"),
            _trailers=entries["media"] != "posters",
            _items=-entries["items"].fillna(0).astype(int),
        ).sort_values(["_untrained", "_trailers", "_items", "backbone", "key"])
    for _, row in entries.iterrows():
        if row["media"] in media:
            options.setdefault(entry_label(row, dataset.n_items), f"entry:{row['key']}")
    if baselines and "posters" in media and len(dataset.items_with_poster()):
        for label, name in BASELINE_REPRESENTATIONS.items():
            options[label] = f"baseline:{name}"
    if genres:
        options[GENRE_REPRESENTATION] = "genres"
    return options


@st.cache_resource(show_spinner="Loading item features…", max_entries=16)
def load_representation(token: str, source: str, _dataset: Dataset):
    """ItemFeatures for a source from `representation_options` (read once per server)."""
    dataset = _dataset
    from recsys.features import baselines

    if source == "genres":
        features = baselines.genre_features(dataset)
        features.name = GENRE_REPRESENTATION
        return features
    if source == "baseline:raw_pixels":
        return _disk_cached(dataset, "raw_pixels", baselines.raw_pixel_features)
    if source == "baseline:colour_histogram":
        return _disk_cached(dataset, "colour_histogram", baselines.color_histogram_features)
    if source.startswith("entry:"):
        return load_entry(source.split(":", 1)[1]).features
    raise InvalidParameter(f"unknown representation source {source!r}")


def load_entry(key: str):
    """ExtractionResult of a complete FeatureStore entry, by key (posters or trailers)."""
    from recsys.features.extract import load_entry as load_stored_entry

    return load_stored_entry(key)


def _disk_cached(dataset: Dataset, name: str, compute):
    """A poster baseline computed once per poster set and kept on disk (reading 1,700 posters takes seconds)."""
    import json

    import numpy as np

    from recsys.features.item_features import ItemFeatures
    from recsys.features.store import media_fingerprint

    fingerprint = media_fingerprint(zip(dataset.posters.index, dataset.posters.tolist()))
    path = config.cache_dir() / "baselines" / f"{dataset.name}-{name}-{fingerprint[:20]}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                features = ItemFeatures(
                    data["item_ids"], data["matrix"], str(data["name"]), json.loads(str(data["meta"]))
                )
            log.info("poster baseline %s read from %s", name, path)
            return features
        except (OSError, ValueError, KeyError) as exc:
            log.warning("poster baseline cache %s is unreadable (%s); recomputing", path, exc)
    progress = StreamlitProgress(f"Computing {name.replace('_', ' ')} of every poster (once)…")
    features = compute(dataset, progress=progress)
    progress.empty()
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
    except StorageError as exc:  # best effort: the features are valid, only not kept
        log.warning("poster baseline not cached: %s", exc)
    return features
