"""The grammar of item representations: :class:`RepresentationSpec` and :func:`parse`.

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
  when it cannot); a spec knows its canonical text, its human label, the extraction config it
  asks for (:meth:`RepresentationSpec.to_config`) and the command that extracts it.

Resolving a spec to features (the feature store, baselines, extraction) is
:mod:`recsys.features.representations`, which re-exports everything here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recsys.errors import InvalidParameter
from recsys.features.config import (
    DEFAULT_FPS,
    PRECISIONS,
    PREPROCESSING,
    ExtractionConfig,
    make_config,
)

if TYPE_CHECKING:  # pragma: no cover
    from recsys.data.dataset import Dataset

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
        weights = weights_choice(get("backbone"), get("weights_id") or "")
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


def weights_choice(backbone: str | None, weights_id: str) -> str:
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
