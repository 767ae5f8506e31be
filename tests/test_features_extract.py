"""Poster extraction pipeline: real offline lite0 weights, generated posters, failures, cache, resume."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from recsys.data.dataset import Dataset
from recsys.features.backbones import create_backbone
from recsys.features.extract import extract_poster_features, load_cached_features, load_entry
from recsys.features.store import FeatureStore

N_GOOD = 10


def make_dataset(name: str, posters: dict[int, str | None]) -> Dataset:
    ids = sorted(posters)
    items = pd.DataFrame(
        {"title": [f"movie {i}" for i in ids], "year": pd.array([2000] * len(ids), dtype="Int64")},
        index=pd.Index(ids, name="item_id"),
    )
    genres = pd.DataFrame({"Drama": np.ones(len(ids), np.uint8)}, index=items.index)
    ratings = pd.DataFrame(
        {
            "user_id": [1] * len(ids),
            "item_id": ids,
            "rating": np.full(len(ids), 4.0, np.float32),
            "timestamp": np.zeros(len(ids), np.int64),
        }
    )
    series = pd.Series([posters[i] for i in ids], index=items.index, dtype=object)
    return Dataset(name, ratings, items, genres, posters=series)


@pytest.fixture(scope="module")
def poster_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("posters")
    rng = np.random.default_rng(0)
    paths = {}
    for item_id in range(1, N_GOOD + 1):
        # Smooth random posters (noise upsampled) so features differ between items.
        small = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((60, 90), Image.BILINEAR)
        path = folder / f"{item_id}.jpg"
        image.save(path, quality=90)
        paths[item_id] = str(path)
    data = (folder / "1.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "garbage.jpg").write_bytes(b"<html>not an image</html>")
    paths[101] = str(folder / "truncated.jpg")
    paths[102] = str(folder / "garbage.jpg")
    paths[103] = str(folder / "does-not-exist.jpg")
    paths[104] = None
    return paths


@pytest.fixture(scope="module")
def lite0():
    torch.set_num_threads(1)
    return create_backbone("tf_efficientnet_lite0")


def test_failures_are_listed_and_second_run_is_a_cache_hit(poster_dir, lite0, tmp_path):
    dataset = make_dataset("generated", poster_dir)
    store = FeatureStore(tmp_path / "store", chunk_size=4)
    calls = []
    result = extract_poster_features(
        dataset,
        lite0,
        store=store,
        batch_size=4,
        num_workers=0,
        progress=lambda done, total, message: calls.append((done, total)),
    )
    assert sorted(result.features.item_ids.tolist()) == list(range(1, N_GOOD + 1))
    assert result.features.dim == 1280 and np.isfinite(result.features.matrix).all()
    reasons = result.failures.set_index("item_id")["reason"]
    assert sorted(reasons.index) == [101, 102, 103, 104]
    # PIL's own diagnosis, which depends on where the data stops.
    assert "truncated.jpg" in reasons[101] and re.search(r"image file is truncated|Truncated File Read", reasons[101])
    assert "garbage.jpg" in reasons[102]
    assert "not found" in reasons[103]
    assert result.device == "cpu" and result.images_per_s > 0 and not result.cache_hit
    assert calls[-1] == (len(poster_dir), len(poster_dir))

    start = time.perf_counter()
    again = extract_poster_features(dataset, "tf_efficientnet_lite0", store=store)
    assert time.perf_counter() - start < 1.0
    assert again.cache_hit and again.n_computed == 0
    np.testing.assert_array_equal(again.features.matrix, result.features.matrix)
    assert sorted(again.failures["item_id"]) == [101, 102, 103, 104]

    cached = load_cached_features(dataset, store=store)
    np.testing.assert_array_equal(cached.subset(result.features.item_ids).matrix, result.features.matrix)
    by_key = load_entry(result.key, store)
    assert by_key.cache_hit and by_key.features.item_ids.tolist() == result.features.item_ids.tolist()
    entries = store.list_entries()
    assert len(entries) == 1 and bool(entries["complete"].iloc[0]) and entries["failures"].iloc[0] == 4


def test_pipeline_matches_one_image_at_a_time_with_workers(poster_dir, lite0, tmp_path):
    good = {i: poster_dir[i] for i in range(1, 7)}
    result = extract_poster_features(
        make_dataset("workers", good),
        lite0,
        store=FeatureStore(tmp_path),
        batch_size=3,
        num_workers=1,
        channels_last=True,
    )
    with torch.inference_mode():
        for item_id, path in good.items():
            single = lite0.extract(lite0.transform(Image.open(path).convert("RGB"))[None]).numpy()[0]
            row = result.features.matrix[list(result.features.item_ids).index(item_id)]
            assert np.abs(single - row).max() < 1e-4


def test_interrupted_run_resumes_from_written_chunks(poster_dir, lite0, tmp_path):
    good = {i: poster_dir[i] for i in range(1, N_GOOD + 1)}
    dataset = make_dataset("resume", good)
    store = FeatureStore(tmp_path / "store", chunk_size=3)  # 10 items -> chunks of 3, 3, 3, 1

    def stop_after_two_chunks(done, total, message):
        if done >= 6:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        extract_poster_features(
            dataset, lite0, store=store, batch_size=2, num_workers=0, progress=stop_after_two_chunks
        )
    assert load_cached_features(dataset, store=store) is None  # partial entries are never served
    resumed = extract_poster_features(dataset, lite0, store=store, batch_size=2, num_workers=0)
    assert resumed.n_computed == 4 and resumed.n_reused == 6 and not resumed.cache_hit
    fresh = extract_poster_features(dataset, lite0, store=FeatureStore(tmp_path / "fresh"), batch_size=5, num_workers=0)
    assert fresh.n_computed == 10
    np.testing.assert_allclose(resumed.features.matrix, fresh.features.matrix, atol=1e-4)


def test_changed_poster_file_is_a_new_cache_key(poster_dir, lite0, tmp_path):
    folder = tmp_path / "posters"
    folder.mkdir()
    paths = {}
    for item_id in (1, 2):
        target = folder / f"{item_id}.jpg"
        target.write_bytes(open(poster_dir[item_id], "rb").read())
        paths[item_id] = str(target)
    dataset = make_dataset("changing", paths)
    store = FeatureStore(tmp_path / "store")
    first = extract_poster_features(dataset, lite0, store=store, batch_size=2)
    Image.new("RGB", (60, 90), (200, 10, 10)).save(paths[2])
    second = extract_poster_features(dataset, lite0, store=store, batch_size=2)
    assert not second.cache_hit and second.key != first.key
    assert not np.allclose(first.features.matrix[1], second.features.matrix[1])


def test_png_named_jpg_poster_extracts(shared_data_dir, lite0, tmp_path):
    path = shared_data_dir / "posters-ml1m" / "3575.jpg"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = extract_poster_features(
        make_dataset("png", {3575: str(path)}), lite0, store=FeatureStore(tmp_path), batch_size=1
    )
    assert result.failures.empty and result.features.item_ids.tolist() == [3575]
    assert np.isfinite(result.features.matrix).all() and np.abs(result.features.matrix).sum() > 0


def test_calibration_is_measured_once_and_remembered(lite0):
    from recsys.features import calibration

    settings, record = calibration.calibrate(lite0, "cpu", force=True, budget_s=0.5)
    assert settings.batch_size in calibration.CPU_BATCH_SIZES and len(record["measurements"]) >= 2
    fastest = max(m["images_per_s"] for m in record["measurements"])
    chosen = record["best"]
    assert chosen in record["measurements"]
    # The fastest setting wins unless a single-thread one is within the robustness margin.
    assert chosen["images_per_s"] == fastest or (
        chosen["threads"] == 1 and chosen["images_per_s"] * calibration.SINGLE_THREAD_MARGIN >= fastest
    )
    start = time.perf_counter()
    again, stored = calibration.calibrate(lite0, "cpu")
    assert time.perf_counter() - start < 0.1
    assert (again.batch_size, again.channels_last) == (settings.batch_size, settings.channels_last)
    assert stored["measured"] == record["measured"]
