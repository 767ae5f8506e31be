"""Entry point: `streamlit run app.py`. Shared sidebar + navigation; pages live in pages/."""

import streamlit as st

from recsys import ui

st.set_page_config(
    page_title="Multimodal RecSys Lab",
    page_icon=":material/movie:",
    layout="wide",
    initial_sidebar_state="expanded",
)

navigation = st.navigation(ui.register_pages())
ui.render_sidebar()
ui.run_page(navigation)
