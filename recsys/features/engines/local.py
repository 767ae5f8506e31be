"""The local engine: this process runs the backbone, decoding workers feed it (posters and trailers).

Posters: a torch DataLoader decodes and preprocesses images in worker processes and batches them
(``images.image_batches``); the main process runs the net at the calibrated batch size, memory
format and thread count. Trailers: one trailer per DataLoader item, decoded and sampled in a
worker (``video.sample_frames``), its frames run through the net in batches. Each chunk is written
as soon as all its items are resolved (features or a failure reason), so a killed run resumes.

This is where GPU JPEG decoding and a trailer decoding pool plug in (issue 12): the choice of
decoder follows ``job.config.preprocessing``.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from recsys.errors import InvalidParameter
from recsys.features.config import ExtractionConfig, RunOptions
from recsys.features.engines import EngineReport, ExtractionJob
from recsys.features.store import FAILURE_COLUMNS, Chunk, FeatureEntry

log = logging.getLogger(__name__)

#: batch sizes used when calibration is switched off and none is given
UNCALIBRATED_BATCH = {"cpu": 16, "cuda": 64, "mps": 32}


class LocalEngine:
    name = "local"
    preprocessing = ("cpu-pil",)

    def run(self, job: ExtractionJob) -> EngineReport:
        config, run = job.config, job.run
        if config.preprocessing not in self.preprocessing:
            raise InvalidParameter(
                f"the local engine cannot preprocess with {config.preprocessing!r} yet; "
                f"use preprocessing={self.preprocessing[0]!r}"
            )
        device = _pick_device(run.device)
        if config.precision == "amp" and device.split(":")[0] != "cuda":
            raise InvalidParameter(
                f"precision 'amp' needs a CUDA device, this run is on {device}; use precision 'fp32' "
                "(CLI: --precision fp32) or run on a GPU"
            )
        net = build_backbone(config, run.model)
        settings = run_settings(net, device, run, amp=config.precision == "amp", progress=job.progress)
        job.entry.start({"dim": net.feature_dim, "backbone": net.describe()})
        if config.media == "posters":
            items, seconds = _run_poster_chunks(job.entry, job.paths, net, settings, run.num_workers, job.progress)
            frames = items
        else:
            frames, items, seconds = _run_trailer_chunks(job.entry, job.paths, net, settings, config, run, job.progress)
        return EngineReport(device=device, settings=settings.label(), items=items, frames=frames, seconds=seconds)


# ---- model and settings ---------------------------------------------------------------------------
def _pick_device(device: str | None) -> str:
    if device:
        return device
    from recsys.config import torch_device_name

    return torch_device_name()


def build_backbone(config: ExtractionConfig, model=None):
    """The backbone `config` names; `model` (an already built Backbone) is used when it matches."""
    if model is not None:
        built = (model.name, model.weights_id, model.layer or None, model.pooling)
        wanted = (config.backbone, config.weights_id, config.layer, config.pooling)
        if built != wanted:
            raise InvalidParameter(f"the model passed in RunOptions is {built}, the config asks for {wanted}")
        return model
    from recsys.features.backbones import create_backbone, weights_from_id

    weights, weights_file = weights_from_id(config.weights_id)
    net = create_backbone(
        config.backbone, weights=weights, layer=config.layer, pooling=config.pooling, weights_file=weights_file
    )
    if net.weights_id != config.weights_id:
        raise InvalidParameter(
            f"weights of {config.backbone} changed since the configuration was made "
            f"({config.weights_id} -> {net.weights_id}); make the configuration again"
        )
    return net


def run_settings(net, device: str, run: RunOptions, amp: bool, progress=None):
    """Batch size, memory format and threads: given, remembered/measured (calibration) or defaults."""
    from recsys.features.images import RunSettings

    channels_default = device.split(":")[0] == "cuda"
    if run.batch_size is not None or not run.calibrate:
        batch = run.batch_size or UNCALIBRATED_BATCH.get(device.split(":")[0], 16)
        fmt = bool(run.channels_last) if run.channels_last is not None else channels_default
        return RunSettings(device, int(batch), fmt, amp)
    from recsys.features.calibration import calibrate

    settings, _ = calibrate(net, device, progress=progress, amp=amp)
    if run.channels_last is not None:
        settings.channels_last = bool(run.channels_last)
    return settings


# ---- posters ---------------------------------------------------------------------------------------
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


# ---- trailers --------------------------------------------------------------------------------------
class _TrailerItems:
    """Torch-style dataset: decodes and preprocesses one trailer per index inside a worker."""

    def __init__(self, paths, transform, fps, every_nth, max_frames, max_duration=None):
        self.paths, self.transform = list(paths), transform
        self.fps, self.every_nth, self.max_frames, self.max_duration = fps, every_nth, max_frames, max_duration

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int):
        import torch

        from recsys.errors import MediaError
        from recsys.features.video import sample_frames

        path = self.paths[position]
        if path is None:
            return position, None, "no trailer file for this item", 0.0, ""
        try:
            sampled = sample_frames(
                path,
                fps=self.fps,
                every_nth=self.every_nth,
                max_frames=self.max_frames,
                transform=self.transform,
                max_duration=self.max_duration,
            )
            tensor = torch.stack(sampled.frames)
            return position, tensor, "", sampled.duration_s, sampled.note
        except MediaError as exc:
            return position, None, str(exc), 0.0, ""
        except Exception as exc:  # noqa: BLE001 - a decoder bug is one item's failure, not the run's
            return position, None, f"{path}: {type(exc).__name__}: {exc}", 0.0, ""


def _run_trailer_chunks(entry, paths, net, settings, config: ExtractionConfig, run: RunOptions, progress):
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
            items = _TrailerItems(
                [paths.get(i) for i in ids],
                net.transform,
                config.fps,
                config.every_nth,
                config.max_frames,
                config.max_duration,
            )
            workers = (1 if len(ids) > 1 else 0) if run.num_workers is None else int(run.num_workers)
            loader = DataLoader(items, batch_size=None, shuffle=False, num_workers=workers, collate_fn=lambda x: x)
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
