"""The Audience page, run headless with Streamlit's AppTest on ML-100K and scikit-image photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from media_helpers import mp4_bytes

pytest.importorskip("facenet_pytorch")
skimage_data = pytest.importorskip("skimage.data")

from PIL import Image  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from recsys import ui  # noqa: E402
from recsys.config import PROJECT_ROOT  # noqa: E402

PAGE = str(PROJECT_ROOT / "pages" / "audience.py")


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def page(shared_data_dir):
    app = AppTest.from_file(PAGE, default_timeout=240)
    app.session_state[ui.KEY_DATA_DIR] = str(shared_data_dir)
    app.session_state[ui.KEY_DATASET] = "ml-100k"
    app.run()
    assert not app.exception, app.exception
    return app


def test_page_shows_model_and_the_cli_evaluation_numbers(page, shared_data_dir):
    from recsys.data import load_dataset
    from recsys.eval.groups import evaluate_groups

    assert "Balfaqih" in " ".join(c.value for c in page.caption)
    assert any("Upload a photo" in i.value for i in page.info)
    assert page.radio(key="audience_source").value == "Upload image"  # upload first; the camera on request
    shown = page.dataframe[-1].value
    expected = evaluate_groups(
        load_dataset("ml-100k", data_dir=shared_data_dir), n=10, test_fraction=0.2, seed=0
    ).round(4)
    assert shown[expected.columns].reset_index(drop=True).equals(expected.reset_index(drop=True))
    # every F1 has its 95 % interval around it, and the overall F1s are headline metrics with n
    scored = shown.dropna(subset=["f1_low"])  # a group of one user has no interval
    assert len(scored) >= len(shown) - 3 and (shown.loc[shown["f1_low"].isna(), "n_users"] < 2).all()
    assert (scored["f1_low"] <= scored["f1"] + 1e-4).all() and (scored["f1"] <= scored["f1_high"] + 1e-4).all()
    assert any(m.label.startswith("F1@10 · group recommender") for m in page.metric)
    # clusters are named by their genres, and the takeaway says plainly how the method compares
    import json
    import re

    heatmap = [
        json.loads(c.proto.spec)
        for c in page.get("plotly_chart")
        if "Cluster composition" in json.loads(c.proto.spec)["layout"]["title"]["text"]
    ][0]
    rows = heatmap["data"][0]["y"]
    assert rows and all(re.fullmatch(r"cluster \d+ \([^)]+\) · \d+ movies", label) for label in rows), rows
    verdict = [s.value for s in page.success if s.value.startswith("**Takeaway.**")]
    assert verdict and "baseline" in verdict[0]


def test_uploaded_photo_gives_faces_and_a_top_10(page):
    page.radio(key="audience_source").set_value("Upload image").run()
    page.file_uploader(key="audience_upload").set_value(
        ("astronaut.png", png_bytes(skimage_data.astronaut()), "image/png")
    ).run()
    assert not page.exception, page.exception
    assert any(h.value == "1 face found" for h in page.subheader)
    faces = page.dataframe[0].value
    assert faces.loc[0, "gender"] == "F" and faces.loc[0, "emotion"] == "happy"
    assert faces.loc[0, "age band"] in {"25-37", "38-47"}
    title = [h.value for h in page.subheader if h.value.startswith("Top-10")]
    assert title and "· F · happy" in title[0]
    # ten poster cards: ML-100K posters are in the shared data, so ten images
    assert len(page.get("image")) == 10


def test_photo_without_face_and_non_image_get_messages(page):
    page.radio(key="audience_source").set_value("Upload image").run()
    page.file_uploader(key="audience_upload").set_value(
        ("coffee.png", png_bytes(skimage_data.coffee()), "image/png")
    ).run()
    assert not page.exception
    assert any("No face found" in w.value for w in page.warning)
    page.file_uploader(key="audience_upload").set_value(("notes.png", b"plain text, not a picture", "image/png")).run()
    assert not page.exception
    assert any("not an image" in w.value for w in page.warning)


def test_page_through_the_app_on_the_synthetic_demo(tmp_path_factory):
    """Opened via app.py's navigation with no MovieLens present: the demo dataset still works."""
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300)
    app.session_state[ui.KEY_DATA_DIR] = str(tmp_path_factory.mktemp("no-movielens"))
    app.run()
    app.switch_page("pages/audience.py").run()
    assert not app.exception, app.exception
    assert any("synthetic" in w.value for w in app.warning)
    app.radio(key="audience_source").set_value("Upload image").run()
    app.file_uploader(key="audience_upload").set_value(
        ("astronaut.png", png_bytes(skimage_data.astronaut()), "image/png")
    ).run()
    assert not app.exception, app.exception
    assert any(h.value.startswith("Top-10 for group") for h in app.subheader)
    assert len(app.get("image")) == 10


def test_camera_sequence_mode_averages_successive_snapshots(page):
    def jpeg(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "JPEG", quality=90)
        return buffer.getvalue()

    astronaut = skimage_data.astronaut()
    page.radio(key="audience_source").set_value("Camera").run()
    page.toggle(key="audience_camera_sequence").set_value(True).run()
    for shift in (0, 6, 12):
        page.camera_input(key="audience_camera").set_value(
            ("snap.jpg", jpeg(np.roll(astronaut, shift, axis=1)), "image/jpeg")
        ).run()
        assert not page.exception, page.exception
    faces = page.dataframe[0].value
    assert len(faces) == 1 and faces.loc[0, "frames"] == 3  # three snapshots of one face, one track
    assert faces.loc[0, "emotion"] == "happy"
    assert any("3 frames analysed" in c.value for c in page.caption)


def test_uploaded_video_is_averaged_over_frames(page):
    pytest.importorskip("av")

    astronaut = skimage_data.astronaut()
    clip = mp4_bytes([np.roll(astronaut, shift, axis=1) for shift in range(0, 32, 4)], fps=4)
    page.radio(key="audience_source").set_value("Upload short video").run()
    page.slider(key="audience_window").set_value(2).run()
    page.file_uploader(key="audience_video").set_value(("clip.mp4", clip, "video/mp4")).run()
    assert not page.exception, page.exception
    faces = page.dataframe[0].value
    assert len(faces) == 1 and faces.loc[0, "frames"] == 2 and faces.loc[0, "emotion"] == "happy"
    assert any("4 frames analysed" in c.value for c in page.caption)
