"""The shared sidebar: data directory, dataset selector, status line, presentation toggle."""

from __future__ import annotations

import os
import platform
import sys
from typing import TYPE_CHECKING

import streamlit as st

from recsys import config
from recsys.errors import RecsysError
from recsys.ui.data import (
    cached_available_datasets,
    data_dir_setting,
    default_dataset,
    load_dataset_cached,
    synthetic_names,
)
from recsys.ui.layout import apply_presentation_style, show_error
from recsys.ui.state import ASSETS_DIR, KEY_DATA_DIR, KEY_DATASET, KEY_PRESENTATION, KEY_ROUTED
from recsys.ui.url_state import bind

if TYPE_CHECKING:
    from recsys.data import Dataset


def device_name() -> str:
    """cuda / mps / cpu for the status line, without importing torch just for that.

    Importing torch costs 3-9 s on a small CPU and the sidebar renders on every page, so until
    something has imported torch (an extraction, a model) the device is inferred from the driver
    files torch itself would use; once torch is loaded, `config.torch_device_name()` answers.
    """
    if os.environ.get(config.DEVICE_ENV) or "torch" in sys.modules:
        return config.torch_device_name()
    if os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0"):
        return "cuda"
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"


def render_sidebar() -> None:
    """Data directory, dataset selector, status line and presentation toggle (called by app.py)."""
    st.session_state[KEY_ROUTED] = True
    with st.sidebar:
        logo = ASSETS_DIR / "logo.svg"
        if logo.exists():
            st.logo(str(logo))
        if KEY_DATA_DIR not in st.session_state:
            st.session_state[KEY_DATA_DIR] = str(config.data_dir())
        with st.expander("Data directory", expanded=False):
            typed = st.text_input(
                "Folder with MovieLens data",
                key=KEY_DATA_DIR,
                help="Defaults to $RECSYS_DATA_DIR. Datasets found here appear in the selector below.",
            )
            refused = config.data_dir_problem(typed)  # a classroom server: only the folders it allows
            if refused:
                st.error(f"Not used: {refused}. Showing {config.data_dir()}.", icon=":material/block:")
        data_dir = data_dir_setting()
        names = cached_available_datasets(data_dir)
        synthetic = synthetic_names(data_dir)
        bind(KEY_DATASET, "dataset", default_dataset(data_dir, names), options=names)
        st.selectbox(
            "Dataset",
            names,
            key=KEY_DATASET,
            format_func=lambda n: f"{n} (synthetic)" if n in synthetic else n,
        )
        try:
            dataset = load_dataset_cached(st.session_state[KEY_DATASET], data_dir)
        except (RecsysError, OSError) as exc:
            show_error(exc, "Cannot load")
            dataset = None
        if dataset is not None:
            st.caption(status_line(dataset))
            if dataset.synthetic:
                synthetic_badge()
        bind(KEY_PRESENTATION, "present", False, url_default=False)
        st.toggle(
            "Presentation mode",
            key=KEY_PRESENTATION,
            help="For a projector: chart text at 20 px, page text larger, controls and sidebar folded away "
            "(the arrow at the top left brings the sidebar back). Kept in the link (present=1).",
        )
    apply_presentation_style()


def status_line(dataset: Dataset) -> str:
    return (
        f"{dataset.n_ratings:,} ratings · {dataset.n_users:,} users · {dataset.n_items:,} items · "
        f"device: **{device_name()}**"
    )


def synthetic_badge() -> None:
    st.badge("synthetic data", icon=":material/science:", color="orange")
