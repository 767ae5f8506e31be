"""Say it when a page uses a stand-in for CNN features, and offer the one-click fix.

Before any extraction a page that compares "poster features" can only use a pixel baseline
(colour histogram, raw pixels). That is a legitimate baseline, not the CNN the page is about, so
the page says so in a banner with a button that extracts EfficientNet-Lite0 poster features (offline
weights) through the same function as the Extract page, with a progress bar, and reloads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from recsys.errors import RecsysError
from recsys.ui.layout import show_error
from recsys.ui.progress import StreamlitProgress, format_seconds

if TYPE_CHECKING:
    from recsys.data import Dataset

QUICK_BACKBONE = "tf_efficientnet_lite0"
LAPTOP_IMAGES_PER_S = 30.0  # lite0 on a 2-4 core laptop CPU, measured 30-75 img/s


def quick_extraction_estimate(n_posters: int) -> str:
    """'~1 min' for ML-100K's 1,682 posters: what the button promises on a laptop CPU."""
    seconds = n_posters / LAPTOP_IMAGES_PER_S + 10  # + model load
    if seconds < 60:
        return "< 1 min"
    return f"~{int(round(seconds / 60))} min"


def extract_quick_posters(dataset: Dataset, progress=None):
    """EfficientNet-Lite0 poster features of every item, the Extract page's defaults (cached)."""
    from recsys.features.config import RunOptions, make_config
    from recsys.features.extract import extract

    config = make_config(dataset, "posters", QUICK_BACKBONE)
    return extract(dataset, config, RunOptions(), progress)


def standin_banner(dataset: Dataset, used_label: str, *, is_cnn: bool, key: str, reset=()) -> bool:
    """If `used_label` is not a CNN representation, a banner saying it is a stand-in, with the
    one-click extraction. Returns True when a stand-in is shown. `key` makes the button unique;
    `reset`: (widget key, URL parameter) pairs to clear after the extraction, so the page's
    defaults pick the new CNN features."""
    done = st.session_state.pop("standin_last", None)
    if done:
        st.toast(done, icon=":material/check_circle:")
    if is_cnn:
        return False
    posters = len(dataset.items_with_poster())
    if posters == 0:
        st.info(
            f"**Stand-in:** this dataset has no posters, so **{used_label}** stands in for the CNN poster "
            "features this page is about. Put a posters folder in the data directory (Home → Getting data).",
            icon=":material/info:",
        )
        return True
    estimate = quick_extraction_estimate(posters)
    with st.container(border=True):
        st.warning(
            f"**Stand-in:** no CNN poster features are extracted for **{dataset.name}** yet, so this page uses "
            f"**{used_label}** in their place: a pixel baseline, not a CNN.",
            icon=":material/warning:",
        )
        clicked = st.button(
            f"Extract lite0 posters ({estimate} on a laptop CPU)",
            key=f"standin_extract_{key}",
            type="primary",
            icon=":material/memory:",
            help=f"EfficientNet-Lite0 (offline weights) over {posters:,} posters; cached, so once per dataset. "
            "Same as Extract features with its defaults.",
        )
    if clicked:
        progress = StreamlitProgress(f"Extracting {posters:,} posters with EfficientNet-Lite0…")
        try:
            result = extract_quick_posters(dataset, progress)
        except RecsysError as exc:
            progress.empty()
            show_error(exc, "Extraction stopped")
            return True
        progress.empty()
        from recsys.ui.representations import cached_feature_entries
        from recsys.ui.url_state import forget

        cached_feature_entries.clear()
        for widget_key, param in reset:
            st.session_state.pop(widget_key, None)
            forget(param)
        st.session_state["standin_last"] = (
            f"Extracted {len(result.features):,} posters ({format_seconds(result.seconds)}); the page now uses them."
        )
        st.rerun()
    return True
