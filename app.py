"""Entry point: `streamlit run app.py`. Shared sidebar + navigation; pages live in pages/ and are
listed once, in recsys.ui.registry.PAGES."""

import logging

import streamlit as st

from recsys import ui
from recsys.logs import level_from_env, setup_logging

# Decisions (dataset read or parsed, cache hits, downloads) go to the server log; $RECSYS_LOG_LEVEL overrides.
setup_logging(level_from_env(logging.INFO))

st.set_page_config(
    page_title="Multimodal RecSys Lab",
    # A local PNG: a ':material/…:' page icon makes the browser fetch it from fonts.gstatic.com,
    # which an offline classroom machine cannot reach.
    page_icon=str(ui.FAVICON),
    layout="wide",
    # Presentation mode folds the sidebar away (its arrow brings it back); set again on every run,
    # so toggling the mode or opening a ?present=1 link applies it.
    initial_sidebar_state="collapsed" if ui.presentation() else "expanded",
)

navigation = st.navigation(ui.register_pages())
ui.render_sidebar()
ui.run_page(navigation)
