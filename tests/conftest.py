"""Shared fixtures: real data from ../shared/data (or $RECSYS_TEST_DATA_DIR) and an isolated cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Real data for the tests: the workplace's shared data beside the repository (never committed).
SHARED_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

os.environ.setdefault("OMP_NUM_THREADS", "2")
# The expected numbers in the tests are CPU numbers: the suite runs on the CPU unless RECSYS_DEVICE
# says otherwise, also on a machine with a GPU. CUDA behaviour has its own tests, which pass
# device="cuda" explicitly and skip with the reason where there is none (test_features_gpu.py,
# test_models_fm_parity.py).
os.environ.setdefault("RECSYS_DEVICE", "cpu")


def pytest_configure(config):
    # Set before any fixture (module- or session-scoped ones included) builds cached artefacts,
    # so a test run never writes into the user's real cache. $RECSYS_TEST_CACHE_DIR reuses one
    # cache across runs (handy locally: the demo dataset and extracted features are kept).
    cache = os.environ.get("RECSYS_TEST_CACHE_DIR") or tempfile.mkdtemp(prefix="recsys-test-cache-")
    os.environ["RECSYS_CACHE_DIR"] = cache
    # The dashboard's data-folder field accepts only configured roots: the tests point it at the
    # shared data and at their own temporary folders.
    roots = [os.environ.get("RECSYS_TEST_DATA_DIR", str(SHARED_DATA_DIR)), tempfile.gettempdir()]
    os.environ.setdefault("RECSYS_DATA_ROOTS", os.pathsep.join(roots))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    path = Path(os.environ.get("RECSYS_TEST_DATA_DIR", SHARED_DATA_DIR))
    if not (path / "ml-100k" / "u.data").exists():
        pytest.skip(f"real MovieLens data not found at {path} (set RECSYS_TEST_DATA_DIR)")
    return path


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A cache directory of the test's own, for tests that check what gets written."""
    cache = tmp_path / "recsys-cache"
    cache.mkdir()
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(cache))
    return cache
