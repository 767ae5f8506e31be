"""Figures and tables with their export buttons (PNG via plotly's modebar, HTML, CSV)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys.ui.data import current_dataset_name, is_synthetic
from recsys.ui.layout import presentation
from recsys.ui.state import DEMO_DATASET
from recsys.viz import theme

SYNTHETIC_MARK = "synthetic demo data"
GENERATED_MARK = "synthetic generated data"


def _figure_config(name: str) -> dict:
    # PNG export is plotly's own modebar button (camera icon): kaleido would need a Chrome
    # download at runtime, which an offline research machine does not have. The PNG is laid out
    # at a fixed 1600x900 (x2), so a legend never clips the way it does in a narrow column.
    return theme.export_config(name)


def styled(fig, protocol: str | None = None):
    """The dashboard's template for the current mode (projector sizes in presentation mode) and a
    subtitle naming dataset · protocol · date; figures of the demo also say "synthetic demo data".
    What is on screen is what every export (HTML, PNG) carries."""
    name = current_dataset_name()
    theme.apply(
        fig,
        presentation=presentation(),
        dataset=name,
        protocol=protocol,
        mark=SYNTHETIC_MARK if name == DEMO_DATASET else GENERATED_MARK if is_synthetic(name) else None,
    )
    return fig


def export_name(name: str) -> str:
    """File name stem for downloads: the dataset goes first so exports say where they came from."""
    return f"{current_dataset_name()}-{name}"


def figure_html(fig) -> str:
    # Self-contained (plotly.js inlined) so the export opens offline.
    return fig.to_html(include_plotlyjs=True, full_html=True)


def show_figure(
    fig,
    name: str,
    key: str | None = None,
    on_select=None,
    selection_mode=None,
    export=True,
    protocol: str | None = None,
    config: dict | None = None,
):
    """Draw a plotly figure with PNG (modebar) and HTML (button) export; returns the selection event.

    protocol: how the numbers were obtained (e.g. "80/20 holdout, seed 0"), shown in the subtitle;
    config: extra plotly config (e.g. {"scrollZoom": True} for a map)."""
    kwargs = {}
    if on_select is not None:
        kwargs["on_select"] = on_select
        if selection_mode is not None:
            kwargs["selection_mode"] = selection_mode
    event = st.plotly_chart(
        styled(fig, protocol),
        config={**_figure_config(export_name(name)), **(config or {})},
        key=key,
        width="stretch",
        theme=None,  # our template (recsys.viz.theme), not Streamlit's: the same look on screen and in exports
        **kwargs,
    )
    if export and not presentation():
        st.download_button(
            "Download figure (HTML)",
            data=lambda: figure_html(fig),
            file_name=f"{export_name(name)}.html",
            mime="text/html",
            key=f"html_{key or name}",
            on_click="ignore",
            icon=":material/download:",
            help="Interactive, self-contained HTML. For PNG use the camera icon in the chart's toolbar.",
        )
    return event


def show_table(frame: pd.DataFrame, name: str, key: str | None = None, **kwargs) -> None:
    """A dataframe with a CSV download button."""
    st.dataframe(frame, **kwargs)
    csv_download(frame, name, key=key)


def csv_download(frame: pd.DataFrame, name: str, key: str | None = None, label: str = "Download table (CSV)") -> None:
    if presentation():
        return
    st.download_button(
        label,
        data=lambda: frame.to_csv(index=not isinstance(frame.index, pd.RangeIndex)).encode(),
        file_name=f"{export_name(name)}.csv",
        mime="text/csv",
        key=f"csv_{key or name}",
        on_click="ignore",
        icon=":material/table:",
    )
