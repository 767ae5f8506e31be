"""Posters on pages: cached thumbnails and rows of poster cards."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from recsys.data import Dataset


@st.cache_data(show_spinner=False, max_entries=20000)
def thumbnail_data_uri(path: str, height: int = 96) -> str | None:
    from recsys.viz.gallery import thumbnail_data_uri as make

    return make(path, height=height)


def poster_cards(dataset: Dataset, item_ids, captions=None, columns: int = 5, width: int | str = "stretch") -> None:
    """A row (or rows) of posters with captions; a grey placeholder where a poster is missing.

    width: pixels, or "stretch" to fill the column (galleries in narrow columns must not overlap).
    """
    item_ids = list(item_ids)
    if not item_ids:
        st.caption("(nothing to show)")
        return
    cols = st.columns(columns)
    for position, item_id in enumerate(item_ids):
        caption = captions[position] if captions is not None else dataset.items.loc[item_id, "title"]
        path = dataset.posters.get(item_id)
        with cols[position % columns]:
            if path and os.path.exists(path):
                try:
                    st.image(_poster_bytes(path), caption=caption, width=width)
                    continue
                except Exception:  # noqa: BLE001 - a corrupt file must not take the page down
                    pass
            st.markdown("<div class='poster-missing'>no poster</div>", unsafe_allow_html=True)
            st.caption(caption)


@st.cache_data(show_spinner=False, max_entries=5000)
def _poster_bytes(path: str) -> bytes:
    from recsys.viz.gallery import thumbnail_png

    return thumbnail_png(path, height=240)
