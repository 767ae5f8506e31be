"""One grammar for item representations, used by the CLI and the pages alike: resolving it.

The grammar itself (``ratings``, ``genres``, ``baseline:…``, ``poster:<backbone>[@layer][/pca<n>]``,
``trailer:<backbone>@<fps>``…), :class:`RepresentationSpec` and :func:`parse` live in
:mod:`recsys.features.representation_spec` and are re-exported here, so callers import every
name from this module. What lives here:

- :func:`resolve` gives the ItemFeatures (None for ``ratings``), reading the feature store,
  computing poster baselines once (kept on disk), or extracting CNN features when asked
  (``extract=True``); otherwise :class:`~recsys.errors.FeaturesNotFound` whose hint is the exact
  ``recsys extract ...`` command;
- :func:`resolve_extraction` / :func:`find_stored`: the stored extraction of a CNN spec (exact key
  first, else the best complete, up-to-date entry that matches);
- :func:`available` lists what a dataset offers now (cached CNN entries, baselines, genres) with
  human labels, for the pages' selectors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from recsys.errors import FeaturesNotFound, InvalidParameter
from recsys.features.config import (
    ExtractionConfig,
    RunOptions,
    default_precision,
    default_preprocessing,
    detect_device,
)
from recsys.features.item_features import ItemFeatures
from recsys.features.representation_spec import (
    BASELINES,
    DEFAULT_BINS,
    DEFAULT_PIXELS,
    GENRE_LABEL,
    GRAMMAR,
    KINDS,
    RepresentationSpec,
    parse,
    weights_choice,
)
from recsys.progress import Progress

if TYPE_CHECKING:  # pragma: no cover
    from recsys.data.dataset import Dataset
    from recsys.features.extract import ExtractionResult
    from recsys.features.store import FeatureStore

__all__ = [
    "BASELINES",
    "DEFAULT_BINS",
    "DEFAULT_PIXELS",
    "GENRE_LABEL",
    "GRAMMAR",
    "KINDS",
    "RepresentationSpec",
    "available",
    "find_stored",
    "parse",
    "resolve",
    "resolve_extraction",
]

log = logging.getLogger(__name__)


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
    elif weights_choice(spec.name, stored_weights) != spec.weights:
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
