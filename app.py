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
    page_icon=":material/movie:",
    layout="wide",
    initial_sidebar_state="expanded",
)

navigation = st.navigation(ui.register_pages())
ui.render_sidebar()
ui.run_page(navigation)
