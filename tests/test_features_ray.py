"""The Ray Data engine on the demo dataset, local mode, CPU: the same features as the local engine
(max abs diff <= 1e-5), under the same key, resuming what the other engine started. One
``ray.init(num_cpus=2)`` for the module, shut down at its end. Without Ray installed the engine
says how to install it (that test always runs)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from recsys.data import load_dataset
from recsys.errors import OptionalDependencyMissing
from recsys.features.config import RunOptions, make_config
from recsys.features.extract import extract
from recsys.features.store import FeatureStore


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch, tmp_path):
    from recsys.features.engines import ray as ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(OptionalDependencyMissing, match="Ray Data") as error:
        ray_engine.import_ray()
    assert "requirements-ray.txt" in error.value.user_message()


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
    pytest.importorskip("ray.data")
    import logging

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("media", ["posters", "trailers"])
def test_ray_engine_equals_the_local_engine_and_resumes_its_chunks(ray_local, demo, media, tmp_path):
    with_media = demo.items_with_poster() if media == "posters" else demo.items_with_trailer()
    without = [i for i in demo.items.index if i not in set(with_media)][:1]
    ids = [int(i) for i in with_media[:9]] + [int(i) for i in without]
    options = {"fps": 1} if media == "trailers" else {}
    config = make_config(demo, media, item_ids=ids, device="cpu", **options)
    local = extract(demo, config, RunOptions(device="cpu", batch_size=4, store=FeatureStore(tmp_path / "local")))

    # a run of the local engine stopped after its first chunk, finished by Ray under the same key
    store = FeatureStore(tmp_path / "shared", chunk_size=4)

    def stop_after_first_chunk(done, total, message):
        if done >= 4:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        extract(demo, config, RunOptions(device="cpu", batch_size=4, store=store), stop_after_first_chunk)
    ray = extract(demo, config, RunOptions(device="cpu", batch_size=4, engine="ray", store=store))
    assert ray.key == local.key == config.key() and ray.n_reused == 4 and ray.settings.startswith("ray[local]")
    assert ray.features.item_ids.tolist() == local.features.item_ids.tolist()
    assert np.abs(ray.features.matrix - local.features.matrix).max() <= 1e-5
    assert ray.failures.equals(local.failures) and ray.missing == local.missing
    if media == "trailers":
        assert ray.missing == [int(i) for i in without]
        assert ray.status.equals(local.status)
        for size in (10, 20):
            for item_id, windows in local.sequences[size].items():
                np.testing.assert_allclose(ray.sequences[size][item_id], windows, atol=1e-5)
    runs = ray.info["manifest"]["runs"]
    assert runs[-1]["engine"] == "ray" and runs[-1]["replicas"] >= 1
    again = extract(demo, config, RunOptions(store=store))  # the local engine reads what Ray wrote
    assert again.cache_hit and np.array_equal(again.features.matrix, ray.features.matrix)
