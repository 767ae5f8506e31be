"""Poster extraction through extract(): real offline lite0 weights, generated posters, failures, cache,
resume, pluggable engines."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from recsys.data.dataset import Dataset
from recsys.errors import InvalidParameter, MediaError
from recsys.features import engines
from recsys.features.backbones import create_backbone
from recsys.features.config import RunOptions, make_config
from recsys.features.extract import extract, load_cached, load_entry
from recsys.features.store import Chunk, FeatureStore

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


def run_with(lite0, store, **options) -> RunOptions:
    return RunOptions(model=lite0, store=store, device="cpu", **options)


def test_failures_are_listed_and_second_run_is_a_cache_hit(poster_dir, lite0, tmp_path):
    dataset = make_dataset("generated", poster_dir)
    store = FeatureStore(tmp_path / "store", chunk_size=4)
    calls = []
    config = make_config(dataset, device="cpu")
    result = extract(
        dataset,
        config,
        run_with(lite0, store, batch_size=4, num_workers=0),
        progress=lambda done, total, message: calls.append((done, total, message)),
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
    assert calls[-1][:2] == (len(poster_dir), len(poster_dir)) and "images/s on cpu" in calls[-1][2]
    assert result.key == config.key() and result.config == config

    start = time.perf_counter()
    again = extract(dataset, make_config(dataset, device="cpu"), RunOptions(store=store))  # no model built
    assert time.perf_counter() - start < 1.0
    assert again.cache_hit and again.n_computed == 0 and again.device == "cpu"
    np.testing.assert_array_equal(again.features.matrix, result.features.matrix)
    assert sorted(again.failures["item_id"]) == [101, 102, 103, 104]

    cached = load_cached(dataset, config, RunOptions(store=store))
    np.testing.assert_array_equal(cached.features.matrix, result.features.matrix)
    by_key = load_entry(result.key, store)
    assert by_key.cache_hit and by_key.features.item_ids.tolist() == result.features.item_ids.tolist()
    entries = store.list_entries()
    assert len(entries) == 1 and bool(entries["complete"].iloc[0]) and entries["failures"].iloc[0] == 4
    assert entries["precision"].iloc[0] == "fp32"


def test_pipeline_matches_one_image_at_a_time_with_workers(poster_dir, lite0, tmp_path):
    good = {i: poster_dir[i] for i in range(1, 7)}
    dataset = make_dataset("workers", good)
    result = extract(
        dataset,
        make_config(dataset, device="cpu"),
        run_with(lite0, FeatureStore(tmp_path), batch_size=3, num_workers=1, channels_last=True),
    )
    with torch.inference_mode():
        for item_id, path in good.items():
            single = lite0.extract(lite0.transform(Image.open(path).convert("RGB"))[None]).numpy()[0]
            row = result.features.matrix[list(result.features.item_ids).index(item_id)]
            assert np.abs(single - row).max() < 1e-4


def test_interrupted_run_resumes_from_written_chunks(poster_dir, lite0, tmp_path):
    good = {i: poster_dir[i] for i in range(1, N_GOOD + 1)}
    dataset = make_dataset("resume", good)
    config = make_config(dataset, device="cpu")
    store = FeatureStore(tmp_path / "store", chunk_size=3)  # 10 items -> chunks of 3, 3, 3, 1

    def stop_after_two_chunks(done, total, message):
        if done >= 6:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        extract(dataset, config, run_with(lite0, store, batch_size=2, num_workers=0), stop_after_two_chunks)
    assert load_cached(dataset, config, RunOptions(store=store)) is None  # partial entries are never served
    # a later run asking for another chunk size keeps the plan the entry was started with
    resumed = extract(dataset, config, run_with(lite0, store, batch_size=2, num_workers=0, chunk_size=5))
    assert resumed.n_computed == 4 and resumed.n_reused == 6 and not resumed.cache_hit
    fresh = extract(dataset, config, run_with(lite0, FeatureStore(tmp_path / "fresh"), batch_size=5, num_workers=0))
    assert fresh.n_computed == 10
    np.testing.assert_allclose(resumed.features.matrix, fresh.features.matrix, atol=1e-4)


def test_unreadable_chunk_is_recomputed_not_a_crash(poster_dir, lite0, tmp_path, caplog):
    good = {i: poster_dir[i] for i in range(1, 5)}
    dataset = make_dataset("damaged", good)
    config = make_config(dataset, device="cpu")
    store = FeatureStore(tmp_path, chunk_size=2)
    first = extract(dataset, config, run_with(lite0, store, batch_size=2, num_workers=0))
    path = store.entry(config).chunk_path(1)
    path.write_bytes(b"PK\x03\x04 not a whole zip")
    with caplog.at_level("WARNING"):
        again = extract(dataset, config, run_with(lite0, store, batch_size=2, num_workers=0))
    assert not again.cache_hit and again.n_computed == 2 and again.n_reused == 2
    assert "computed again" in caplog.text
    np.testing.assert_allclose(again.features.matrix, first.features.matrix, atol=1e-5)


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
    config = make_config(dataset, device="cpu")
    first = extract(dataset, config, run_with(lite0, store, batch_size=2))
    Image.new("RGB", (60, 90), (200, 10, 10)).save(paths[2])
    assert extract(dataset, config, RunOptions(store=store)).key == first.key  # the config names the old files
    store.remove(first.key)
    with pytest.raises(InvalidParameter, match="changed since this configuration was made"):
        extract(dataset, config, run_with(lite0, store, batch_size=2))  # and never computes new ones under it
    second = extract(dataset, make_config(dataset, device="cpu"), run_with(lite0, store, batch_size=2))
    assert not second.cache_hit and second.key != first.key
    assert not np.allclose(first.features.matrix[1], second.features.matrix[1])


def test_png_named_jpg_poster_extracts(shared_data_dir, lite0, tmp_path):
    path = shared_data_dir / "posters-ml1m" / "3575.jpg"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dataset = make_dataset("png", {3575: str(path)})
    result = extract(dataset, make_config(dataset, device="cpu"), run_with(lite0, FeatureStore(tmp_path), batch_size=1))
    assert result.failures.empty and result.features.item_ids.tolist() == [3575]
    assert np.isfinite(result.features.matrix).all() and np.abs(result.features.matrix).sum() > 0


def test_refusals_come_before_any_model_is_built(poster_dir, lite0, tmp_path):
    store = FeatureStore(tmp_path)
    nothing = make_dataset("no-posters", {1: None, 2: None})
    with pytest.raises(MediaError, match="none of the 2 items has a poster file"):
        extract(nothing, make_config(nothing, device="cpu"), RunOptions(store=store, model="not built"))
    dataset = make_dataset("checks", {1: poster_dir[1]})
    with pytest.raises(InvalidParameter, match="config asks for"):
        extract(dataset, make_config(dataset, pooling="max", device="cpu"), run_with(lite0, store, batch_size=1))
    with pytest.raises(InvalidParameter, match="needs a CUDA device"):
        extract(dataset, make_config(dataset, precision="amp"), run_with(lite0, store, batch_size=1))
    with pytest.raises(InvalidParameter, match="unknown extraction engine 'warp'"):
        extract(dataset, make_config(dataset, device="cpu"), RunOptions(store=store, engine="warp"))
    with pytest.raises(InvalidParameter, match="for dataset 'checks', not 'other'"):
        extract(make_dataset("other", {1: poster_dir[1]}), make_config(dataset), RunOptions(store=store))
    assert store.list_entries().empty


class ConstantEngine:
    """A stand-in engine: every readable poster gets its file size as a 2-d feature."""

    name = "constant"

    def run(self, job: engines.ExtractionJob) -> engines.EngineReport:
        import os

        job.entry.start({"dim": 2, "backbone": {"backbone": "constant"}})
        count = 0
        for index in job.entry.pending_chunks():
            ids, rows, failed = [], [], []
            for item_id in job.entry.chunk_items(index):
                path = job.paths.get(int(item_id))
                if path and os.path.exists(path):
                    ids.append(int(item_id))
                    rows.append([os.path.getsize(path), 1.0])
                else:
                    failed.append((int(item_id), "no file"))
            job.entry.write_chunk(
                index,
                Chunk(
                    np.asarray(ids, np.int64),
                    np.asarray(rows, np.float32).reshape(-1, 2),
                    pd.DataFrame(failed, columns=["item_id", "reason"]),
                ),
            )
            count += len(ids)
            job.progress(count, len(job.entry.item_ids), "constant")
        return engines.EngineReport(device="nowhere", settings="constant", items=count, frames=count, seconds=0.5)


def test_engines_are_pluggable_and_share_the_store(poster_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "constant", f"{__name__}:ConstantEngine")
    dataset = make_dataset("engine", {1: poster_dir[1], 2: poster_dir[2], 3: None})
    config = make_config(dataset, device="cpu")
    store = FeatureStore(tmp_path, chunk_size=2)
    result = extract(dataset, config, RunOptions(engine="constant", store=store))
    assert result.device == "nowhere" and result.images_per_s == 4.0 and result.n_computed == 2
    assert result.features.matrix[:, 1].tolist() == [1.0, 1.0] and result.failures["item_id"].tolist() == [3]
    run = result.info["manifest"]["runs"][-1]
    assert run["engine"] == "constant" and run["n_failures"] == 1
    again = extract(dataset, config, RunOptions(store=store))  # any engine reads what another wrote
    assert again.cache_hit and again.key == result.key


def test_calibration_is_measured_once_and_remembered(lite0, caplog):
    from recsys.features import calibration

    with caplog.at_level("INFO", logger="recsys.features.calibration"):
        settings, record = calibration.calibrate(lite0, "cpu", force=True, budget_s=0.5)
    assert "calibration: measured" in caplog.text
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
    calibration.calibration_path().write_text("{ not json")  # damaged: measured again, not a crash
    with caplog.at_level("WARNING", logger="recsys.features.calibration"):
        calibration.calibrate(lite0, "cpu", budget_s=0.2)
    assert "unreadable" in caplog.text


def test_uncalibrated_run_uses_the_default_batch_and_does_not_change_the_key(poster_dir, lite0, tmp_path):
    dataset = make_dataset("uncalibrated", {1: poster_dir[1], 2: poster_dir[2]})
    config = make_config(dataset, device="cpu")
    result = extract(dataset, config, run_with(lite0, FeatureStore(tmp_path), calibrate=False, num_workers=0))
    assert result.settings == "cpu batch=16 contiguous" and result.key == config.key()
    assert result.info["manifest"]["runs"][-1]["settings"] == "cpu batch=16 contiguous"
