"""High-level feature extraction for posters and trailers, cached in the FeatureStore.

These are the functions the Extract page, the CLI and the models call::

    result = extract_poster_features(dataset, backbone="tf_efficientnet_lite0", progress=callback)
    result.features        # ItemFeatures, one row per item whose poster could be read
    result.failures        # DataFrame item_id, reason (missing poster, corrupt file, ...)
    result.device, result.images_per_s, result.cache_hit

A cache hit reads the chunks without importing torch or building the model. torch is imported
only when something must be computed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.features.item_features import ItemFeatures
from recsys.features.store import FAILURE_COLUMNS, Chunk, FeatureEntry, FeatureStore, media_fingerprint
from recsys.progress import Progress
from recsys.progress import no_progress as _no_progress

TRAILER_CHUNK_SIZE = 16
DEFAULT_BACKBONE = "tf_efficientnet_lite0"


@dataclass
class ExtractionResult:
    """Features plus how they were obtained.

    images_per_s: images (posters) or frames (trailers) per second of this run's computation;
    0.0 on a cache hit. sequences (trailers only): window size -> item id -> (n_windows, d).
    status (trailers only): item_id, n_frames, duration_s, status.
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

    def summary(self) -> str:
        source = "cache hit" if self.cache_hit else f"{self.images_per_s:.1f} img/s on {self.device}"
        return (
            f"{self.features.name}: {len(self.features)} items x {self.features.dim} dims, "
            f"{len(self.failures)} failures, {source}, {self.seconds:.2f} s"
        )


def _media_paths(dataset, media: str, item_ids: Sequence[int] | None) -> pd.Series:
    paths = dataset.posters if media == "posters" else dataset.trailers
    if item_ids is None:
        item_ids = dataset.items.index
    ids = pd.Index(np.asarray(item_ids, dtype=np.int64))
    if paths is None:
        return pd.Series([None] * len(ids), index=ids, dtype=object)
    aligned = paths.reindex(ids)
    return aligned.astype(object).where(aligned.notna(), None)


def _backbone_identity(backbone, weights: str, weights_file) -> tuple[str, str]:
    """(backbone name, weights id) for a model name or an already built Backbone."""
    if isinstance(backbone, str):
        from recsys.features.backbones import resolve_weights

        return backbone, resolve_weights(backbone, weights, weights_file)[1]
    return backbone.name, backbone.weights_id


def _layer_and_pooling(backbone, layer, pooling):
    """A built Backbone carries its own layer and pooling; they, not the defaults, key the cache."""
    if isinstance(backbone, str):
        return layer, pooling
    return backbone.layer, backbone.pooling


def _config(
    dataset, media: str, paths: pd.Series, backbone_name: str, weights_id: str, layer, pooling, **extra
) -> dict:
    return {
        "dataset": dataset.name,
        "synthetic": bool(getattr(dataset, "synthetic", False)),
        "media": media,
        "media_fingerprint": media_fingerprint(zip(paths.index, paths.tolist())),
        "backbone": backbone_name,
        "weights_id": weights_id,
        "layer": layer,
        "pooling": pooling,
        "resolution": "model default",
        **extra,
    }


def _sampling(fps, every_nth, max_frames) -> dict:
    """Trailer sampling part of the cache key; numbers normalised so fps=1 and fps=1.0 share a key."""
    return {
        "fps": float(fps) if fps is not None else None,
        "every_nth": int(every_nth) if every_nth is not None else None,
        "max_frames": int(max_frames) if max_frames is not None else None,
        "aggregation": "per-frame",
    }


def _features_name(media: str, backbone: str, layer) -> str:
    return f"{media[:-1]} · {backbone}" + (f" · {layer}" if layer else "")


def _pick_device(device: str | None) -> str:
    if device:
        return device
    from recsys.config import torch_device_name

    return torch_device_name()


def _build_backbone(backbone, weights, layer, pooling, weights_file):
    if isinstance(backbone, str):
        from recsys.features.backbones import create_backbone

        return create_backbone(backbone, weights=weights, layer=layer, pooling=pooling, weights_file=weights_file)
    return backbone


