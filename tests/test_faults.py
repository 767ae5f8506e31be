"""Faults that stay fixed: a killed extraction resumes to identical features, a full or read-only
disk leaves nothing that later reads as valid and ends in one message at most, processes and
Streamlit sessions racing on a cold cache all succeed, and every kind of damaged cache file is
computed again. The scenarios live in tests/bad_inputs.py (bench/bad_inputs_report.py counts them).
"""

from __future__ import annotations

import pytest
from bad_inputs import (
    all_faults,
    fault_concurrent_first_use,
    write_ml100k,
)

FAULTS = [(name, scenario) for name, scenario in all_faults() if name != "concurrent-first-use"]


@pytest.mark.parametrize("name, scenario", FAULTS, ids=[name for name, _ in FAULTS])
def test_fault_is_survived_without_data_loss(name, scenario, tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    result = scenario(tmp_path)
    if result.skipped:
        pytest.skip(result.skipped)
    assert result.survived and not result.data_lost, result.detail


def test_concurrent_first_use_from_three_processes(tmp_path, shared_data_dir):
    """Three `evaluate rmse-k` on one cold cache (the real ML-100K: long enough to overlap)."""
    result = fault_concurrent_first_use(tmp_path, shared_data_dir, processes=3)
    assert result.survived and not result.data_lost, result.detail


# a session whose script thread dies (even outside the page) fails the test, not only a warning
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_four_rating_page_sessions_at_once_on_a_cold_cache(tmp_path, monkeypatch):
    """Four Streamlit sessions (threads of one server process) open the Rating page together on
    a cold cache: one builds the demo and the split, the others wait or reuse; none shows an error."""
    from concurrent.futures import ThreadPoolExecutor
    from unittest.mock import MagicMock

    import streamlit.testing.v1.app_test as app_test_module
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
    from streamlit.runtime.dataframe_source_manager import DataframeSourceManager
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import AppTest
    from streamlit.testing.v1.util import patch_config_options

    from recsys import ui
    from recsys.config import PROJECT_ROOT

    # AppTest is not made for threads: each run sets the process-wide Runtime._instance to its own
    # mock and sets it back to None when it ends, so one session ending pulls the runtime from
    # under the others ("Runtime hasn't been created!" in their script threads), and each run
    # restores the appTest config flag on exit. A real server has one Runtime for all sessions:
    # here too, one shared runtime (AppTest's per-run mock lands on a subclass nobody reads) and
    # the flag held for the whole test.
    class _PerRunRuntime(Runtime):
        pass

    shared = MagicMock(spec=Runtime)
    shared.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    shared.cache_storage_manager = MemoryCacheStorageManager()
    shared.dataframe_source_mgr = DataframeSourceManager()
    shared.bidi_component_registry = BidiComponentManager()
    shared.bidi_component_registry.discover_and_register_components(start_file_watching=False)
    monkeypatch.setattr(app_test_module, "Runtime", _PerRunRuntime)
    monkeypatch.setattr(Runtime, "_instance", shared)

    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cold-cache"))
    empty = tmp_path / "no-movielens"
    empty.mkdir()

    def session(_):
        app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=600)
        app.session_state[ui.KEY_DATA_DIR] = str(empty)
        app.session_state["rp_kmax"] = 20
        app.session_state["rp_kstep"] = 10
        app.run()
        app.switch_page("pages/rating.py").run()
        return list(app.exception), [e.value for e in app.error], len(app.get("plotly_chart"))

    with patch_config_options({"global.appTest": True}), ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(session, range(4)))
    for exceptions, errors, n_charts in outcomes:
        assert not exceptions and not errors and n_charts >= 1, (exceptions, errors)


def test_info_with_a_read_only_cache_as_the_cli_runs_it(tmp_path, monkeypatch):
    """`recsys info` in this process with every cache write refused (EROFS at open): exit 0."""
    import errno

    from bad_inputs import _failing_disk, run_cli, write_ml1m

    write_ml100k(tmp_path)
    write_ml1m(tmp_path)
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    from recsys.data.registry import _MATCH_CACHE

    _MATCH_CACHE.clear()
    with _failing_disk(errno.EROFS, "open"):
        status, out, err = run_cli(["info", "--dataset", "ml-100k", "--data-dir", str(tmp_path), "-v"])
    assert status == 0 and "ml1m_match" in out, err
    assert "title matches not cached" in err and "read-only" in err
