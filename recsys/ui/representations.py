"""Item representations a page can choose from, in the grammar of :mod:`recsys.features.representations`.

Options are ``label -> spec`` (``poster:tf_efficientnet_lite0``, ``trailer:vgg16@1``,
``baseline:pixels``, ``genres``): the same text the CLI takes, so what a page shows can be
reproduced headless. Listing and loading go through ``available`` / ``resolve``; this module
only caches them for the server.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from recsys.features.representations import GENRE_LABEL, RepresentationSpec, parse
from recsys.ui.data import dataset_token
from recsys.ui.progress import StreamlitProgress

if TYPE_CHECKING:
    from recsys.data import Dataset

log = logging.getLogger(__name__)

GENRE_REPRESENTATION = GENRE_LABEL
BASELINE_REPRESENTATIONS = {
    RepresentationSpec("baseline", "pixels").label: "baseline:pixels",
    RepresentationSpec("baseline", "histogram").label: "baseline:histogram",
}


@st.cache_data(show_spinner=False, ttl=10)
def cached_feature_entries(token: str, dataset_name: str) -> pd.DataFrame:
    """Complete FeatureStore entries extracted for this dataset (re-listed at most every 10 s)."""
    from recsys.features.store import FeatureStore

    entries = FeatureStore().list_entries()
    if entries.empty:
        return entries
    return entries[(entries["dataset"] == dataset_name) & entries["complete"]].reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=64)
def _options(token: str, entry_keys: tuple, media: tuple, baselines: bool, genres: bool, _dataset) -> list:
    """(label, spec) pairs; keyed by the store's entry keys, so a new extraction shows at once."""
    from recsys.features.representations import available

    return [(spec.display, str(spec)) for spec in available(_dataset, media, baselines=baselines, genres=genres)]


def representation_options(
    dataset: Dataset, media: tuple[str, ...] = ("posters", "trailers"), baselines: bool = True, genres: bool = True
) -> dict[str, str]:
    """label -> representation spec, best first: extracted CNN features (trained weights before
    untrained, posters before trailers, most items first; a partial entry says "(64
    items)"), poster baselines, genres."""
    token = dataset_token(dataset)
    entries = cached_feature_entries(token, dataset.name)
    keys = tuple(entries["key"]) if not entries.empty else ()
    return dict(_options(token, keys, tuple(media), baselines, genres, _dataset=dataset))


def is_cnn(source: str) -> bool:
    """Whether a spec names CNN features (poster:… or trailer:…), e.g. to offer a PCA reduction."""
    return parse(source).is_cnn


@st.cache_resource(show_spinner="Loading item features…", max_entries=16)
def load_representation(token: str, source: str, _dataset: Dataset):
    """ItemFeatures for a spec from `representation_options` (read once per server; poster
    baselines are computed on first use with a progress bar and kept on disk)."""
    from recsys.features.representations import resolve

    spec = parse(source)
    progress = StreamlitProgress(f"Computing {spec.label} of every poster (once)…") if spec.kind == "baseline" else None
    try:
        return resolve(_dataset, spec, progress=progress)
    finally:
        if progress is not None:
            progress.empty()


@st.cache_resource(show_spinner="Loading item features…", max_entries=8)
def load_extraction(token: str, source: str, _dataset: Dataset):
    """The ExtractionResult of a CNN spec (failures, and for trailers the window sequences and status)."""
    from recsys.features.representations import resolve_extraction

    return resolve_extraction(_dataset, source)


def load_entry(key: str):
    """ExtractionResult of a complete FeatureStore entry, by key (posters or trailers)."""
    from recsys.features.extract import load_entry as load_stored_entry

    return load_stored_entry(key)
