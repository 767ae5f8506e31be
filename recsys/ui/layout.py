"""Page layout: presentation mode, the page header, the controls container, failures shown as messages."""

from __future__ import annotations

import streamlit as st

from recsys.ui.state import ASSETS_DIR, KEY_PRESENTATION, PRESENTATION_FONT_SIZE


def presentation() -> bool:
    return bool(st.session_state.get(KEY_PRESENTATION, False))


def apply_presentation_style() -> None:
    css = ""
    style = ASSETS_DIR / "style.css"
    if style.exists():
        css += style.read_text()
    if presentation():
        css += (
            f"html, body, .stMarkdown, .stCaption, p, li, label {{ font-size: {PRESENTATION_FONT_SIZE}px !important; }}"
            "h1 { font-size: 2.8rem !important; } "
            "[data-testid='stToolbar'], [data-testid='stDecoration'] { display: none; }"
        )
    if css:
        st.html(f"<style>{css}</style>")


def page_header(title: str, explanation: str, paper: str | None = None, dataset=None) -> None:
    """Title, one line on what the page shows and which paper it reproduces, synthetic label."""
    from recsys.ui.registry import ensure_router

    ensure_router()
    st.title(title)
    line = explanation + (f" *Reproduces: {paper}.*" if paper else "")
    st.caption(line)
    if dataset is not None and dataset.synthetic:
        st.warning(
            "Showing the **synthetic demo dataset** (generated offline): numbers illustrate the method, "
            "they are not research results.",
            icon=":material/science:",
        )


def controls(label: str = "Controls"):
    """Container for a page's widgets; folded away in presentation mode (values are kept)."""
    return st.expander(label, expanded=not presentation())


def run_page(page) -> None:
    """Run the navigation's page; an expected failure (a dataset too large for a model, missing
    media, no weights) ends the page with its own message instead of a traceback in front of an
    audience. Streamlit's own control flow (st.stop, st.rerun) is not an Exception and passes."""
    try:
        page.run()
    except (ValueError, FileNotFoundError, RuntimeError, MemoryError) as exc:
        st.error(f"**This page could not finish:** {exc}", icon=":material/error:")
        st.caption("Try another dataset, representation or setting; the synthetic demo dataset always works.")
