"""Dataset selection: the data directory, the datasets found there, the cached Dataset object."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from recsys import config
from recsys.errors import RecsysError
from recsys.ui.state import DEMO_DATASET, KEY_DATA_DIR, KEY_DATASET

if TYPE_CHECKING:
    from recsys.data import Dataset


def data_dir_setting() -> str:
    """The data directory the sidebar shows (session value, else $RECSYS_DATA_DIR / default); a
    value outside the allowed roots (config.data_roots, $RECSYS_DATA_ROOTS) gives the default."""
    return config.allowed_data_dir(st.session_state.get(KEY_DATA_DIR))


@st.cache_data(ttl=30, show_spinner=False)
def cached_available_datasets(data_dir: str) -> list[str]:
    """Dataset names found in `data_dir` (demo first when nothing else is there)."""
    try:
        from recsys.data import available_datasets
    except ImportError:  # data layer not built yet: the demo is always possible
        return [DEMO_DATASET]
    try:
        listing = available_datasets(data_dir)
        names = listing.loc[listing["present"], "name"].tolist()
    except (OSError, ValueError):
        names = []
    if DEMO_DATASET not in names:
        names.append(DEMO_DATASET)
    return names


@st.cache_data(ttl=30, show_spinner=False)
def dataset_listing(data_dir: str) -> pd.DataFrame:
    """The registry's table of known datasets with whether each is present in `data_dir`."""
    try:
        from recsys.data import available_datasets

        return available_datasets(data_dir)
    except (ImportError, OSError, ValueError):
        return pd.DataFrame(columns=["name", "present", "synthetic", "description", "size", "url", "folder"])


def synthetic_names(data_dir: str) -> set[str]:
    """Datasets in `data_dir` that are synthetic: the demo and folders made by `recsys generate`."""
    listing = dataset_listing(data_dir)
    names = set(listing.loc[listing["synthetic"].astype(bool), "name"]) if "synthetic" in listing else set()
    return names | {DEMO_DATASET}


def is_synthetic(name: str, data_dir: str | None = None) -> bool:
    return name in synthetic_names(data_dir or data_dir_setting())


def default_dataset(data_dir: str, names: list[str]) -> str:
    try:
        from recsys.data import default_dataset_name

        name = default_dataset_name(data_dir)
        if name in names:
            return name
    except (ImportError, OSError, ValueError):
        pass
    return names[0] if names else DEMO_DATASET


@st.cache_resource(show_spinner="Loading dataset…", max_entries=4)
def load_dataset_cached(name: str, data_dir: str) -> Dataset:
    """One Dataset object per (name, data dir) for the whole server: pages share it read-only."""
    from recsys.data import load_dataset

    return load_dataset(name, data_dir=data_dir)


def current_dataset_name() -> str:
    data_dir = data_dir_setting()
    name = st.session_state.get(KEY_DATASET)
    names = cached_available_datasets(data_dir)
    if name not in names:
        name = default_dataset(data_dir, names)
    return name


def current_dataset() -> Dataset:
    """The dataset chosen in the sidebar; stops the page with a clear message if it cannot load."""
    from recsys.ui.layout import show_error
    from recsys.ui.registry import ensure_router

    ensure_router()
    name, data_dir = current_dataset_name(), data_dir_setting()
    try:
        return load_dataset_cached(name, data_dir)
    except (RecsysError, OSError) as exc:  # missing or malformed data, an unreadable folder
        show_error(exc, f"Dataset {name} could not be loaded from {data_dir}")
        st.info("Pick the synthetic **demo** dataset in the sidebar, or see the Home page for how to get data.")
        st.stop()


def dataset_token(dataset: Dataset) -> str:
    """A short string that identifies a dataset in cache keys (name + size + source)."""
    return f"{dataset.name}|{dataset.n_ratings}|{dataset.n_items}|{dataset.source_dir}"
