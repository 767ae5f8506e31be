"""Shared fixtures: real data from ../shared/data (or $RECSYS_DATA_DIR) and an isolated cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys.config import SHARED_DATA_DIR

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    path = Path(os.environ.get("RECSYS_TEST_DATA_DIR", SHARED_DATA_DIR))
    if not (path / "ml-100k" / "u.data").exists():
        pytest.skip(f"real MovieLens data not found at {path} (set RECSYS_TEST_DATA_DIR)")
    return path


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session writes generated artefacts to its own cache, never the user's."""
    cache = tmp_path_factory.getbasetemp() / "recsys-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(cache))
    return cache
