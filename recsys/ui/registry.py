"""The dashboard's pages, and the router that sends deep links through app.py."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from recsys import config
from recsys.ui.state import KEY_ROUTED


def ensure_router() -> None:
    """Route a deep link on a freshly started server through app.py.

    Streamlit treats a `pages/` folder beside the entry point as a legacy (v1) multipage app until
    app.py has called st.navigation once; a first request for `/neighbours` would run that page alone,
    with Streamlit's file list instead of our sidebar. Switching the server to st.navigation mode and
    rerunning lets app.py route the same URL. (Renaming pages/ would avoid this, but the folder name
    is the project's convention.)
    """
    from streamlit.runtime.pages_manager import PagesManager

    # Only before app.py has run in this session: AppTest reruns pages in the legacy mode on purpose,
    # and a rerun there would swallow the click that triggered it.
    if PagesManager.uses_pages_directory and not st.session_state.get(KEY_ROUTED):
        PagesManager.uses_pages_directory = False
        st.rerun()


def register_pages(pages_dir: Path | None = None) -> list:
    """st.Page objects in the dashboard's order; the Audience page joins when its file exists."""
    pages_dir = pages_dir or config.PROJECT_ROOT / "pages"
    spec = [
        ("home.py", "Home", ":material/home:"),
        ("data.py", "Data", ":material/database:"),
        ("extract.py", "Extract features", ":material/memory:"),
        ("neighbours.py", "Poster neighbours", ":material/image_search:"),
        ("embedding.py", "Embedding map", ":material/scatter_plot:"),
        ("rating.py", "Rating prediction", ":material/show_chart:"),
        ("fusion.py", "Fusion", ":material/merge:"),
        ("recommend.py", "Recommend", ":material/recommend:"),
    ]
    pages = []
    for filename, title, icon in spec:
        path = pages_dir / filename
        if path.exists():
            pages.append(st.Page(str(path), title=title, icon=icon, default=filename == "home.py"))
    for path in sorted(pages_dir.glob("*[Aa]udience*.py")):
        pages.append(st.Page(str(path), title="Audience", icon=":material/groups:"))
    return pages
