"""The dashboard's pages in one registry, and the router that sends deep links through app.py.

:data:`PAGES` is the single list of pages: app.py's ``st.navigation`` (:func:`register_pages`) and
the Home page's table (:func:`pages_table`) are both built from it, so a page added here appears
in the sidebar and on Home with the same title, and says which paper it reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from recsys import config
from recsys.ui.state import KEY_ROUTED


@dataclass(frozen=True)
class PageSpec:
    """One page of the dashboard."""

    title: str  # sidebar and Home table
    url_path: str  # /<url_path> in the browser ("" for the default page)
    icon: str  # Material icon shortcode (bundled with Streamlit: works offline)
    file: str  # script in pages/
    reproduces: str  # the paper (and figure) the page reproduces, "—" when none
    description: str  # one line: what the page shows

    @property
    def default(self) -> bool:
        return self.url_path == ""


PAGES: tuple[PageSpec, ...] = (
    PageSpec(
        "Home",
        "",
        ":material/home:",
        "home.py",
        "—",
        "What the dashboard is for, which paper each page reproduces, how to get data.",
    ),
    PageSpec(
        "Data",
        "data",
        ":material/database:",
        "data.py",
        "—",
        "Dataset size, sparsity, rating distribution, activity per user/item, poster and trailer coverage.",
    ),
    PageSpec(
        "Extract features",
        "extract",
        ":material/memory:",
        "extract.py",
        "Ben Hassen et al. (trailer frames at 1/2/3 fps); Guo (VGG16 posters)",
        "Runs a CNN backbone over posters or trailer frames (cached, resumable, live progress, device and images/s).",
    ),
    PageSpec(
        "Poster neighbours",
        "neighbours",
        ":material/image_search:",
        "neighbours.py",
        "blog post: poster recommender with a pretrained ConvNet",
        "A movie's nearest posters by CNN features next to raw pixels, with genre precision@N over all movies.",
    ),
    PageSpec(
        "Embedding map",
        "embedding",
        ":material/scatter_plot:",
        "embedding.py",
        "Lehmann, VT2 (PCA trajectories)",
        "PCA/UMAP of item features coloured by genre, year or rating; posters of a lasso selection; "
        "trailer trajectories.",
    ),
    PageSpec(
        "Rating prediction",
        "rating",
        ":material/show_chart:",
        "rating.py",
        "Ben Hassen et al. (Table 1, RMSE vs K); VT2 (R²)",
        "RMSE/MAE vs number of neighbours K for several item representations; best K table; "
        "embedding → mean rating R².",
    ),
    PageSpec(
        "Fusion",
        "fusion",
        ":material/merge:",
        "fusion.py",
        "Lehmann, VT2 (Figs. 7–8)",
        "w·CF + (1−w)·content across k-fold CV with mean/median and percentile bands, for all and cold-start items.",
    ),
    PageSpec(
        "Recommend",
        "recommend",
        ":material/recommend:",
        "recommend.py",
        "Guo (CNN poster features + user-based CF)",
        "Top-5 lists from several models side by side as poster cards, with the user's history and "
        "precision/recall/diversity.",
    ),
    PageSpec(
        "Ranking",
        "ranking",
        ":material/leaderboard:",
        "ranking.py",
        "He & McAuley (VBPR, AAAI 2016)",
        "Full-ranking Recall/NDCG@K of MostPop, ItemKNN, BPR-MF and VBPR with 95 % intervals, and the control "
        "(real / shuffled / random / no features) that says whether the images did the work.",
    ),
    PageSpec(
        "Audience",
        "audience",
        ":material/groups:",
        "audience.py",
        "Balfaqih (hybrid demographics + emotions)",
        "Demographic and facial-expression groups and per-group recommendations.",
    ),
)


def page_specs(pages_dir: Path | None = None) -> list[PageSpec]:
    """The registry's pages whose script exists in `pages_dir` (default: the project's pages/)."""
    pages_dir = Path(pages_dir or config.PROJECT_ROOT / "pages")
    return [spec for spec in PAGES if (pages_dir / spec.file).is_file()]


def register_pages(pages_dir: Path | None = None) -> list:
    """st.Page objects in the dashboard's order, for app.py's ``st.navigation``."""
    pages_dir = Path(pages_dir or config.PROJECT_ROOT / "pages")
    pages = []
    for spec in page_specs(pages_dir):
        extra = {"default": True} if spec.default else {"url_path": spec.url_path}
        pages.append(st.Page(str(pages_dir / spec.file), title=spec.title, icon=spec.icon, **extra))
    return pages


def pages_table(pages_dir: Path | None = None) -> pd.DataFrame:
    """The Home page's table: page, what it shows, reproduces (every page but Home itself)."""
    rows = [
        {"page": spec.title, "what it shows": spec.description, "reproduces": spec.reproduces}
        for spec in page_specs(pages_dir)
        if not spec.default
    ]
    return pd.DataFrame(rows, columns=["page", "what it shows", "reproduces"])


# ---- deep links --------------------------------------------------------------------------------
def ensure_router() -> None:
    """Route a deep link on a freshly started server through app.py (called by every page).

    Why: Streamlit (checked up to 1.67) treats a ``pages/`` folder beside the entry point as a
    legacy (v1) multipage app until app.py has called ``st.navigation`` once. The first request
    of a fresh server for ``/neighbours`` therefore runs ``pages/neighbours.py`` alone, with
    Streamlit's own file list instead of our sidebar and navigation. Streamlit documents no switch
    for this (``st.navigation`` itself clears the flag, but only once app.py runs), and the
    ``pages/`` folder name is the project's agreed layout, so this function clears the same
    private class attribute ``PagesManager.uses_pages_directory`` that ``st.navigation`` clears,
    and reruns: the rerun goes through app.py, which routes the same URL.

    Only before app.py has run in this session: AppTest reruns pages in the legacy mode on
    purpose (``switch_page``), and a rerun there would swallow the click that triggered it.

    Guarded by tests/test_app_registry.py (the attribute exists, the script runner still consults
    it, and a deep link as first request of an AppTest gets the sidebar) and by the Chromium test
    tests/test_e2e_browser.py (a deep link on a fresh server). If a Streamlit upgrade breaks
    them, look for a public replacement before patching anew.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not st.session_state.get(KEY_ROUTED):
        PagesManager.uses_pages_directory = False
        st.rerun()
