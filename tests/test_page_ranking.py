"""The Ranking page, run headless with Streamlit's AppTest through app.py on the synthetic demo dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from recsys import ui
from recsys.config import PROJECT_ROOT

APP = str(PROJECT_ROOT / "app.py")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The page on the demo (no MovieLens in the data folder), genre features, 2 epochs."""
    app = AppTest.from_file(APP, default_timeout=300)
    app.session_state[ui.KEY_DATA_DIR] = str(tmp_path_factory.mktemp("no-movielens"))
    app.run()
    assert not app.exception, app.exception
    app.switch_page("pages/ranking.py").run()
    assert not app.exception, app.exception
    return app


def test_ranking_page_trains_on_demand_and_shows_models_control_and_lists(page):
    from recsys.data import load_dataset
    from recsys.eval import ranking as rk
    from recsys.models.popularity import MostPop

    assert page.title[0].value == "Ranking"
    assert not page.get("plotly_chart")  # nothing is trained before the button
    page.selectbox(key="rank_features").set_value(ui.GENRE_REPRESENTATION)
    page.number_input(key="rank_epochs").set_value(2)
    page.button(key="rank_run").click().run()
    assert not page.exception, page.exception

    # the control's headline sentence, with its interval
    headline = " ".join(s.value for s in page.success)
    assert "Recall@20 over the same model without them" in headline and "±" in headline
    # models x metrics table: MostPop's Recall@20 equals the evaluation run directly
    table = page.dataframe[0].value
    assert list(table.index) == ["MostPop", "ItemKNN", "BPR", "VBPR"]
    demo = load_dataset("demo")
    task = rk.make_task(demo.ratings, "per_user")  # the page's default protocol
    model = MostPop().fit(task.train)
    expected = rk.evaluate_scores(task, model.score, [20], item_ids=model.item_ids_).per_user["recall"]
    mean, low, high = rk.interval(expected)
    assert table.loc["MostPop", "Recall@20"] == rk.format_estimate(mean, low, high)
    # bar chart with intervals, one bar per model
    bars = json.loads(page.get("plotly_chart")[0].proto.spec)["data"][0]
    assert bars["type"] == "bar" and len(bars["x"]) == 4 and "error_y" in bars
    assert "Download table (CSV)" in [b.proto.label for b in page.get("download_button")]
    # per-user lists as poster cards: one captioned poster per listed item, liked ones ticked
    user = page.selectbox(key="rank_user").value
    captions = [c for image in page.get("image") for c in image.captions]
    assert len(captions) == 4 * 10
    held_out = task.test
    liked = set(held_out.loc[(held_out["user_id"] == user) & (held_out["rating"] >= 4), "item_id"])
    ticked = {t for t in demo.items.loc[list(liked), "title"]} if liked else set()
    assert all(c[2:] in ticked for c in captions if c.startswith("✓ "))
    # switching the metric redraws from the disk cache, no retraining
    page.selectbox(key="rank_metric").set_value("ndcg").run()
    assert not page.exception, page.exception
    assert "NDCG@20" in json.loads(page.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    values = [np.isfinite(float(cell.split()[0])) for cell in table["AUC"]]
    assert all(values)
