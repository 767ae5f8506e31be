"""Feature extraction for posters and trailers, cached in the FeatureStore: one entry point.

::

    config = make_config(dataset, media="posters", backbone="tf_efficientnet_lite0")
    result = extract(dataset, config, RunOptions(device="cuda"), progress=callback)
    result.features        # ItemFeatures, one row per item whose media could be read
    result.failures        # DataFrame item_id, reason (missing poster, corrupt file, ...)
    result.device, result.images_per_s, result.cache_hit

`config` (an :class:`ExtractionConfig`) is the store key; `run` (:class:`RunOptions`) only says
how to compute it, with which engine (``recsys.features.engines``). A cache hit reads the chunks
without importing torch or building the model; torch is imported only when something must be
computed. Trailer results also carry sliding-window views (`sequences`) and a per-item `status`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.errors import FeaturesNotFound, InvalidParameter, MediaError
from recsys.features.config import (
    DEFAULT_BACKBONE,
    ExtractionConfig,
    RunOptions,
    make_config,
    media_paths,
)
from recsys.features.item_features import ItemFeatures
from recsys.features.store import Chunk, FeatureEntry, FeatureStore, media_fingerprint
from recsys.progress import Progress
from recsys.progress import no_progress as _no_progress

if TYPE_CHECKING:  # pragma: no cover
    from recsys.data.dataset import Dataset

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BACKBONE",
    "ExtractionConfig",
    "ExtractionResult",
    "RunOptions",
    "extract",
    "load_cached",
    "load_entry",
    "make_config",
]


@dataclass
class ExtractionResult:
    """Features plus how they were obtained.

    images_per_s: images (posters) or frames (trailers) per second of this run's computation;
    0.0 on a cache hit. sequences (trailers only): window size -> item id -> (n_windows, d).
    status (trailers only): item_id, n_frames, duration_s, status ("ok", notes such as "cut at
    60 s of 150 s" or "truncated: ...", "no trailer", "failed: <reason>"). missing (trailers):
    items without a trailer file: coverage, not failures (they are not in `failures`).
    """

    features: ItemFeatures
    failures: pd.DataFrame
    device: str
    images_per_s: float
    cache_hit: bool
    key: str = ""
    settings: str = ""
    seconds: float = 0.0
    n_computed: int = 0  # items whose features this call computed (failures excluded)
    n_reused: int = 0  # items (incl. failures) served from chunks written earlier
    sequences: dict[int, dict[int, np.ndarray]] | None = None
    status: pd.DataFrame | None = None
    info: dict = field(default_factory=dict)
    config: ExtractionConfig | None = None
    missing: list[int] = field(default_factory=list)

    def summary(self) -> str:
        unit = "frames/s" if self.config is not None and self.config.media == "trailers" else "img/s"
        source = "cache hit" if self.cache_hit else f"{self.images_per_s:.1f} {unit} on {self.device}"
        without = f", {len(self.missing)} without a trailer" if self.missing else ""
        return (
            f"{self.features.name}: {len(self.features)} items x {self.features.dim} dims, "
            f"{len(self.failures)} failures{without}, {source}, {self.seconds:.2f} s"
        )


# ---- the entry point ------------------------------------------------------------------------------
def extract(
    dataset: Dataset,
    config: ExtractionConfig,
    run: RunOptions | None = None,
    progress: Progress | None = None,
) -> ExtractionResult:
    """Features of `config`, computed once and then served from the store.

    Items without readable media are in `failures` with the reason; a run interrupted (even by an
    exception from `progress`) resumes from the chunks already written. A dataset where none of
    the items has the media is refused at once (MediaError), before any model is built.
    """
    start = time.perf_counter()
    run = run or RunOptions()
    progress = progress or _no_progress
    if not isinstance(config, ExtractionConfig):
        raise InvalidParameter(f"extract() takes an ExtractionConfig (see make_config), got {type(config).__name__}")
    if config.dataset != dataset.name:
        raise InvalidParameter(f"the configuration is for dataset {config.dataset!r}, not {dataset.name!r}")
    store = run.store or FeatureStore()
    entry = store.entry(config, run.chunk_size)
    if entry.complete:
        result = _stored_result(entry, run, start, cache_hit=True)
        if result is not None:
            log.info("feature store hit: %s (%s)", entry.key, config.label())
            return result
    done = len(entry.done_chunks())
    log.info("feature store miss: %s (%s, %d of %d chunks cached)", entry.key, config.label(), done, entry.n_chunks)

    paths = media_paths(dataset, config.media, config.item_ids)
    if not any(path is not None and os.path.isfile(path) for path in paths.tolist()):
        raise MediaError(
            f"{dataset.name}: none of the {len(paths)} items has a {config.media[:-1]} file; nothing to extract",
            hint=f"recsys info --dataset {dataset.name}",
        )
    if media_fingerprint(zip(paths.index, paths.tolist())) != config.media_fingerprint:
        raise InvalidParameter(
            f"{config.media} of {dataset.name} changed since this configuration was made; make it again (make_config)"
        )
    from recsys.features.engines import ExtractionJob, get_engine

    engine = get_engine(run.engine)
    waiting = lambda: progress(0, len(entry.item_ids), "waiting for another extraction of this configuration")  # noqa: E731
    with entry.computing(waiting):  # one extraction of an entry at a time: a second one reuses its chunks
        if entry.complete and (stored := _stored_result(entry, run, start, cache_hit=True)) is not None:
            log.info("feature store: %s was extracted by another process meanwhile", entry.key)
            return stored
        reused = sum(len(entry.chunk_items(i)) for i in entry.done_chunks())
        report = engine.run(ExtractionJob(config, run, entry, paths, progress))
        data = entry.read_all()
        failures, missing = split_missing(config, data.failures)
        entry.finish(
            {
                "engine": run.engine,
                "device": report.device,
                "settings": report.settings,
                "images_per_s": round(report.rate, 2),
                "computed": report.items,
                **({"frames": report.frames, "n_missing": len(missing)} if config.media == "trailers" else {}),
                "n_failures": len(failures),
                "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                **report.info,
            }
        )
    result = _build_result(entry, data, run, start, cache_hit=False)
    result.device, result.images_per_s, result.settings = report.device, report.rate, report.settings
    result.n_computed, result.n_reused = report.items, reused
    unit = "images/s" if config.media == "posters" else "frames/s"
    progress(
        len(entry.item_ids),
        len(entry.item_ids),
        f"done: {report.rate:.1f} {unit} on {report.device} ({report.settings})",
    )
    log.info("extracted %s: %s", entry.key, result.summary())
    return result


def load_cached(dataset: Dataset, config: ExtractionConfig, run: RunOptions | None = None) -> ExtractionResult | None:
    """The stored result of `config` if it was fully extracted, else None. Never computes."""
    run = run or RunOptions()
    entry = (run.store or FeatureStore()).entry(config)
    if not entry.complete:
        return None
    return _stored_result(entry, run, time.perf_counter(), cache_hit=True)


def load_entry(
    key: str, store: FeatureStore | None = None, window_sizes: Sequence[int] = (10, 20), window_stride: int = 5
) -> ExtractionResult:
    """The ExtractionResult of a stored configuration by its key (a row of FeatureStore.list_entries())."""
    store = store or FeatureStore()
    entry = store.open(key)
    run = RunOptions(window_sizes=tuple(window_sizes), window_stride=window_stride, store=store)
    result = _stored_result(entry, run, time.perf_counter(), cache_hit=True) if entry.complete else None
    if result is None:
        raise FeaturesNotFound(
            f"feature entry '{key}' is incomplete ({len(entry.done_chunks())}/{entry.n_chunks} chunks); "
            "run the extraction again to finish it",
            hint=extract_command(entry.config),
        )
    return result


def extract_command(config: ExtractionConfig) -> str:
    """The CLI command that extracts `config` (for hints)."""
    from recsys.features.representations import RepresentationSpec

    return RepresentationSpec.from_config(config).extract_command(config.dataset)


# ---- results from stored chunks -------------------------------------------------------------------
#: reasons stored for items without a trailer file (the second one by entries written before
#: issue 12): read back as coverage, not as failures
NO_MEDIA_REASONS = ("no trailer", "no trailer file for this item")


def split_missing(config: ExtractionConfig, failures: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """(failures proper, items without the media file) of a trailer entry; posters keep their
    "no poster" rows as failures (as before)."""
    if config.media != "trailers" or failures.empty:
        return failures, []
    without = failures["reason"].isin(NO_MEDIA_REASONS)
    missing = sorted(int(i) for i in failures.loc[without, "item_id"])
    return failures[~without].reset_index(drop=True), missing


def _stored_result(entry: FeatureEntry, run: RunOptions, start: float, cache_hit: bool) -> ExtractionResult | None:
    """The result read back from a complete entry; None when a chunk turned out unreadable (it was
    set aside, so the entry is incomplete again and the caller computes it)."""
    data = entry.read_all()
    if entry.pending_chunks():
        return None
    return _build_result(entry, data, run, start, cache_hit)


def _build_result(entry: FeatureEntry, data: Chunk, run: RunOptions, start: float, cache_hit: bool) -> ExtractionResult:
    manifest = entry.read_manifest() or {}
    config = entry.config
    dim = manifest.get("dim", data.matrix.shape[1] if data.matrix.ndim == 2 else 0)
    meta = {**config.to_dict(), "key": entry.key, "dim": dim}
    extra = {}
    if config.media == "trailers":
        means, extra = _trailer_views(data, dim, run.window_sizes, run.window_stride)
        matrix = means
        meta.update(window_sizes=list(run.window_sizes), window_stride=run.window_stride)
    else:
        matrix = data.matrix if len(data.item_ids) else np.zeros((0, dim), np.float32)
    features = ItemFeatures(data.item_ids, matrix, config.label(), meta)
    last_run = (manifest.get("runs") or [{}])[-1]
    failures, missing = split_missing(config, data.failures)
    return ExtractionResult(
        features=features,
        failures=failures.reset_index(drop=True),
        missing=missing,
        device=last_run.get("device", "") if cache_hit else "",
        images_per_s=0.0,
        cache_hit=cache_hit,
        key=entry.key,
        settings=last_run.get("settings", ""),
        seconds=time.perf_counter() - start,
        n_reused=len(entry.item_ids) if cache_hit else 0,
        info={"manifest": manifest},
        config=config,
        **extra,
    )


def _trailer_views(data: Chunk, dim: int, window_sizes: Sequence[int], window_stride: int):
    """Mean per trailer (Ben Hassen's DFV), sliding-window means (VT2) and a per-item status."""
    from recsys.features.video import mean_embedding, window_embeddings

    offsets = data.offsets if data.offsets is not None else np.zeros(1, np.int64)
    means, sequences, status = [], {s: {} for s in window_sizes}, []
    notes = data.extra.get("note", np.asarray([""] * len(data.item_ids)))
    durations = data.extra.get("duration_s", np.zeros(len(data.item_ids)))
    for i, item_id in enumerate(data.item_ids):
        frames = data.matrix[offsets[i] : offsets[i + 1]]
        means.append(mean_embedding(frames))
        short = []
        for size in window_sizes:
            sequences[size][int(item_id)] = window_embeddings(frames, size, window_stride)
            if len(frames) < size:
                short.append(size)
        text = "ok" if not short else f"shorter than {min(short)} frames: no windows of {short}"
        if notes[i]:
            text += f"; {notes[i]}"
        status.append((int(item_id), len(frames), float(durations[i]), text))
    for item_id, reason in zip(data.failures["item_id"], data.failures["reason"]):
        text = "no trailer" if reason in NO_MEDIA_REASONS else f"failed: {reason}"
        status.append((int(item_id), 0, 0.0, text))
    status_frame = pd.DataFrame(status, columns=["item_id", "n_frames", "duration_s", "status"])
    matrix = np.stack(means) if means else np.zeros((0, dim), np.float32)
    return matrix, {"sequences": sequences, "status": status_frame.sort_values("item_id", ignore_index=True)}
