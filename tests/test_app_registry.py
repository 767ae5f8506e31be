"""The page registry (one list for navigation and Home) and the deep-link router's Streamlit patch.

The router clears a *private* Streamlit attribute (see recsys.ui.registry.ensure_router). These
tests fail when a Streamlit upgrade removes or renames it, or changes the legacy ``pages/``
behaviour it works around, so the patch is revisited instead of silently doing nothing.
"""

from __future__ import annotations

import inspect

from streamlit.testing.v1 import AppTest

from recsys import ui
from recsys.config import PROJECT_ROOT

APP = str(PROJECT_ROOT / "app.py")


def test_registry_lists_every_page_script_once_with_its_paper():
    files = sorted(p.name for p in (PROJECT_ROOT / "pages").glob("*.py"))
    assert sorted(spec.file for spec in ui.PAGES) == files  # a new page must be registered
    assert len({spec.url_path for spec in ui.PAGES}) == len(ui.PAGES)
    assert [spec.title for spec in ui.PAGES if spec.default] == ["Home"]
    for spec in ui.PAGES:
        assert spec.description and spec.reproduces and spec.icon.startswith(":material/")
        if not spec.default:
            assert spec.url_path == spec.file.removesuffix(".py")  # /neighbours is pages/neighbours.py


def test_navigation_and_home_table_come_from_the_registry(tmp_path):
    table = ui.pages_table()
    assert list(table["page"]) == [spec.title for spec in ui.PAGES if not spec.default]
    assert "w·CF + (1−w)·content" in " ".join(table["what it shows"])
    # a pages folder lacking a script: that page is neither in the navigation nor on Home
    for spec in ui.PAGES[:3]:
        (tmp_path / spec.file).write_text("")
    assert [spec.title for spec in ui.page_specs(tmp_path)] == [spec.title for spec in ui.PAGES[:3]]
    assert list(ui.pages_table(tmp_path)["page"]) == [spec.title for spec in ui.PAGES[1:3]]

    def script():
        import streamlit as st

        from recsys import ui

        pages = ui.register_pages()
        st.write([(page.title, page.url_path) for page in pages])

    app = AppTest.from_function(script).run()
    assert not app.exception, app.exception
    shown = app.json[0].value if app.json else app.markdown[0].value
    for spec in ui.PAGES:
        assert spec.title in str(shown)


def test_streamlit_still_has_the_private_flag_the_router_clears():
    from streamlit.commands import navigation
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import script_runner

    assert "uses_pages_directory" in vars(PagesManager)
    # the script runner still runs a pages/ app in legacy mode when the flag is set ...
    assert "PagesManager.uses_pages_directory" in inspect.getsource(script_runner)
    assert hasattr(script_runner, "_mpa_v1")
    # ... and st.navigation still clears the same flag (so clearing it early is what navigation does)
    assert "PagesManager.uses_pages_directory = False" in inspect.getsource(navigation.navigation)


def deep_link_first_run(data_dir) -> AppTest:
    """An AppTest whose very first run asks for /data (what a bookmarked link on a fresh server does)."""
    app = AppTest.from_file(APP, default_timeout=300)
    app.session_state[ui.KEY_DATA_DIR] = str(data_dir)
    app.switch_page("pages/data.py")
    return app.run()


def test_a_deep_link_as_first_request_is_routed_through_app_py(tmp_path):
    app = deep_link_first_run(tmp_path)
    assert not app.exception, app.exception
    assert [t.value for t in app.title] == ["Data"]
    assert app.sidebar.selectbox(key=ui.KEY_DATASET).value == "demo"  # app.py's sidebar ran


def test_without_the_router_streamlit_would_run_the_page_alone(tmp_path, monkeypatch):
    """The control: if this starts failing, Streamlit no longer needs the patch (drop it)."""
    import recsys.ui.registry as registry

    monkeypatch.setattr(registry, "ensure_router", lambda: None)
    app = deep_link_first_run(tmp_path)
    assert not app.exception, app.exception
    assert [t.value for t in app.title] == ["Data"]
    assert not app.sidebar.selectbox  # legacy mode: the page ran without app.py's sidebar
