"""Pages at ML-20M/25M scale, exercised on a small generated dataset with the pages' limits shrunk.

The full-size numbers (a generated ML-25M shape, by hand) are in the README's Pages section; here a
MovieLens-shaped dataset of a few thousand ratings, loaded through the ml-25m loader, must make
the pages take their stated samples, say so, and draw the map with WebGL.
"""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from recsys import ui
from recsys.config import PROJECT_ROOT

APP = str(PROJECT_ROOT / "app.py")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from recsys.data.generate import generate_movielens, shape_from_args

    root = tmp_path_factory.mktemp("generated")
    generate_movielens(root / "ml-25m", shape_from_args("custom", users=300, movies=250, ratings=20_000), seed=0)
    return root


@pytest.fixture
def small_limits(monkeypatch):
    from recsys.ui import scale
    from recsys.viz import embedding

    monkeypatch.setitem(scale.LIMITS, "max_users", 40)
    monkeypatch.setitem(scale.LIMITS, "max_test", 1_500)
    monkeypatch.setitem(scale.LIMITS, "max_ratings", 5_000)
    monkeypatch.setitem(scale.LIMITS, "sample_users", 120)
    monkeypatch.setattr(embedding, "WEBGL_MIN_POINTS", 100)
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(data_dir, page: str, state: dict | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=600)
    app.session_state[ui.KEY_DATA_DIR] = str(data_dir)
    app.session_state[ui.KEY_DATASET] = "ml-25m"
    for key, value in (state or {}).items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, app.exception
    app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, app.exception
    return app


def test_rating_page_scores_a_stated_test_sample_and_names_the_full_command(generated, small_limits):
    state = {"rp_kmax": 20, "rp_kstep": 10, "rp_representations": ["ratings only (user KNN)"]}
    app = open_page(generated, "rating", state)
    banner = [i.value for i in app.info if i.value.startswith("**A stated sample:**")]
    assert banner and "test ratings of 40 of" in banner[0] and "--full" in banner[0]
    n = int(next(m.value for m in app.metric if m.label == "held-out ratings (n)").replace(",", ""))
    assert n <= 1_500
    assert "sampled test ratings" in [c for c in app.get("plotly_chart")][0].proto.spec


def test_recommend_page_uses_a_stated_user_sample(generated, small_limits):
    app = open_page(generated, "recommend")
    banner = [i.value for i in app.info if i.value.startswith("**A stated sample:**")]
    assert banner and "120 of 300 users" in banner[0]
    assert app.dataframe[0].value["list length"].gt(0).all()


def test_embedding_map_switches_to_webgl_and_pages_without_posters_say_so(generated, small_limits):
    app = open_page(generated, "embedding")
    figure = app.get("plotly_chart")[0].proto.spec
    assert '"type":"scattergl"' in figure.replace(" ", "")
    app = open_page(generated, "neighbours")
    assert any("has no posters" in i.value for i in app.info)


def test_a_generated_dataset_is_labelled_synthetic_in_the_sidebar_pages_and_exports(generated, small_limits):
    app = AppTest.from_file(APP, default_timeout=600)
    app.session_state[ui.KEY_DATA_DIR] = str(generated)
    app.session_state[ui.KEY_DATASET] = "ml-25m"
    app.run()
    assert not app.exception, app.exception
    assert "ml-25m (synthetic)" in app.sidebar.selectbox(key=ui.KEY_DATASET).options
    app.switch_page("pages/data.py").run()
    assert not app.exception, app.exception
    assert any("ml-25m**, a **synthetic** dataset" in w.value for w in app.warning)
    assert any("synthetic generated data" in c.proto.spec for c in app.get("plotly_chart"))


def test_fusion_page_defaults_to_three_folds_beyond_the_sample_threshold(generated, small_limits, monkeypatch):
    app = open_page(generated, "fusion", {"fu_features": "genres"})
    assert app.session_state["fu_folds"] == 3  # 20,000 ratings > the shrunk 5,000 threshold
    assert not app.exception
    from recsys.ui import scale

    monkeypatch.setitem(scale.LIMITS, "max_ratings", 50_000)
    app = open_page(generated, "fusion", {"fu_features": "genres"})
    assert app.session_state["fu_folds"] == 5