def _settings_for(backbone, device, batch_size, channels_last, progress):
    from recsys.features.calibration import calibrate
    from recsys.features.images import RunSettings

    if batch_size is not None:
        fmt = bool(channels_last) if channels_last is not None else device == "cuda"
        return RunSettings(device, int(batch_size), fmt, device == "cuda")
    settings, _ = calibrate(backbone, device, progress=progress)
    if channels_last is not None:
        settings.channels_last = bool(channels_last)
    return settings


# ---- posters ---------------------------------------------------------------------------------------
def extract_poster_features(
    dataset,
    backbone=DEFAULT_BACKBONE,
    weights: str = "auto",
    layer: str | None = None,
    pooling: str = "avg",
    progress: Progress | None = None,
    store: FeatureStore | None = None,
    weights_file=None,
    item_ids: Sequence[int] | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    channels_last: bool | None = None,
    num_workers: int | None = None,
) -> ExtractionResult:
    """CNN features of every item's poster, computed once and then served from the store.

    backbone: a timm model name or a Backbone from `create_backbone`. batch_size/channels_last:
    None = calibrated per device and backbone (remembered). Items without a readable poster are in
    `failures` with the reason; a run interrupted (even by an exception from `progress`) resumes
    from the chunks already written.
    """
    start = time.perf_counter()
    progress = progress or _no_progress
    store = store or FeatureStore()
    paths = _media_paths(dataset, "posters", item_ids)
    layer, pooling = _layer_and_pooling(backbone, layer, pooling)
    name, weights_id = _backbone_identity(backbone, weights, weights_file)
    config = _config(dataset, "posters", paths, name, weights_id, layer, pooling)
    entry = store.entry(config, paths.index)
    if entry.complete:
        return _poster_result(entry, start, cache_hit=True)

    net = _build_backbone(backbone, weights, layer, pooling, weights_file)
    device = _pick_device(device)
    settings = _settings_for(net, device, batch_size, channels_last, progress)
    entry.start({"dim": net.feature_dim, "backbone": net.describe()})
    reused = _items_in_done_chunks(entry)
    computed, compute_seconds = _run_poster_chunks(entry, paths, net, settings, num_workers, progress)
    ips = computed / compute_seconds if compute_seconds > 0 else 0.0
    failures_so_far = entry.read_all().failures
    entry.finish(
        {
            "device": device,
            "settings": settings.label(),
            "images_per_s": round(ips, 2),
            "computed": computed,
            "n_failures": len(failures_so_far),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    result = _poster_result(entry, start, cache_hit=False)
    result.device, result.images_per_s, result.settings = device, ips, settings.label()
    result.n_computed, result.n_reused = computed, reused
    progress(len(entry.item_ids), len(entry.item_ids), f"done: {ips:.1f} images/s on {device} ({settings.label()})")
    return result


def _items_in_done_chunks(entry: FeatureEntry) -> int:
    return sum(len(entry.chunk_items(i)) for i in entry.done_chunks())


def _run_poster_chunks(
    entry: FeatureEntry, paths: pd.Series, net, settings, num_workers, progress
) -> tuple[int, float]:
    """Compute the pending chunks in order, writing each as soon as all its items are resolved."""
    from recsys.features.images import FeatureRunner, default_num_workers, image_batches

    pending = entry.pending_chunks()
    total = len(entry.item_ids)
    done = total - sum(len(entry.chunk_items(i)) for i in pending)
    progress(done, total, f"{done} of {total} items already cached" if done else "starting")
    if not pending:
        return 0, 0.0
    chunk_of, todo = [], []
    for chunk_index in pending:
        for item_id in entry.chunk_items(chunk_index):
            chunk_of.append(chunk_index)
            todo.append(int(item_id))
    todo_paths = [paths.get(item_id) for item_id in todo]
    workers = default_num_workers(len(todo)) if num_workers is None else int(num_workers)
    rows: dict[int, np.ndarray] = {}
    reasons: dict[int, str] = {}
    remaining = {c: len(entry.chunk_items(c)) for c in pending}
    computed = 0
    start = time.perf_counter()
    with FeatureRunner(net, settings) as runner:
        for positions, batch, failed in image_batches(
            todo_paths, net.transform, settings.batch_size, workers, settings.device == "cuda"
        ):
            if batch is not None:
                features = runner(batch)
                for position, vector in zip(positions, features):
                    rows[position] = vector
                computed += len(positions)
            for position, reason in failed:
                reasons[position] = reason
            for position in list(positions) + [p for p, _ in failed]:
                remaining[chunk_of[position]] -= 1
            for chunk_index in [c for c, left in remaining.items() if left == 0]:
                _write_poster_chunk(entry, chunk_index, todo, chunk_of, rows, reasons, net.feature_dim)
                del remaining[chunk_index]
                done += len(entry.chunk_items(chunk_index))
                elapsed = time.perf_counter() - start
                progress(done, total, f"{computed / elapsed:.1f} images/s on {settings.device}")
    return computed, time.perf_counter() - start


def _write_poster_chunk(entry, chunk_index, todo, chunk_of, rows, reasons, dim) -> None:
    positions = [p for p, c in enumerate(chunk_of) if c == chunk_index]
    ok = [p for p in positions if p in rows]
    bad = [p for p in positions if p in reasons]
    matrix = np.stack([rows.pop(p) for p in ok]) if ok else np.zeros((0, dim), np.float32)
    failures = pd.DataFrame(
        {"item_id": [todo[p] for p in bad], "reason": [reasons.pop(p) for p in bad]}, columns=FAILURE_COLUMNS
    )
    entry.write_chunk(chunk_index, Chunk(np.asarray([todo[p] for p in ok], np.int64), matrix, failures))


def _poster_result(entry: FeatureEntry, start: float, cache_hit: bool) -> ExtractionResult:
    manifest = entry.read_manifest() or {}
    data = entry.read_all()
    config = entry.config
    dim = manifest.get("dim", data.matrix.shape[1] if data.matrix.ndim == 2 else 0)
    matrix = data.matrix if len(data.item_ids) else np.zeros((0, dim), np.float32)
    features = ItemFeatures(
        data.item_ids,
        matrix,
        _features_name("posters", config["backbone"], config.get("layer")),
        {**config, "key": entry.directory.name, "dim": dim},
    )
    return _stored_result(entry, manifest, data, features, start, cache_hit)


def _stored_result(
    entry: FeatureEntry, manifest: dict, data, features: ItemFeatures, start: float, cache_hit: bool, **extra
) -> ExtractionResult:
    """The result as read back from the store (posters and trailers alike). A fresh run then sets its
    own device, throughput and settings; a cache hit keeps those of the run that wrote the entry."""
    last_run = (manifest.get("runs") or [{}])[-1]
    return ExtractionResult(
        features=features,
        failures=data.failures.reset_index(drop=True),
        device=last_run.get("device", "") if cache_hit else "",
        images_per_s=0.0,
        cache_hit=cache_hit,
        key=entry.directory.name,
        settings=last_run.get("settings", ""),
        seconds=time.perf_counter() - start,
        n_reused=len(entry.item_ids) if cache_hit else 0,
        info={"manifest": manifest},
        **extra,
    )


# ---- trailers --------------------------------------------------------------------------------------
def extract_trailer_features(
    dataset,
    backbone=DEFAULT_BACKBONE,
    weights: str = "auto",
    layer: str | None = None,
    pooling: str = "avg",
    fps: float | None = 1.0,
    every_nth: int | None = None,
    window_sizes: Sequence[int] = (10, 20),
    window_stride: int = 5,
    progress: Progress | None = None,
    store: FeatureStore | None = None,
    weights_file=None,
    item_ids: Sequence[int] | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    channels_last: bool | None = None,
    num_workers: int | None = None,
    max_frames: int | None = None,
) -> ExtractionResult:
    """Per-frame CNN features of each trailer sampled at `fps` (or every n-th frame), stored per frame.

    Returns the mean over frames per item (Ben Hassen's DFV) as `features`, and sliding-window means
    (VT2 sequence points) in `sequences[S][item_id]`. Windows are computed from the stored frames,
    so other window sizes are a cache hit. Items with no trailer, an unreadable file or no decodable
    frame are in `failures`; `status` lists frames, duration and any note per item.
    """
    from recsys.features.video import _validate_sampling

    fps = None if every_nth is not None else fps  # every_nth replaces the default fps
    _validate_sampling(fps, every_nth)
    start = time.perf_counter()
    progress = progress or _no_progress
    store = store or FeatureStore()
    paths = _media_paths(dataset, "trailers", item_ids)
    layer, pooling = _layer_and_pooling(backbone, layer, pooling)
    name, weights_id = _backbone_identity(backbone, weights, weights_file)
    sampling = _sampling(fps, every_nth, max_frames)
    config = _config(dataset, "trailers", paths, name, weights_id, layer, pooling, **sampling)
    entry = store.entry(config, paths.index, chunk_size=TRAILER_CHUNK_SIZE)
    windows = (tuple(int(s) for s in window_sizes), int(window_stride))
    if entry.complete:
        return _trailer_result(entry, start, True, *windows)

    net = _build_backbone(backbone, weights, layer, pooling, weights_file)
    device = _pick_device(device)
    settings = _settings_for(net, device, batch_size, channels_last, progress)
    entry.start({"dim": net.feature_dim, "backbone": net.describe()})
    reused = _items_in_done_chunks(entry)
    frames, items, seconds = _run_trailer_chunks(
        entry, paths, net, settings, num_workers, progress, fps, every_nth, max_frames
    )
    fps_rate = frames / seconds if seconds > 0 else 0.0
    entry.finish(
        {
            "device": device,
            "settings": settings.label(),
            "images_per_s": round(fps_rate, 2),
            "computed": items,
            "frames": frames,
            "n_failures": len(entry.read_all().failures),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    result = _trailer_result(entry, start, False, *windows)
    result.device, result.images_per_s, result.settings = device, fps_rate, settings.label()
    result.n_computed, result.n_reused = items, reused
    progress(len(entry.item_ids), len(entry.item_ids), f"done: {fps_rate:.1f} frames/s on {device}")
    return result


class _TrailerItems:
    """Torch-style dataset: decodes and preprocesses one trailer per index inside a worker."""

    def __init__(self, paths, transform, fps, every_nth, max_frames):
        self.paths, self.transform = list(paths), transform
        self.fps, self.every_nth, self.max_frames = fps, every_nth, max_frames

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int):
        import torch

        from recsys.data.errors import MediaError
        from recsys.features.video import sample_frames

        path = self.paths[position]
        if path is None:
            return position, None, "no trailer file for this item", 0.0, ""
        try:
            sampled = sample_frames(
                path, fps=self.fps, every_nth=self.every_nth, max_frames=self.max_frames, transform=self.transform
            )
            tensor = torch.stack(sampled.frames)
            return position, tensor, "", sampled.duration_s, sampled.note
        except MediaError as exc:
            return position, None, str(exc), 0.0, ""
        except Exception as exc:  # noqa: BLE001 - a decoder bug is one item's failure, not the run's
            return position, None, f"{path}: {type(exc).__name__}: {exc}", 0.0, ""


def _run_trailer_chunks(entry, paths, net, settings, num_workers, progress, fps, every_nth, max_frames):
    from torch.utils.data import DataLoader

    from recsys.features.images import FeatureRunner

    pending = entry.pending_chunks()
    total = len(entry.item_ids)
    done = total - sum(len(entry.chunk_items(i)) for i in pending)
    progress(done, total, f"{done} of {total} trailers already cached" if done else "starting")
    if not pending:
        return 0, 0, 0.0
    frames_total, items_total = 0, 0
    start = time.perf_counter()
    with FeatureRunner(net, settings) as runner:
        for chunk_index in pending:
            ids = [int(i) for i in entry.chunk_items(chunk_index)]
            dataset = _TrailerItems([paths.get(i) for i in ids], net.transform, fps, every_nth, max_frames)
            workers = (1 if len(ids) > 1 else 0) if num_workers is None else int(num_workers)
            loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers, collate_fn=lambda x: x)
            ok_ids, matrices, offsets, durations, notes, bad = [], [], [0], [], [], []
            for position, tensor, reason, duration, note in loader:
                if tensor is None:
                    bad.append((ids[position], reason))
                    continue
                parts = [
                    runner(tensor[i : i + settings.batch_size]) for i in range(0, len(tensor), settings.batch_size)
                ]
                per_frame = np.concatenate(parts)
                ok_ids.append(ids[position])
                matrices.append(per_frame)
                offsets.append(offsets[-1] + len(per_frame))
                durations.append(duration)
                notes.append(note)
                frames_total += len(per_frame)
            items_total += len(ok_ids)
            failures = pd.DataFrame(bad, columns=FAILURE_COLUMNS)
            matrix = np.concatenate(matrices) if matrices else np.zeros((0, net.feature_dim), np.float32)
            entry.write_chunk(
                chunk_index,
                Chunk(
                    np.asarray(ok_ids, np.int64),
                    matrix,
                    failures,
                    np.asarray(offsets),
                    {"duration_s": np.asarray(durations, np.float64), "note": np.asarray(notes, dtype=str)},
                ),
            )
            done += len(ids)
            elapsed = time.perf_counter() - start
            progress(done, total, f"{frames_total / elapsed:.1f} frames/s on {settings.device}")
    return frames_total, items_total, time.perf_counter() - start


def _trailer_result(entry, start, cache_hit, window_sizes, window_stride) -> ExtractionResult:
    from recsys.features.video import mean_embedding, window_embeddings

    manifest = entry.read_manifest() or {}
    data = entry.read_all()
    dim = manifest.get("dim", 0)
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
        status.append((int(item_id), 0, 0.0, f"failed: {reason}"))
    config = entry.config
    features = ItemFeatures(
        data.item_ids,
        np.stack(means) if means else np.zeros((0, dim), np.float32),
        _features_name("trailers", config["backbone"], config.get("layer")),
        {
            **config,
            "key": entry.directory.name,
            "dim": dim,
            "window_sizes": list(window_sizes),
            "window_stride": window_stride,
        },
    )
    status_frame = pd.DataFrame(status, columns=["item_id", "n_frames", "duration_s", "status"])
    return _stored_result(
        entry,
        manifest,
        data,
        features,
        start,
        cache_hit,
        sequences=sequences,
        status=status_frame.sort_values("item_id", ignore_index=True),
    )


# ---- cache-only access -----------------------------------------------------------------------------
def load_cached_features(
    dataset,
    backbone: str = DEFAULT_BACKBONE,
    weights: str = "auto",
    layer: str | None = None,
    pooling: str = "avg",
    media: str = "posters",
    fps: float | None = 1.0,
    every_nth: int | None = None,
    max_frames: int | None = None,
    store: FeatureStore | None = None,
    weights_file=None,
    item_ids: Sequence[int] | None = None,
) -> ItemFeatures | None:
    """Features from the store if this exact configuration was fully extracted, else None. Never computes."""
    if media not in ("posters", "trailers"):
        raise ValueError(f"media must be 'posters' or 'trailers', got {media!r}")
    store = store or FeatureStore()
    paths = _media_paths(dataset, media, item_ids)
    try:
        name, weights_id = _backbone_identity(backbone, weights, weights_file)
    except Exception:  # noqa: BLE001 - weights that cannot be resolved cannot have been cached
        return None
    if media == "posters":
        entry = store.entry(_config(dataset, media, paths, name, weights_id, layer, pooling), paths.index)
        return _poster_result(entry, time.perf_counter(), True).features if entry.complete else None
    sampling = _sampling(None if every_nth is not None else fps, every_nth, max_frames)
    config = _config(dataset, media, paths, name, weights_id, layer, pooling, **sampling)
    entry = store.entry(config, paths.index, chunk_size=TRAILER_CHUNK_SIZE)
    return _trailer_result(entry, time.perf_counter(), True, (10, 20), 5).features if entry.complete else None


def load_entry(
    key: str, store: FeatureStore | None = None, window_sizes: Sequence[int] = (10, 20), window_stride: int = 5
) -> ExtractionResult:
    """The ExtractionResult of a stored configuration by its key (a row of FeatureStore.list_entries())."""
    import json

    store = store or FeatureStore()
    directory = store.root / key
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        item_ids = np.load(directory / "item_ids.npy")
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"no feature entry '{key}' in {store.root}") from exc
    entry = FeatureEntry(directory, manifest["config"], item_ids, manifest["chunk_size"])
    if not entry.complete:
        raise RuntimeError(
            f"feature entry '{key}' is incomplete ({len(entry.done_chunks())}/{entry.n_chunks} chunks); "
            "run the extraction again to finish it"
        )
    if manifest["config"].get("media") == "trailers":
        return _trailer_result(entry, time.perf_counter(), True, tuple(window_sizes), window_stride)
    return _poster_result(entry, time.perf_counter(), True)
