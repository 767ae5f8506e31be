"""Page layout: presentation mode, the page header, the controls container, failures shown as messages."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import streamlit as st

from recsys.errors import RecsysError
from recsys.ui.state import ASSETS_DIR, KEY_PRESENTATION, PRESENTATION_FONT_SIZE

if TYPE_CHECKING:
    from recsys.data import Dataset

log = logging.getLogger(__name__)


def presentation() -> bool:
    """Presentation mode: the sidebar toggle, or ``?present=1`` in a link before the toggle exists."""
    if KEY_PRESENTATION in st.session_state:
        return bool(st.session_state[KEY_PRESENTATION])
    return str(st.query_params.get("present", "")).lower() in ("1", "true", "yes")


PRESENTATION_CSS = (
    f"html, body, .stMarkdown, .stCaption, p, li, label, [data-testid='stMetricLabel'] p "
    f"{{ font-size: {PRESENTATION_FONT_SIZE}px !important; }}"
    "[data-testid='stMetricValue'], [data-testid='stMetricValue'] * { font-size: 2.6rem !important; } "
    "h1 { font-size: 2.8rem !important; } h2, h3 { font-size: 2.0rem !important; } "
    "[data-testid='stImageCaption'] { font-size: 1rem !important; } "
    "[data-testid='stToolbar'], [data-testid='stDecoration'] { display: none; } "
    # projector contrast: no light-grey captions
    "[data-testid='stCaptionContainer'], .stCaption { color: #222 !important; } "
)


def apply_presentation_style() -> None:
    css = ""
    style = ASSETS_DIR / "style.css"
    if style.exists():
        css += style.read_text()
    if presentation():
        css += PRESENTATION_CSS
    if css:
        st.html(f"<style>{css}</style>")


def takeaway(sentence: str | None) -> None:
    """The page's last word: one sentence computed from its numbers (recsys.viz.takeaways)."""
    if sentence:
        st.success(f"**Takeaway.** {sentence}", icon=":material/lightbulb:")


def page_header(title: str, explanation: str, paper: str | None = None, dataset: Dataset | None = None) -> None:
    """Title, one line on what the page shows and which paper it reproduces, synthetic label."""
    from recsys.ui.registry import ensure_router

    ensure_router()
    st.title(title)
    line = explanation + (f" *Reproduces: {paper}.*" if paper else "")
    st.caption(line)
    if dataset is not None and dataset.synthetic:
        what = (
            "the **synthetic demo dataset**"
            if dataset.name == "demo"
            else f"**{dataset.name}**, a **synthetic** dataset"
        )
        st.warning(
            f"Showing {what} (generated offline): numbers illustrate the method, they are not research results.",
            icon=":material/science:",
        )


def controls(label: str = "Controls"):
    """Container for a page's widgets; folded away in presentation mode (values are kept)."""
    return st.expander(label, expanded=not presentation())


def error_message(exc: BaseException) -> str:
    """The one-line message of an expected failure (its hint included), as the CLI prints it."""
    if isinstance(exc, RecsysError):
        return exc.user_message()
    if isinstance(exc, MemoryError):
        return "not enough memory for this computation; try a smaller dataset or fewer settings at once"
    return " ".join(str(exc).split()) or type(exc).__name__


def show_error(exc: BaseException, title: str = "This page could not finish") -> None:
    """Show an expected failure (a :class:`~recsys.errors.RecsysError`) as one message, no traceback.

    The same text the CLI prints after ``error:``; the server log keeps the exception's type.
    """
    message = error_message(exc)
    log.info("%s: %s (%s)", title, message, type(exc).__name__)
    st.error(f"**{title}:** {message}", icon=":material/error:")


def run_page(page) -> None:
    """Run the navigation's page; an expected failure (a dataset too large for a model, missing
    media, no weights: a RecsysError) ends the page with its own message instead of a traceback in
    front of an audience. Anything else is a bug and keeps Streamlit's error display. Streamlit's
    own control flow (st.stop, st.rerun) is not an Exception and passes."""
    try:
        page.run()
    except (RecsysError, MemoryError) as exc:
        show_error(exc)
        st.caption("Try another dataset, representation or setting; the synthetic demo dataset always works.")
