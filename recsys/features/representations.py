"""One grammar for item representations, used by the CLI and the pages alike.

::

    ratings                                   no item features: ratings-only models (resolves to None)
    genres                                    multi-hot genres ("genre" is accepted too)
    baseline:pixels[@<W>x<H>]                 raw poster pixels, default 32x48
    baseline:histogram[@<bins>][/rgb]         joint colour histogram, default 8 bins per channel in HSV
    poster:<backbone>[@<layer>][/<option>...] CNN features of posters (timm model name)
    trailer:<backbone>[@<fps>][@<layer>][/<option>...]
                                              CNN features of trailer frames sampled at <fps> (default
                                              1), averaged per trailer; @every<n> keeps every n-th frame

    options: pca<n>                 PCA to n dimensions (any representation but ratings)
             max | flatten          pooling of the feature map (avg is the default)
             random | offline | pretrained | file
                                    weights (auto is the default: file, offline package, timm hub)
             fp32 | amp             numeric precision (default: amp on CUDA, fp32 elsewhere)
             cpu-pil | gpu-nvjpeg   preprocessing path (default: the device's)
             maxframes<n>, maxsec<s>   trailers: cap frames / seconds per trailer

Examples: ``poster:vgg16@features.29/flatten``, ``trailer:tf_efficientnet_lite0@2/pca64``,
``baseline:histogram@16/rgb``, ``genres/pca8``. Aliases from the older grammars are accepted
(``genre``, ``baseline:raw_pixels``, ``baseline:colour_histogram``, ``@1fps``); ``str(spec)`` is
the canonical form and ``parse(str(spec)) == spec``.

- :func:`parse` turns text into a :class:`RepresentationSpec` (InvalidParameter with the grammar
  when it cannot);
- :func:`resolve` gives the ItemFeatures (None for ``ratings``), reading the feature store,
  computing poster baselines once (kept on disk), or extracting CNN features when asked
  (``extract=True``); otherwise :class:`~recsys.errors.FeaturesNotFound` whose hint is the exact
  ``recsys extract ...`` command;
- :func:`available` lists what a dataset offers now (cached CNN entries, baselines, genres) with
  human labels, for the pages' selectors.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recsys.errors import FeaturesNotFound, InvalidParameter
from recsys.features.config import (
    DEFAULT_FPS,
    PRECISIONS,
    PREPROCESSING,
    ExtractionConfig,
    RunOptions,
    default_precision,
    default_preprocessing,
    detect_device,
    make_config,
)
from recsys.features.item_features import ItemFeatures
from recsys.progress import Progress

if TYPE_CHECKING:  # pragma: no cover
    from recsys.data.dataset import Dataset
    from recsys.features.extract import ExtractionResult
    from recsys.features.store import FeatureStore

log = logging.getLogger(__name__)

KINDS = ("ratings", "genres", "baseline", "poster", "trailer")
BASELINES = ("pixels", "histogram")
DEFAULT_PIXELS = (32, 48)
DEFAULT_BINS = 8
GENRE_LABEL = "genre one-hot"
GRAMMAR = (
    "ratings | genres | baseline:pixels[@<W>x<H>] | baseline:histogram[@<bins>][/rgb] | "
    "poster:<backbone>[@<layer>][/pca<n>] | trailer:<backbone>@<fps>[/pca<n>] "
    "(options: /pca<n> /max /flatten /random /fp32 /amp /maxframes<n> /maxsec<s>)"
)

_BASELINE_ALIASES = {
    "pixels": "pixels",
    "raw_pixels": "pixels",
    "raw-pixels": "pixels",
    "rawpixels": "pixels",
    "histogram": "histogram",
    "colour_histogram": "histogram",
    "color_histogram": "histogram",
    "colour-histogram": "histogram",
    "color-histogram": "histogram",
    "hist": "histogram",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")  # timm model names and module paths
_WEIGHTS = ("random", "offline", "pretrained", "file")
_POOLINGS = ("max", "flatten", "avg")


@dataclass(frozen=True)
class RepresentationSpec:
    """A parsed representation (see the module docstring for the grammar).

    kind: ratings / genres / baseline / poster / trailer. name: the baseline (pixels, histogram) or
    the backbone. precision / preprocessing None: any stored entry, preferring this device's default.
    note (not part of the identity): what `available` knows, e.g. "64 items" (a part of the catalogue).
    """

    kind: str
    name: str | None = None
    layer: str | None = None
    pooling: str = "avg"
    weights: str = "auto"
    fps: float | None = None
    every_nth: int | None = None
    max_frames: int | None = None
    max_duration: float | None = None
    precision: str | None = None
    preprocessing: str | None = None
    pca: int | None = None
    size: tuple[int, int] | None = None
    bins: int | None = None
    space: str | None = None
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidParameter(f"unknown representation kind {self.kind!r}; use {GRAMMAR}")
        if self.kind == "trailer" and self.fps is None and self.every_nth is None:
            object.__setattr__(self, "fps", DEFAULT_FPS)
        if self.fps is not None:
            object.__setattr__(self, "fps", float(self.fps))
        if self.kind == "baseline" and self.name == "pixels" and self.size is None:
            object.__setattr__(self, "size", DEFAULT_PIXELS)
        if self.kind == "baseline" and self.name == "histogram":
            object.__setattr__(self, "bins", self.bins or DEFAULT_BINS)
            object.__setattr__(self, "space", (self.space or "HSV").upper())

    # ---- text ------------------------------------------------------------------------------
    def __str__(self) -> str:
        if self.kind in ("ratings", "genres"):
            return self.kind + self._pca_suffix()
        if self.kind == "baseline":
            if self.name == "pixels":
                text = "baseline:pixels" + ("" if self.size == DEFAULT_PIXELS else f"@{self.size[0]}x{self.size[1]}")
            else:
                text = "baseline:histogram" + ("" if self.bins == DEFAULT_BINS else f"@{self.bins}")
                text += "" if self.space == "HSV" else f"/{self.space.lower()}"
            return text + self._pca_suffix()
        text = f"{self.kind}:{self.name}"
        if self.kind == "trailer":
            text += f"@{self.fps:g}" if self.fps is not None else f"@every{self.every_nth}"
        if self.layer:
            text += f"@{self.layer}"
        options = []
        if self.pooling != "avg":
            options.append(self.pooling)
        if self.weights != "auto":
            options.append(self.weights)
        if self.precision:
            options.append(self.precision)
        if self.preprocessing:
            options.append(self.preprocessing)
        if self.max_frames is not None:
            options.append(f"maxframes{self.max_frames}")
        if self.max_duration is not None:
            options.append(f"maxsec{self.max_duration:g}")
        return text + "".join(f"/{o}" for o in options) + self._pca_suffix()

    def _pca_suffix(self) -> str:
        return f"/pca{self.pca}" if self.pca else ""

    @property
    def media(self) -> str | None:
        """The media read: posters (poster CNNs and baselines), trailers, or None."""
        if self.kind == "poster" or self.kind == "baseline":
            return "posters"
        return "trailers" if self.kind == "trailer" else None

    @property
    def is_cnn(self) -> bool:
        return self.kind in ("poster", "trailer")

    @property
    def label(self) -> str:
        """Human label for selectors, legends and tables (unique per spec)."""
        if self.kind == "ratings":
            text = "ratings only"
        elif self.kind == "genres":
            text = GENRE_LABEL
        elif self.kind == "baseline":
            if self.name == "pixels":
                text = "poster · raw pixels" + (
                    "" if self.size == DEFAULT_PIXELS else f" {self.size[0]}x{self.size[1]}"
                )
            else:
                text = "poster · colour histogram"
                if (self.bins, self.space) != (DEFAULT_BINS, "HSV"):
                    text += f" {self.space} {self.bins}³"
        else:
            parts = [self.kind, self.name]
            if self.layer:
                parts.append(self.layer)
            if self.pooling != "avg":
                parts.append(self.pooling)
            if self.kind == "trailer":
                parts.append(f"{self.fps:g} fps" if self.fps is not None else f"every {self.every_nth}th frame")
                if self.max_frames is not None:
                    parts.append(f"≤{self.max_frames} frames")
                if self.max_duration is not None:
                    parts.append(f"first {self.max_duration:g} s")
            if self.weights == "random":
                parts.append("untrained")
            elif self.weights not in ("auto",):
                parts.append(f"{self.weights} weights")
            if self.precision:
                parts.append(self.precision)
            if self.preprocessing:
                parts.append(self.preprocessing)
            text = " · ".join(parts)
        if self.pca:
            text += f" · PCA {self.pca}"
        return text

    @property
    def display(self) -> str:
        """The label with what `available` noted (e.g. "(64 items)" for a part of the catalogue)."""
        return f"{self.label} ({self.note})" if self.note else self.label

    def replace(self, **changes) -> RepresentationSpec:
        return dataclasses.replace(self, **changes)

    def without_reduction(self) -> RepresentationSpec:
        """The same representation before PCA (to fit a reduction on training items yourself)."""
        return self.replace(pca=None)

    # ---- to and from the feature store -----------------------------------------------------------
    def to_config(
        self, dataset: Dataset, *, device: str | None = None, weights_file=None, item_ids=None
    ) -> ExtractionConfig:
        """The ExtractionConfig this CNN representation asks for on `dataset` (every item by default)."""
        if not self.is_cnn:
            raise InvalidParameter(f"{self} is not a CNN representation (poster:… or trailer:…)")
        if self.weights == "file" and weights_file is None:
            raise InvalidParameter(f"{self}: weights 'file' needs a weights file (CLI: --weights-file PATH)")
        return make_config(
            dataset,
            self.media,
            self.name,
            weights=self.weights,
            weights_file=weights_file,
            layer=self.layer,
            pooling=self.pooling,
            fps=self.fps if self.kind == "trailer" else None,
            every_nth=self.every_nth,
            max_frames=self.max_frames,
            max_duration=self.max_duration,
            precision=self.precision,
            preprocessing=self.preprocessing,
            item_ids=item_ids,
            device=device,
        )

    @classmethod
    def from_config(cls, config: ExtractionConfig | dict, *, precision: bool = True) -> RepresentationSpec:
        """The spec of a stored configuration (precision / preprocessing omitted when `precision` is False)."""
        get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
        media = get("media")
        weights = _weights_choice(get("backbone"), get("weights_id") or "")
        return cls(
            kind="poster" if media == "posters" else "trailer",
            name=get("backbone"),
            layer=get("layer") or None,
            pooling=get("pooling") or "avg",
            weights=weights,
            fps=get("fps") if media == "trailers" else None,
            every_nth=get("every_nth") if media == "trailers" else None,
            max_frames=get("max_frames") if media == "trailers" else None,
            max_duration=get("max_duration") if media == "trailers" else None,
            precision=get("precision", "fp32") if precision else None,
            preprocessing=get("preprocessing", "cpu-pil") if precision else None,
        )

    def extract_command(self, dataset_name: str) -> str:
        """The exact CLI command that extracts this representation's features."""
        if not self.is_cnn:
            raise InvalidParameter(f"{self} needs no extraction")
        parts = ["recsys extract", f"--dataset {dataset_name}", f"--media {self.media}"]
        if self.kind == "trailer":
            parts.append(f"--fps {self.fps:g}" if self.fps is not None else f"--every-nth {self.every_nth}")
            if self.max_frames is not None:
                parts.append(f"--max-frames {self.max_frames}")
            if self.max_duration is not None:
                parts.append(f"--max-duration {self.max_duration:g}")
        parts.append(f"--backbone {self.name}")
        if self.layer:
            parts.append(f"--layer {self.layer}")
        if self.pooling != "avg":
            parts.append(f"--pooling {self.pooling}")
        if self.weights != "auto":
            parts.append(f"--weights {self.weights}" + (" --weights-file PATH" if self.weights == "file" else ""))
        if self.precision:
            parts.append(f"--precision {self.precision}")
        if self.preprocessing:
            parts.append(f"--preprocessing {self.preprocessing}")
        return " ".join(parts)


