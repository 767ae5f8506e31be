"""What determines a set of item features (the feature-store key), and how a run computes them.

Two frozen dataclasses keep the two apart::

    config = make_config(dataset, media="trailers", backbone="tf_efficientnet_lite0", fps=1)
    result = extract(dataset, config, RunOptions(batch_size=32, num_workers=2), progress)

- :class:`ExtractionConfig` holds every input that changes the numbers: dataset, media and their
  fingerprint, the items, backbone, weights, layer, pooling, resolution, trailer sampling,
  aggregation, numeric precision and the preprocessing path. ``config.key()`` is the store key.
- :class:`RunOptions` holds what only changes *how* they are computed (device, batch size,
  workers, engine, calibration, chunk size, window views): never part of the key.

Old keys stay valid: ``key()`` hashes the same JSON as store format 1 did (the fields that existed
then, a constant chunk size per media, ``store_format: 1``); fields added since (precision,
preprocessing, max_duration, sampling) enter the hash only when they differ from what format 1 computed
(``fp32``, ``cpu-pil``, no duration cap). So a CPU entry written before this module existed is a
cache hit now. (Entries written on CUDA before precision was part of the key were computed with
AMP but are found under the fp32 key; re-extract those if the 1e-1 difference matters.)

This module imports neither torch nor timm: building a config and looking it up stays cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.errors import InvalidParameter
from recsys.features.backbones import POOLINGS, WEIGHT_CHOICES

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from recsys.data.dataset import Dataset
    from recsys.features.store import FeatureStore

#: Bump when a change in the extraction code changes the numbers stored for the same config.
STORE_FORMAT_VERSION = 1
DEFAULT_BACKBONE = "tf_efficientnet_lite0"
MEDIA = ("posters", "trailers")
PRECISIONS = ("fp32", "amp")
PREPROCESSING = ("cpu-pil", "gpu-nvjpeg")
SAMPLING = ("exact", "keyframes")
DEFAULT_FPS = 1.0
#: chunk sizes of store format 1, part of its key; kept as constants so old keys stay valid
LEGACY_CHUNK_SIZE = {"posters": 128, "trailers": 16}


# ---- small normalisers ----------------------------------------------------------------------------
def _as_float(value, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidParameter(f"{name} must be a positive number, got {value!r}")
    return number


def _as_count(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not float(value).is_integer():
        raise InvalidParameter(f"{name} must be a whole number, got {value!r}")
    number = int(value)
    if number < 1:
        raise InvalidParameter(f"{name} must be >= 1, got {value!r}")
    return number


def _check_choice(value, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise InvalidParameter(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def items_hash(item_ids: Sequence[int]) -> str:
    """Hash of the sorted item ids (the same bytes store format 1 hashed)."""
    return hashlib.sha256(np.asarray(sorted(int(i) for i in item_ids), np.int64).tobytes()).hexdigest()[:16]


# ---- the key --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExtractionConfig:
    """Everything that determines stored item features; ``key()`` is its feature-store key.

    media: "posters" or "trailers". media_fingerprint: hash of (item, path, size, mtime) of the
    items' media files (see ``store.media_fingerprint``). item_ids: the items, sorted. weights_id:
    what ``backbones.resolve_weights`` says the weights are (package version, hub name, file
    identity or "random-init:seed0"). layer None = pooled pre-logits. Trailer sampling: ``fps``
    *or* ``every_nth``, optionally capped by ``max_frames`` / ``max_duration`` (seconds); posters
    have none of these. precision: "fp32" or "amp" (float16 autocast on CUDA). preprocessing:
    "cpu-pil" (PIL decode + timm transform) or "gpu-nvjpeg" (posters: decode and resize on the
    GPU). sampling (trailers): "exact" (the frame nearest each target time) or "keyframes" (the
    nearest keyframe, when keyframes are dense enough; see features.video).
    """

    dataset: str
    media: str
    backbone: str
    weights_id: str
    media_fingerprint: str
    item_ids: tuple[int, ...] = field(repr=False)
    synthetic: bool = False
    layer: str | None = None
    pooling: str = "avg"
    resolution: str = "model default"
    fps: float | None = None
    every_nth: int | None = None
    max_frames: int | None = None
    max_duration: float | None = None
    aggregation: str | None = None
    precision: str = "fp32"
    preprocessing: str = "cpu-pil"
    sampling: str = "exact"

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        _check_choice(self.media, "media", MEDIA)
        _check_choice(self.pooling, "pooling", POOLINGS)
        _check_choice(self.precision, "precision", PRECISIONS)
        _check_choice(self.preprocessing, "preprocessing", PREPROCESSING)
        _check_choice(self.sampling, "sampling", SAMPLING)
        set_(self, "item_ids", tuple(sorted(int(i) for i in self.item_ids)))
        set_(self, "synthetic", bool(self.synthetic))
        set_(self, "layer", self.layer or None)
        if self.media == "posters":
            if any(v is not None for v in (self.fps, self.every_nth, self.max_frames, self.max_duration)):
                raise InvalidParameter("fps / every_nth / max_frames / max_duration apply to trailers only")
            if self.sampling != "exact":
                raise InvalidParameter("sampling applies to trailers only")
            set_(self, "aggregation", None)
            return
        fps = _as_float(self.fps, "fps")
        every_nth = _as_count(self.every_nth, "every_nth")
        if every_nth is not None and fps is not None:
            raise InvalidParameter("give either fps or every_nth for trailers, not both")
        if every_nth is None and fps is None:
            fps = DEFAULT_FPS
        set_(self, "fps", fps)
        set_(self, "every_nth", every_nth)
        set_(self, "max_frames", _as_count(self.max_frames, "max_frames"))
        set_(self, "max_duration", _as_float(self.max_duration, "max_duration"))
        set_(self, "aggregation", self.aggregation or "per-frame")
        if self.preprocessing != "cpu-pil":
            raise InvalidParameter(
                f"trailer frames are preprocessed on the CPU (cpu-pil); {self.preprocessing!r} decodes posters"
            )
        if self.sampling == "keyframes" and every_nth is not None:
            raise InvalidParameter("sampling 'keyframes' samples by time: give fps, not every_nth")

    # ---- identity --------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def items_hash(self) -> str:
        return items_hash(self.item_ids)

    def key_fields(self) -> dict[str, Any]:
        """The JSON-able fields the key hashes (store format 1's layout plus non-default new fields)."""
        fields: dict[str, Any] = {
            "dataset": self.dataset,
            "synthetic": self.synthetic,
            "media": self.media,
            "media_fingerprint": self.media_fingerprint,
            "backbone": self.backbone,
            "weights_id": self.weights_id,
            "layer": self.layer,
            "pooling": self.pooling,
            "resolution": self.resolution,
        }
        if self.media == "trailers":
            fields.update(
                fps=self.fps, every_nth=self.every_nth, max_frames=self.max_frames, aggregation=self.aggregation
            )
        fields.update(items_hash=self.items_hash, n_items=self.n_items, chunk_size=LEGACY_CHUNK_SIZE[self.media])
        # Added after store format 1: hashed only when they differ from what format 1 computed.
        if self.precision != "fp32":
            fields["precision"] = self.precision
        if self.preprocessing != "cpu-pil":
            fields["preprocessing"] = self.preprocessing
        if self.max_duration is not None:
            fields["max_duration"] = self.max_duration
        if self.sampling != "exact":
            fields["sampling"] = self.sampling
        return fields

    def key(self) -> str:
        """Stable 20-hex-digit store key: equal configs (fps=1 or 1.0) give equal keys."""
        blob = json.dumps({"store_format": STORE_FORMAT_VERSION, **self.key_fields()}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    # ---- manifest --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field for the manifest (item ids as their hash and count: the ids are in item_ids.npy)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "item_ids"}
        out.update(items_hash=self.items_hash, n_items=self.n_items, store_format=STORE_FORMAT_VERSION)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], item_ids: Sequence[int]) -> ExtractionConfig:
        """The config of a manifest (old manifests lack precision / preprocessing: fp32 / cpu-pil)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"item_ids"}
        values = {k: v for k, v in data.items() if k in names}
        config = cls(item_ids=tuple(int(i) for i in item_ids), **values)
        stored = data.get("items_hash")
        if stored is not None and stored != config.items_hash:
            raise InvalidParameter(f"manifest items_hash {stored} does not match its item ids")
        return config

    # ---- labels ----------------------------------------------------------------------------
    @property
    def sampling_label(self) -> str:
        if self.media != "trailers":
            return ""
        text = f"{self.fps:g} fps" if self.fps is not None else f"every {self.every_nth}th frame"
        if self.max_frames is not None:
            text += f", ≤{self.max_frames} frames"
        if self.max_duration is not None:
            text += f", first {self.max_duration:g} s"
        if self.sampling != "exact":
            text += f", {self.sampling}"
        return text

    def label(self) -> str:
        """Short name for legends and tables, e.g. "poster · tf_efficientnet_lite0 · blocks.5"."""
        return f"{self.media[:-1]} · {self.backbone}" + (f" · {self.layer}" if self.layer else "")

    def replace(self, **changes) -> ExtractionConfig:
        return dataclasses.replace(self, **changes)


# ---- run options ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOptions:
    """How to compute: none of these changes the numbers, so none is part of the key.

    device: "cpu" / "cuda" / "mps" (None: the best available). batch_size / channels_last: None =
    calibrated per device and backbone (remembered), unless ``calibrate=False`` (then a default).
    num_workers: decoding workers (None: chosen per machine). engine: "local" (this process) or a
    registered engine such as "ray". chunk_size: items per resumable chunk of a *new* entry (None:
    the store's default; an entry keeps the plan it was started with). window_sizes /
    window_stride: the trailer sliding-window views computed from stored frames. model: an already
    built ``Backbone`` matching the config (saves building it again; checked). store: the
    FeatureStore (None: the one under the cache directory).
    """

    device: str | None = None
    batch_size: int | None = None
    channels_last: bool | None = None
    num_workers: int | None = None
    engine: str = "local"
    calibrate: bool = True
    chunk_size: int | None = None
    window_sizes: tuple[int, ...] = (10, 20)
    window_stride: int = 5
    model: Any = field(default=None, compare=False, repr=False)
    store: FeatureStore | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.batch_size is not None:
            set_(self, "batch_size", _as_count(self.batch_size, "batch_size"))
        if self.chunk_size is not None:
            set_(self, "chunk_size", _as_count(self.chunk_size, "chunk_size"))
        if self.num_workers is not None:
            if isinstance(self.num_workers, bool) or int(self.num_workers) != self.num_workers or self.num_workers < 0:
                raise InvalidParameter(f"num_workers must be >= 0, got {self.num_workers!r}")
            set_(self, "num_workers", int(self.num_workers))
        if self.device is not None and self.device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise InvalidParameter(f"device must be cpu, cuda or mps, got {self.device!r}")
        set_(self, "window_sizes", tuple(_as_count(s, "window size") for s in self.window_sizes))
        set_(self, "window_stride", _as_count(self.window_stride, "window_stride"))

    def replace(self, **changes) -> RunOptions:
        return dataclasses.replace(self, **changes)


# ---- device without torch -------------------------------------------------------------------------
def detect_device() -> str:
    """The device a run would use (cuda / mps / cpu), without importing torch when it is not loaded.

    $RECSYS_DEVICE wins; once torch is imported, torch answers. Otherwise the answer comes from
    what torch itself would check: an NVIDIA driver *and* a CUDA build of torch (read from
    torch/version.py as text) *and* visible devices; Apple silicon for MPS. Importing torch costs
    3-9 s on a small CPU, and a cache hit must not pay that just to name the device.
    """
    from recsys.config import DEVICE_ENV, torch_device_name

    if os.environ.get(DEVICE_ENV) or "torch" in sys.modules:
        return torch_device_name()
    if _cuda_probably_available():
        return "cuda"
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"


def _cuda_probably_available() -> bool:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    if not (os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")):
        return False
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    version_file = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    try:
        text = open(version_file, encoding="utf-8").read()
    except OSError:
        return True  # cannot tell: trust the driver
    for line in text.splitlines():
        if line.startswith("cuda"):
            return "None" not in line.split("=", 1)[-1]
    return False


def default_precision(device: str) -> str:
    """AMP on CUDA (several times faster, within ~1e-1 of fp32 per value, cosine > 0.999), fp32 elsewhere."""
    return "amp" if device.split(":")[0] == "cuda" else "fp32"


def default_preprocessing(media: str, device: str) -> str:
    """The decoding path a run takes by default: posters on CUDA are decoded by nvJPEG and resized
    on the GPU ("gpu-nvjpeg", see features.gpu_images); everything else by PIL on the CPU."""
    return "gpu-nvjpeg" if media == "posters" and device.split(":")[0] == "cuda" else "cpu-pil"


# ---- building a config from user-facing arguments -------------------------------------------------
def media_paths(dataset: Dataset, media: str, item_ids: Sequence[int] | None = None):
    """item_id -> path (or None) of `media` for `item_ids` (default: every item), as a Series."""
    import pandas as pd

    _check_choice(media, "media", MEDIA)
    paths = dataset.posters if media == "posters" else dataset.trailers
    ids = pd.Index(np.asarray(dataset.items.index if item_ids is None else list(item_ids), dtype=np.int64))
    if paths is None:
        return pd.Series([None] * len(ids), index=ids, dtype=object)
    aligned = paths.reindex(ids)
    return aligned.astype(object).where(aligned.notna(), None)


def make_config(
    dataset: Dataset,
    media: str = "posters",
    backbone: str = DEFAULT_BACKBONE,
    *,
    weights: str = "auto",
    weights_file: str | os.PathLike | None = None,
    layer: str | None = None,
    pooling: str = "avg",
    fps: float | None = None,
    every_nth: int | None = None,
    max_frames: int | None = None,
    max_duration: float | None = None,
    precision: str | None = None,
    preprocessing: str | None = None,
    sampling: str = "exact",
    item_ids: Sequence[int] | None = None,
    device: str | None = None,
) -> ExtractionConfig:
    """The ExtractionConfig for user-facing arguments (what the CLI and the Extract page ask for).

    weights / weights_file are resolved to a weights id without building the model (see
    ``backbones.resolve_weights``). Trailers default to 1 fps. precision / preprocessing None:
    the default of the device the run will use (`device`, else the one detected without torch).
    item_ids: a part of the catalogue (default: every item).
    """
    from recsys.features.backbones import resolve_weights
    from recsys.features.store import media_fingerprint

    if not isinstance(backbone, str) or not backbone.strip():
        raise InvalidParameter(f"backbone must be a timm model name, got {backbone!r}")
    _check_choice(weights, "weights", WEIGHT_CHOICES)
    paths = media_paths(dataset, media, item_ids)
    if media == "trailers" and fps is None and every_nth is None:
        fps = DEFAULT_FPS
    run_device = device or detect_device()
    _, weights_id = resolve_weights(backbone.strip(), weights, weights_file)
    return ExtractionConfig(
        dataset=dataset.name,
        synthetic=bool(getattr(dataset, "synthetic", False)),
        media=media,
        backbone=backbone.strip(),
        weights_id=weights_id,
        media_fingerprint=media_fingerprint(zip(paths.index, paths.tolist())),
        item_ids=tuple(int(i) for i in paths.index),
        layer=layer or None,
        pooling=pooling,
        fps=fps,
        every_nth=every_nth,
        max_frames=max_frames,
        max_duration=max_duration,
        precision=precision or default_precision(run_device),
        preprocessing=preprocessing or default_preprocessing(media, run_device),
        sampling=sampling or "exact",
    )
