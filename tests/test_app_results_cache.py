"""Results the pages keep on disk (ui.disk_cached over recsys.cache.ResultsCache).

An entry must never outlive the code that produced it: a restarted server with an edited
experiment function (or an edited page) computes again instead of serving the old numbers.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
import textwrap

import pandas as pd
import pytest

from recsys import ui


def load_module(path, name):
    """Import `path` as a fresh module `name` (what a restarted server does with edited code)."""
    sys.modules.pop(name, None)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


EXPERIMENT = """
import pandas as pd

def experiment(k):
    return pd.DataFrame({{"k": [k], "rmse": [{value}]}})
"""


@pytest.fixture
def experiment_module(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "recsys_tmp_experiment.py"

    def version(value: float):
        path.write_text(textwrap.dedent(EXPERIMENT.format(value=value)))
        return load_module(path, "recsys_tmp_experiment")

    yield version
    sys.modules.pop("recsys_tmp_experiment", None)


def results_files(cache):
    return sorted((cache / "results").glob("*.pkl"))


def test_editing_an_experiment_never_serves_stale_numbers_after_a_restart(isolated_cache, experiment_module):
    old = experiment_module(0.95)
    calls = []

    def compute_with(module):
        def compute():
            calls.append(module)
            return module.experiment(10)

        return compute

    first = ui.disk_cached(old.experiment, {"dataset": "demo", "k": 10}, compute_with(old))
    again = ui.disk_cached(old.experiment, {"dataset": "demo", "k": 10}, compute_with(old))
    assert first["rmse"].item() == again["rmse"].item() == 0.95 and len(calls) == 1  # second call: from disk
    assert len(results_files(isolated_cache)) == 1

    new = experiment_module(0.91)  # the function is edited, the server restarted
    edited = ui.disk_cached(new.experiment, {"dataset": "demo", "k": 10}, compute_with(new))
    assert edited["rmse"].item() == 0.91 and len(calls) == 2
    files = results_files(isolated_cache)
    assert len(files) == 2  # two versions of the function, two entries
    assert all(f.name.startswith("experiment-") for f in files)
    assert ui.disk_cache_path(new.experiment, {"dataset": "demo", "k": 10}) in files


def test_parameters_version_and_page_code_each_make_their_own_entry(isolated_cache, experiment_module, tmp_path):
    module = experiment_module(0.9)
    fn = module.experiment
    base = ui.disk_cache_path(fn, {"k": 10})
    assert ui.disk_cache_path(fn, {"k": 20}) != base
    assert ui.disk_cache_path(fn, {"k": 10}, version=2) != base
    page = tmp_path / "page.py"
    page.write_text("# a page\n")
    before = ui.disk_cache_path(fn, {"k": 10}, page=str(page))
    page.write_text("# a page, edited: e.g. another number of factors in its compute()\n")
    assert ui.disk_cache_path(fn, {"k": 10}, page=str(page)) != before
    # default `page` is the calling file: the same call from here gives the same path
    assert ui.disk_cache_path(fn, {"k": 10}) == base


def test_a_damaged_entry_is_recomputed_and_a_full_disk_is_not_a_failure(isolated_cache, experiment_module, monkeypatch):
    fn = experiment_module(0.9).experiment
    frame = ui.disk_cached(fn, {"k": 3})
    path = ui.disk_cache_path(fn, {"k": 3})
    assert path.is_file()
    path.write_bytes(pickle.dumps(frame)[:20])  # truncated, and without the format header
    assert ui.disk_cached(fn, {"k": 3}).equals(frame)
    import errno

    import recsys.cache

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(recsys.cache, "atomic_write_bytes", full_disk)
    assert isinstance(ui.disk_cached(fn, {"k": 4}), pd.DataFrame)  # computed, just not kept
    assert not ui.disk_cache_path(fn, {"k": 4}).exists()