def _weights_choice(backbone: str | None, weights_id: str) -> str:
    """The weights choice for a spec: auto when auto resolves to these weights today, else the explicit one."""
    from recsys.features.backbones import resolve_weights, weights_from_id

    try:
        choice, _ = weights_from_id(weights_id)
    except InvalidParameter:
        return "auto"
    if choice in ("random", "file"):
        return choice
    try:
        if backbone and resolve_weights(backbone, "auto")[1] == weights_id:
            return "auto"
    except Exception:  # noqa: BLE001 - a failing resolution only means "say it explicitly"
        pass
    return choice


# ---- parsing --------------------------------------------------------------------------------------
def _bad(spec: str, problem: str) -> InvalidParameter:
    return InvalidParameter(f"unknown representation {spec!r}: {problem}; use {GRAMMAR}")


def _number(text: str, spec: str, what: str, integer: bool = False):
    try:
        value = float(text)
    except ValueError:
        raise _bad(spec, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0 or (integer and not value.is_integer()):
        raise _bad(spec, f"{what} must be a positive {'whole ' if integer else ''}number, got {text!r}")
    return int(value) if integer else value


def parse(spec: str | RepresentationSpec) -> RepresentationSpec:
    """The RepresentationSpec of `spec` (a spec passes through); InvalidParameter naming the problem."""
    if isinstance(spec, RepresentationSpec):
        return spec
    if not isinstance(spec, str):
        raise InvalidParameter(f"a representation is a string such as 'genres', got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise _bad(spec, "it is empty")
    head, *options = text.split("/")
    kind, colon, body = head.partition(":")
    kind = kind.strip().lower()
    kind = {"genre": "genres", "posters": "poster", "trailers": "trailer"}.get(kind, kind)
    if kind not in KINDS:
        raise _bad(spec, f"{kind!r} is not a kind of representation")
    values: dict = {"kind": kind}
    pca = _parse_pca(options, spec)
    if pca is not None:
        values["pca"] = pca
    if kind in ("ratings", "genres"):
        if colon or options:
            raise _bad(spec, f"{kind} takes no arguments")
        if kind == "ratings" and pca is not None:
            raise _bad(spec, "ratings have no item features to reduce")
        return RepresentationSpec(**values)
    if not body:
        raise _bad(spec, f"{kind} needs a name after ':'")
    if kind == "baseline":
        return _parse_baseline(body, options, values, spec)
    return _parse_cnn(kind, body, options, values, spec)


def _parse_pca(options: list[str], spec: str) -> int | None:
    found = [o for o in options if o.lower().startswith("pca")]
    if len(found) > 1:
        raise _bad(spec, "more than one /pca option")
    if not found:
        return None
    options.remove(found[0])
    return _number(found[0][3:], spec, "PCA dimensions", integer=True)


def _parse_baseline(body: str, options: list[str], values: dict, spec: str) -> RepresentationSpec:
    name, _, argument = body.partition("@")
    canonical = _BASELINE_ALIASES.get(name.strip().lower())
    if canonical is None:
        raise _bad(spec, f"baseline {name!r} is not one of {', '.join(BASELINES)}")
    values["name"] = canonical
    if canonical == "pixels":
        if argument:
            match = re.fullmatch(r"(\d+)x(\d+)", argument.strip().lower())
            if not match or min(int(match.group(1)), int(match.group(2))) < 1:
                raise _bad(spec, f"pixel size {argument!r} is not <width>x<height>")
            values["size"] = (int(match.group(1)), int(match.group(2)))
        if options:
            raise _bad(spec, f"unknown option(s) {options} for baseline:pixels")
        return RepresentationSpec(**values)
    if argument:
        values["bins"] = _number(argument, spec, "bins", integer=True)
    for option in options:
        if option.lower() in ("hsv", "rgb") and "space" not in values:
            values["space"] = option.upper()
        else:
            raise _bad(spec, f"unknown option {option!r} for baseline:histogram (hsv or rgb)")
    return RepresentationSpec(**values)


def _parse_cnn(kind: str, body: str, options: list[str], values: dict, spec: str) -> RepresentationSpec:
    backbone, *segments = body.split("@")
    if not _NAME.match(backbone):
        raise _bad(spec, f"{backbone!r} is not a timm model name")
    values["name"] = backbone
    for segment in segments:
        sampling = re.fullmatch(r"(\d+(?:\.\d+)?)(?:fps)?|every(\d+)", segment.strip().lower())
        if sampling and kind == "trailer":
            if "fps" in values or "every_nth" in values:
                raise _bad(spec, "more than one sampling (@<fps> or @every<n>)")
            if sampling.group(1) is not None:
                values["fps"] = _number(sampling.group(1), spec, "fps")
            else:
                values["every_nth"] = _number(sampling.group(2), spec, "every", integer=True)
        elif sampling:
            raise _bad(spec, f"'@{segment}' looks like a frame rate, which applies to trailers (trailer:{backbone}@…)")
        elif _NAME.match(segment) and "layer" not in values:
            values["layer"] = segment
        else:
            raise _bad(spec, f"cannot read '@{segment}' ({'fps or layer' if kind == 'trailer' else 'layer'})")
    for option in options:
        low = option.strip().lower()
        slot, value = _cnn_option(kind, low, spec)
        if slot in values:
            raise _bad(spec, f"two values for {slot} ({values[slot]} and {value})")
        values[slot] = value
    return RepresentationSpec(**values)


def _cnn_option(kind: str, option: str, spec: str) -> tuple[str, object]:
    if option in _POOLINGS:
        return "pooling", option
    if option in _WEIGHTS:
        return "weights", option
    if option in PRECISIONS:
        return "precision", option
    if option in PREPROCESSING:
        return "preprocessing", option
    if kind == "trailer" and option.startswith("maxframes"):
        return "max_frames", _number(option[len("maxframes") :], spec, "maxframes", integer=True)
    if kind == "trailer" and option.startswith("maxsec"):
        return "max_duration", _number(option[len("maxsec") :], spec, "maxsec")
    raise _bad(spec, f"unknown option '/{option}'")


# ---- resolving ------------------------------------------------------------------------------------
def resolve(
    dataset: Dataset,
    spec: str | RepresentationSpec,
    extract: bool = False,
    progress: Progress | None = None,
    *,
    run: RunOptions | None = None,
    train_item_ids: Sequence[int] | None = None,
    weights_file=None,
) -> ItemFeatures | None:
    """The item features `spec` names on `dataset`; None only for ``ratings``.

    CNN features come from the feature store (the entry for the whole catalogue, else the complete
    entry covering most items, with a logged note); when there is none they are extracted if
    `extract` is true, else FeaturesNotFound says which command extracts them. Poster baselines
    are computed on first use and kept on disk. ``/pca<n>`` is fitted on `train_item_ids` (default:
    every item with features, which is unsupervised but sees test items' content).
    """
    spec = parse(spec)
    if spec.kind == "ratings":
        return None
    if spec.kind == "genres":
        from recsys.features.baselines import genre_features

        features = genre_features(dataset)
    elif spec.kind == "baseline":
        from recsys.features.baselines import cached_baseline

        features = cached_baseline(dataset, spec.name, _baseline_params(spec), progress=progress)
    else:
        features = resolve_extraction(
            dataset, spec, extract=extract, progress=progress, run=run, weights_file=weights_file
        ).features
    features.name = spec.without_reduction().label
    if spec.pca:
        from recsys.features.reduce import PCAReducer

        features = PCAReducer(spec.pca).fit_transform(features, train_item_ids)
        features.meta["reduction_fitted_on"] = "training items" if train_item_ids is not None else "all items"
    features.name = spec.label
    features.meta["representation"] = str(spec)
    return features


def _baseline_params(spec: RepresentationSpec) -> dict:
    if spec.name == "pixels":
        return {"size": tuple(spec.size)}
    return {"bins": spec.bins, "space": spec.space}


def resolve_extraction(
    dataset: Dataset,
    spec: str | RepresentationSpec,
    extract: bool = False,
    progress: Progress | None = None,
    *,
    run: RunOptions | None = None,
    weights_file=None,
) -> ExtractionResult:
    """The ExtractionResult (features, failures, trailer windows and status) of a CNN spec."""
    from recsys.features import extract as extraction

    spec = parse(spec)
    if not spec.is_cnn:
        raise InvalidParameter(f"{spec} is not a CNN representation (poster:… or trailer:…)")
    run = run or RunOptions()
    found = find_stored(dataset, spec, run=run, weights_file=weights_file)
    if found is not None:
        return found
    if not extract:
        raise FeaturesNotFound(
            f"{spec.label} features for {dataset.name} are not extracted yet: run "
            f"`{spec.extract_command(dataset.name)}` (commands with --extract can do it for you)",
            hint=spec.extract_command(dataset.name),
        )
    config = spec.to_config(dataset, device=run.device, weights_file=weights_file)
    return extraction.extract(dataset, config, run, progress)


def find_stored(
    dataset: Dataset, spec: str | RepresentationSpec, *, run: RunOptions | None = None, weights_file=None
) -> ExtractionResult | None:
    """The stored result for a CNN spec, or None. Never computes.

    First the exact key for the whole catalogue on this device; else every complete, up-to-date
    entry of the store that matches the spec (any precision / preprocessing the spec leaves open,
    or a part of the catalogue), preferring most items, then this device's precision.
    """
    from recsys.features.extract import load_cached
    from recsys.features.store import FeatureStore

    spec = parse(spec)
    run = run or RunOptions()
    store = run.store or FeatureStore()
    exact = None
    if spec.weights != "file" or weights_file is not None:
        try:
            exact = spec.to_config(dataset, device=run.device, weights_file=weights_file)
        except InvalidParameter:
            raise
        except Exception as exc:  # noqa: BLE001 - weights that cannot be resolved were not stored
            log.debug("no exact key for %s: %s", spec, exc)
        if exact is not None:
            result = load_cached(dataset, exact, run.replace(store=store))
            if result is not None:
                log.info("representation %s: exact entry %s", spec, result.key)
                return result
    candidates = _matching_entries(dataset, spec, store, exact)
    for key, n_items in candidates:
        result = _load(store, key, run)
        if result is not None:
            if n_items < dataset.n_items:
                log.warning(
                    "representation %s on %s: using entry %s, which covers %d of %d items",
                    spec,
                    dataset.name,
                    key,
                    n_items,
                    dataset.n_items,
                )
            else:
                log.info("representation %s: entry %s", spec, key)
            return result
    return None


def _load(store: FeatureStore, key: str, run: RunOptions):
    import time

    from recsys.features.extract import _stored_result

    try:
        entry = store.open(key)
    except FeaturesNotFound:
        return None
    return (
        _stored_result(entry, run.replace(store=store), time.perf_counter(), cache_hit=True) if entry.complete else None
    )


def _matching_entries(
    dataset: Dataset, spec: RepresentationSpec, store: FeatureStore, exact: ExtractionConfig | None
) -> list[tuple[str, int]]:
    """(key, n_items) of complete, fresh entries matching `spec`, best first."""
    device = detect_device()
    wanted_weights = exact.weights_id if exact is not None else None
    rows = []
    for directory, manifest in _complete_manifests(store, dataset.name):
        config = manifest["config"]
        if not _config_matches(spec, config, wanted_weights):
            continue
        if not _fresh(dataset, directory, config):
            continue
        n_items = int(config.get("n_items") or manifest.get("n_items") or 0)
        preferred = (
            config.get("precision", "fp32") == default_precision(device),
            config.get("preprocessing", "cpu-pil") == default_preprocessing(config.get("media"), device),
        )
        rows.append((-n_items, not preferred[0], not preferred[1], str(manifest.get("created", "")), directory.name))
    rows.sort()
    return [(row[-1], -row[0]) for row in rows]


def _complete_manifests(store: FeatureStore, dataset_name: str) -> Iterable:
    for directory, manifest in store.manifests():
        config = manifest.get("config")
        if not isinstance(config, dict) or config.get("dataset") != dataset_name:
            continue
        n_chunks = int(manifest.get("n_chunks") or 0)
        if n_chunks and all((directory / f"chunk_{i:05d}.npz").exists() for i in range(n_chunks)):
            yield directory, manifest


def _config_matches(spec: RepresentationSpec, config: dict, weights_id: str | None) -> bool:
    if config.get("media") != spec.media or config.get("backbone") != spec.name:
        return False
    if (config.get("layer") or None) != spec.layer or (config.get("pooling") or "avg") != spec.pooling:
        return False
    stored_weights = str(config.get("weights_id") or "")
    if spec.weights == "file" and weights_id is None:
        if not stored_weights.startswith("file:"):
            return False
    elif weights_id is not None:
        if stored_weights != weights_id:
            return False
    elif _weights_choice(spec.name, stored_weights) != spec.weights:
        return False
    if spec.precision and config.get("precision", "fp32") != spec.precision:
        return False
    if spec.preprocessing and config.get("preprocessing", "cpu-pil") != spec.preprocessing:
        return False
    if spec.kind == "trailer":
        fps = config.get("fps")
        if (float(fps) if fps is not None else None) != spec.fps or config.get("every_nth") != spec.every_nth:
            return False
        if config.get("max_frames") != spec.max_frames or config.get("max_duration") != spec.max_duration:
            return False
    return True


def _fresh(dataset: Dataset, directory, config: dict) -> bool:
    """Whether the entry's media fingerprint still matches the dataset's files for its items."""
    import numpy as np

    from recsys.features.config import media_paths
    from recsys.features.store import media_fingerprint

    try:
        item_ids = np.load(directory / "item_ids.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("feature store: %s has no readable item ids (%s); skipped", directory, exc)
        return False
    paths = media_paths(dataset, config["media"], item_ids)
    fresh = media_fingerprint(zip(paths.index, paths.tolist())) == config.get("media_fingerprint")
    if not fresh:
        log.info("feature store: %s is out of date (media changed since it was extracted)", directory.name)
    return fresh


# ---- what a dataset offers ------------------------------------------------------------------------
def available(
    dataset: Dataset,
    media: Sequence[str] = ("posters", "trailers"),
    *,
    baselines: bool = True,
    genres: bool = True,
    ratings: bool = False,
    store: FeatureStore | None = None,
) -> list[RepresentationSpec]:
    """Representations `dataset` offers now, best first: extracted CNN entries (trained weights
    before untrained, posters before trailers, most items first), poster baselines (computed on
    first use), genres; ``ratings`` when asked. Each spec's `label`/`display` is for people; its
    `note` says when an entry covers only part of the catalogue."""
    from recsys.features.store import FeatureStore

    store = store or FeatureStore()
    found: dict[RepresentationSpec, list[tuple]] = {}
    for directory, manifest in _complete_manifests(store, dataset.name):
        config = manifest["config"]
        if config.get("media") not in media or not _fresh(dataset, directory, config):
            continue
        spec = RepresentationSpec.from_config(config, precision=False)
        n_items = int(config.get("n_items") or manifest.get("n_items") or 0)
        variant = (config.get("precision", "fp32"), config.get("preprocessing", "cpu-pil"))
        found.setdefault(spec, []).append((n_items, variant))
    cnn: list[tuple[RepresentationSpec, int]] = []
    for spec, rows in found.items():
        variants = {variant for _, variant in rows}
        if len(variants) > 1:  # the same features at several precisions: name each
            for variant in sorted(variants):
                n_items = max(n for n, v in rows if v == variant)
                cnn.append((spec.replace(precision=variant[0], preprocessing=variant[1]), n_items))
        else:
            cnn.append((spec, max(n for n, _ in rows)))
    cnn.sort(key=lambda row: (row[0].weights == "random", row[0].kind != "poster", -row[1], row[0].name, str(row[0])))
    out: list[RepresentationSpec] = []
    if ratings:
        out.append(RepresentationSpec("ratings"))
    for spec, n_items in cnn:
        out.append(spec.replace(note=f"{n_items} items" if n_items < dataset.n_items else ""))
    if baselines and "posters" in media and len(dataset.items_with_poster()):
        out.append(RepresentationSpec("baseline", "pixels"))
        out.append(RepresentationSpec("baseline", "histogram"))
    if genres:
        out.append(RepresentationSpec("genres"))
    return out
