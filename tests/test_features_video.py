"""Trailer path on videos generated with PyAV: fps sampling, aggregation, per-item status."""

from __future__ import annotations

import av
import numpy as np
import pandas as pd
import pytest
import torch
from video_helpers import write_clip

from recsys.data.dataset import Dataset
from recsys.data.errors import MediaError
from recsys.features.config import RunOptions, make_config
from recsys.features.extract import extract, load_cached
from recsys.features.store import FeatureStore
from recsys.features.video import expected_frame_count, mean_embedding, sample_frames, window_embeddings


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trailers")
    long = write_clip(folder / "long.mp4", seconds=10, rate=24)
    short = write_clip(folder / "short.mp4", seconds=3, rate=25)
    data = open(long, "rb").read()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (folder / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return {
        "long": long,
        "short": short,
        "truncated": str(folder / "truncated.mp4"),
        "noise": str(folder / "noise.mp4"),
    }


@pytest.mark.parametrize("fps", [1, 2, 3])
def test_frame_counts_follow_duration(videos, fps):
    for name, seconds in (("long", 10), ("short", 3)):
        sampled = sample_frames(videos[name], fps=fps)
        assert sampled.duration_s == pytest.approx(seconds, abs=0.05)
        assert len(sampled.frames) == expected_frame_count(seconds, fps) == seconds * fps
        assert np.allclose(np.diff(sampled.times), 1 / fps, atol=0.03)  # evenly spaced by timestamp


def test_max_duration_cuts_and_says_so(videos):
    sampled = sample_frames(videos["long"], fps=2, max_duration=4)
    assert len(sampled.frames) == 8 and max(sampled.times) < 4
    assert sampled.note == "cut at 4 s of 10 s" and sampled.duration_s == pytest.approx(4, abs=0.05)


def test_every_nth_frame(videos):
    sampled = sample_frames(videos["long"], fps=None, every_nth=24)
    assert sampled.indices == list(range(0, 240, 24))
    with pytest.raises(ValueError, match="exactly one"):
        sample_frames(videos["long"], fps=1, every_nth=2)


def test_unreadable_videos_raise_media_error(videos, tmp_path):
    for name in ("truncated", "noise"):
        with pytest.raises(MediaError, match=name):
            sample_frames(videos[name], fps=1)
    with av.open(str(tmp_path / "audio.mkv"), "w") as container:  # a valid file without pictures
        stream = container.add_stream("pcm_s16le", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in list(stream.encode(frame)) + list(stream.encode()):
            container.mux(packet)
    with pytest.raises(MediaError, match="no video stream"):
        sample_frames(tmp_path / "audio.mkv", fps=1)
    with pytest.raises(MediaError):
        sample_frames(tmp_path / "absent.mp4", fps=1)


def test_mean_and_window_aggregation():
    frames = np.arange(30 * 2, dtype=np.float32).reshape(30, 2)
    np.testing.assert_allclose(mean_embedding(frames), frames.mean(axis=0))
    windows = window_embeddings(frames, 10, stride=5)
    assert windows.shape == (5, 2)  # starts 0, 5, 10, 15, 20
    np.testing.assert_allclose(windows[1], frames[5:15].mean(axis=0))
    assert window_embeddings(frames, 20, stride=5).shape == (3, 2)
    assert window_embeddings(frames[:7], 10, stride=5).shape == (0, 2)


def test_trailer_extraction_statuses_shapes_and_cache(videos, tmp_path):
    torch.set_num_threads(1)
    ids = [1, 2, 3, 4, 5]
    paths = [videos["long"], videos["short"], videos["truncated"], videos["noise"], None]
    items = pd.DataFrame(
        {"title": [f"m{i}" for i in ids], "year": pd.array([2001] * 5, dtype="Int64")},
        index=pd.Index(ids, name="item_id"),
    )
    dataset = Dataset(
        "clips",
        pd.DataFrame({"user_id": [1], "item_id": [1], "rating": [3.0], "timestamp": [0]}),
        items,
        pd.DataFrame({"Drama": np.ones(5, np.uint8)}, index=items.index),
        trailers=pd.Series(paths, index=items.index, dtype=object),
    )
    store = FeatureStore(tmp_path)

    def run(**options):
        return RunOptions(store=store, device="cpu", **options)

    config = make_config(dataset, "trailers", fps=2, device="cpu")
    result = extract(dataset, config, run(window_sizes=(10, 20), window_stride=5, batch_size=8, num_workers=0))
    assert result.features.item_ids.tolist() == [1, 2] and result.features.dim == 1280
    assert sorted(result.failures["item_id"]) == [3, 4] and result.missing == [5]  # no trailer: coverage
    status = result.status.set_index("item_id")
    assert status.loc[1, "n_frames"] == 20 and status.loc[2, "n_frames"] == 6
    assert status.loc[1, "status"] == "ok" and "shorter than 10" in status.loc[2, "status"]
    assert status.loc[3, "status"].startswith("failed") and status.loc[5, "status"] == "no trailer"
    assert "1 without a trailer" in result.summary()
    assert result.sequences[10][1].shape == (3, 1280) and result.sequences[20][1].shape == (1, 1280)
    assert result.sequences[10][2].shape == (0, 1280)
    # DFV = mean of the frames; the single 20-frame window of a 20-frame clip is the same vector.
    np.testing.assert_allclose(result.sequences[20][1][0], result.features.matrix[0], atol=1e-5)
    assert "frames/s on cpu" in result.summary()

    again = extract(dataset, make_config(dataset, "trailers", fps=2.0), run(window_sizes=(5,), window_stride=2))
    assert again.cache_hit and again.key == result.key and again.sequences[5][1].shape == (8, 1280)
    cached = load_cached(dataset, config, run())
    np.testing.assert_array_equal(cached.features.matrix, result.features.matrix)
    assert load_cached(dataset, make_config(dataset, "trailers", fps=1), run()) is None

    nth = make_config(dataset, "trailers", every_nth=48, item_ids=[1, 2], device="cpu")
    nth_result = extract(dataset, nth, run(batch_size=8, num_workers=1))
    assert nth_result.status.set_index("item_id")["n_frames"].to_dict() == {1: 5, 2: 2}  # 240 and 75 frames
    assert load_cached(dataset, nth, run()) is not None

    capped = make_config(dataset, "trailers", fps=2, max_duration=4, item_ids=[1, 2], device="cpu")
    capped_result = extract(dataset, capped, run(batch_size=8, num_workers=0))
    capped_status = capped_result.status.set_index("item_id")
    assert capped_status["n_frames"].to_dict() == {1: 8, 2: 6} and capped.key() != config.key()
    assert "cut at 4 s" in capped_status.loc[1, "status"] and capped_status.loc[2, "status"].endswith(
        "windows of [10, 20]"
    )
