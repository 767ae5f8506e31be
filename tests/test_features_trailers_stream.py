"""Streaming trailer extraction: batches mixed across trailers, cut / truncated notes, keyframe
sampling, coverage vs failures, monotonic progress, and memory that does not grow with a video's length."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch
from video_helpers import write_clip

from recsys.data.dataset import Dataset
from recsys.errors import MediaError
from recsys.features.backbones import create_backbone
from recsys.features.config import RunOptions, make_config
from recsys.features.extract import extract
from recsys.features.store import FeatureStore
from recsys.features.video import FrameSampler, sample_frames


def trailer_dataset(name: str, paths: dict) -> Dataset:
    ids = sorted(paths)
    items = pd.DataFrame(
        {"title": [f"m{i}" for i in ids], "year": pd.array([2000] * len(ids), dtype="Int64")},
        index=pd.Index(ids, name="item_id"),
    )
    return Dataset(
        name,
        pd.DataFrame({"user_id": [1], "item_id": [ids[0]], "rating": [3.0], "timestamp": [0]}),
        items,
        pd.DataFrame({"Drama": np.ones(len(ids), np.uint8)}, index=items.index),
        trailers=pd.Series([paths[i] for i in ids], index=items.index, dtype=object),
    )


@pytest.fixture(scope="module")
def lite0():
    torch.set_num_threads(1)
    return create_backbone("tf_efficientnet_lite0")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    paths = {i: write_clip(folder / f"{i}.mp4", seconds=s) for i, s in ((1, 3), (2, 5), (3, 2), (4, 7))}
    whole = write_clip(folder / "whole.mp4", seconds=10, faststart=True)
    data = open(whole, "rb").read()
    (folder / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])  # an MP4 cut to 60 %
    paths["cut"] = str(folder / "cut.mp4")
    paths["dense"] = write_clip(folder / "dense.mp4", seconds=10, codec="libx264", gop=6)
    paths["sparse"] = write_clip(folder / "sparse.mp4", seconds=10, codec="libx264", gop=240)
    return paths


def test_batches_mix_trailers_and_match_one_trailer_at_a_time(clips, lite0, tmp_path):
    paths = {i: clips[i] for i in (1, 2, 3, 4)}
    dataset = trailer_dataset("mixed", paths)
    calls = []
    result = extract(
        dataset,
        make_config(dataset, "trailers", fps=2, device="cpu"),
        RunOptions(device="cpu", model=lite0, store=FeatureStore(tmp_path, chunk_size=3), batch_size=8, num_workers=2),
        progress=lambda done, total, message: calls.append((done, total, message)),
    )
    assert result.status.set_index("item_id")["n_frames"].to_dict() == {1: 6, 2: 10, 3: 4, 4: 14}
    with torch.inference_mode():
        for row, item_id in enumerate(result.features.item_ids):
            frames = torch.stack(sample_frames(paths[item_id], fps=2, transform=lite0.transform).frames)
            alone = lite0.extract(frames).numpy().mean(axis=0)
            assert np.abs(alone - result.features.matrix[row]).max() < 1e-4
    fractions = [done / total for done, total, _ in calls]
    assert fractions == sorted(fractions) and calls[-1][:2] == (4, 4)  # progress never goes back
    assert "2 decoders" in " ".join(message for *_, message in calls)
    assert result.info["manifest"]["runs"][-1]["decode_threads"] == 2


def test_cut_and_truncated_videos_are_noted(clips, lite0, tmp_path):
    dataset = trailer_dataset("notes", {1: clips[4], 2: clips["cut"], 3: clips[2]})
    config = make_config(dataset, "trailers", fps=1, max_frames=4, device="cpu")
    result = extract(dataset, config, RunOptions(device="cpu", model=lite0, store=FeatureStore(tmp_path), batch_size=4))
    status = result.status.set_index("item_id")
    assert status["n_frames"].to_dict() == {1: 4, 2: 4, 3: 4}
    assert "cut at 4 frames" in status.loc[1, "status"]
    sampler = FrameSampler(clips["cut"], fps=1)
    frames = [t for t, _, _ in sampler]
    assert len(frames) < 10 and sampler.note.startswith("truncated: frames end at")
    assert "of 10.0 s" in sampler.note
    whole = extract(
        dataset,
        make_config(dataset, "trailers", fps=1, item_ids=[2], device="cpu"),
        RunOptions(device="cpu", model=lite0, store=FeatureStore(tmp_path), batch_size=4),
    )
    assert "truncated" in whole.status.set_index("item_id").loc[2, "status"]


def test_keyframe_sampling_says_how_far_timestamps_moved(clips):
    exact = sample_frames(clips["dense"], fps=1)
    keyed = FrameSampler(clips["dense"], fps=1, sampling="keyframes")
    times = [t for t, _, _ in keyed]
    assert keyed.mode == "keyframes" and len(times) == len(exact.times) == 10
    shift = np.abs(np.asarray(times) - np.asarray(exact.times))
    assert shift.max() <= 0.25 / 1 + 1e-6  # within the tolerance (a quarter of the target spacing)
    assert keyed.note.startswith("keyframes: timestamps moved by mean")
    sparse = FrameSampler(clips["sparse"], fps=1, sampling="keyframes")
    assert len([t for t, _, _ in sparse]) == 10 and sparse.mode == "exact"
    assert "every frame decoded" in sparse.note
    dataset = trailer_dataset("keys", {1: clips["dense"]})
    assert make_config(dataset, "trailers", sampling="keyframes").key() != make_config(dataset, "trailers").key()


def test_no_trailer_is_coverage_and_a_dataset_without_trailers_is_refused_at_once(clips, tmp_path):
    store = FeatureStore(tmp_path)
    nothing = trailer_dataset("no-trailers", {1: None, 2: None})
    gone = trailer_dataset("gone", {1: str(tmp_path / "deleted.mp4")})
    for dataset in (nothing, gone):
        start = time.perf_counter()
        with pytest.raises(MediaError, match="has a trailer file; nothing to extract"):
            extract(dataset, make_config(dataset, "trailers", device="cpu"), RunOptions(store=store, device="cpu"))
        assert time.perf_counter() - start < 2.0
    assert store.list_entries().empty


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, numpy as np, pandas as pd, torch
    from recsys.data.dataset import Dataset
    from recsys.features.config import RunOptions, make_config
    from recsys.features.extract import extract
    from recsys.features.store import FeatureStore
    torch.set_num_threads(1)
    path, store = sys.argv[1], sys.argv[2]
    items = pd.DataFrame({"title": ["m"], "year": pd.array([2000], dtype="Int64")}, index=pd.Index([1], name="item_id"))
    dataset = Dataset("memory", pd.DataFrame({"user_id": [1], "item_id": [1], "rating": [3.0], "timestamp": [0]}),
                      items, pd.DataFrame({"Drama": [1]}, index=items.index),
                      trailers=pd.Series([path], index=items.index, dtype=object))
    config = make_config(dataset, "trailers", "mobilenetv3_small_050", weights="random", fps=1, device="cpu")
    result = extract(dataset, config, RunOptions(device="cpu", store=FeatureStore(store), batch_size=16))
    print(json.dumps({"frames": int(result.status["n_frames"].sum()),
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def test_memory_does_not_grow_with_the_videos_length(tmp_path):
    """A 20 s and a 400 s video (32x32, 1 fps) in fresh processes: the peak RSS is the same within
    120 MB. Keeping every sampled frame (as before issue 14) would add 400 x 0.6 MB, twice."""
    peaks = {}
    for seconds in (20, 400):
        path = write_clip(tmp_path / f"{seconds}.mp4", seconds=seconds, size=(32, 32))
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, path, str(tmp_path / f"store{seconds}")],
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["frames"] == seconds
        peaks[seconds] = report["peak_mb"]
    assert peaks[400] - peaks[20] < 120, peaks
