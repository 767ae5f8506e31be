"""The local engine: this process runs the backbone, decoding threads feed it (posters and trailers).

Posters, ``preprocessing="cpu-pil"``: threads decode with PIL and apply the backbone's transform
(``images.image_batches``); on CUDA they stop at the uint8 resized crop and the GPU finishes
(``decoding.split_transform``: same numbers, a quarter of the bytes). ``"gpu-nvjpeg"`` (CUDA):
threads read bytes, nvJPEG decodes batches and the GPU resizes (``gpu_images``), a producer thread
on a side stream overlapping the model. Trailers: a pool of decoding threads (one trailer each,
as many as cores) streams sampled frames into a bounded queue; the model takes batches mixed from
several trailers, so the batch is full whatever the trailers' lengths, and memory stays bounded
whatever a video's length (no list of a video's frames is ever built). Items without a trailer
start no decoding job and are reported as "no trailer" (coverage, not failures).

No worker process is forked (see ``features.decoding``), so CUDA may be initialised at any time.
Each chunk is written as soon as all its items are resolved (features or a failure reason), so a
killed run resumes; progress only moves forward.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from recsys.errors import InvalidParameter
from recsys.features.config import ExtractionConfig, RunOptions
from recsys.features.engines import EngineReport, ExtractionJob
from recsys.features.store import FAILURE_COLUMNS, Chunk, FeatureEntry

log = logging.getLogger(__name__)

#: batch sizes used when calibration is switched off and none is given
UNCALIBRATED_BATCH = {"cpu": 16, "cuda": 64, "mps": 32}
#: the reason stored for an item without a trailer file (read back as coverage, not as a failure)
NO_TRAILER = "no trailer"
#: seconds the model thread waits for more frames before running a partial batch
PARTIAL_BATCH_WAIT_S = 0.05


class LocalEngine:
    name = "local"
    preprocessing = ("cpu-pil", "gpu-nvjpeg")

    def run(self, job: ExtractionJob) -> EngineReport:
        config, run = job.config, job.run
        device = _pick_device(run.device)
        check_device(config, device)
        net = build_backbone(config, run.model)
        done, total = job.entry_progress()
        settings = run_settings(
            net, device, run, amp=config.precision == "amp", progress=steady_progress(job.progress, done, total)
        )
        job.entry.start({"dim": net.feature_dim, "backbone": net.describe()})
        info: dict = {}
        if config.media == "posters":
            items, seconds, info = _run_poster_chunks(job, net, settings)
            frames = items
        else:
            frames, items, seconds, info = _run_trailer_chunks(job, net, settings)
        return EngineReport(
            device=device, settings=settings.label(), items=items, frames=frames, seconds=seconds, info=info
        )


# ---- model, device and settings -------------------------------------------------------------------
def _pick_device(device: str | None) -> str:
    if device:
        return device
    from recsys.config import torch_device_name

    return torch_device_name()


def check_device(config: ExtractionConfig, device: str) -> None:
    """Refuse what this device cannot compute under the config's key (never compute something else)."""
    kind = device.split(":")[0]
    if config.precision == "amp" and kind != "cuda":
        raise InvalidParameter(
            f"precision 'amp' needs a CUDA device, this run is on {device}; use precision 'fp32' "
            "(CLI: --precision fp32) or run on a GPU"
        )
    if config.preprocessing == "gpu-nvjpeg":
        if kind != "cuda":
            raise InvalidParameter(
                f"preprocessing 'gpu-nvjpeg' decodes posters on a CUDA GPU, this run is on {device}; use "
                "preprocessing 'cpu-pil' (CLI: --preprocessing cpu-pil) or run on a GPU"
            )
        nvjpeg_available(device)


def nvjpeg_available(device: str) -> None:
    """InvalidParameter when this torchvision cannot decode a JPEG on `device` (no nvJPEG build)."""
    import io

    from PIL import Image

    from recsys.features.gpu_images import _decode

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buffer, format="JPEG")
    import torch

    probe = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
    if _decode([probe], device)[0] is None:
        raise InvalidParameter(
            "this torchvision build cannot decode JPEGs on the GPU (no nvJPEG); use preprocessing 'cpu-pil' "
            "(CLI: --preprocessing cpu-pil)"
        )


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


def steady_progress(progress, done: int, total: int):
    """A callback for sub-steps (calibration) that shows their messages without moving the bar:
    the extraction's own done/total stays the only fraction shown, so progress never goes back."""

    def report(_done: int, _total: int, message: str = "") -> None:
        progress(done, total, message)

    return report


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


def _model_threads(settings) -> int:
    import torch

    return int(settings.threads or torch.get_num_threads())


def _pending_items(entry: FeatureEntry) -> tuple[list[int], list[int], list[int]]:
    """(pending chunk indices, their items in order, the chunk of each item)."""
    pending = entry.pending_chunks()
    todo, chunk_of = [], []
    for chunk_index in pending:
        for item_id in entry.chunk_items(chunk_index):
            todo.append(int(item_id))
            chunk_of.append(chunk_index)
    return pending, todo, chunk_of


# ---- posters ---------------------------------------------------------------------------------------
def _run_poster_chunks(job: ExtractionJob, net, settings) -> tuple[int, float, dict]:
    """Compute the pending chunks in order, writing each as soon as all its items are resolved."""
    from recsys.features.decoding import decode_workers, split_transform
    from recsys.features.images import FeatureRunner, image_batches

    entry, paths, progress, run = job.entry, job.paths, job.progress, job.run
    pending, todo, chunk_of = _pending_items(entry)
    total = len(entry.item_ids)
    done = total - len(todo)
    progress(done, total, f"{done} of {total} items already cached" if done else "starting")
    if not pending:
        return 0, 0.0, {}
    todo_paths = [paths.get(item_id) for item_id in todo]
    device = settings.device
    cuda = device.split(":")[0] == "cuda"
    gpu_decode = job.config.preprocessing == "gpu-nvjpeg"
    workers = decode_workers(run.num_workers, device, _model_threads(settings), n_jobs=len(todo))
    if gpu_decode and run.num_workers is None:
        workers = min(workers, 8)  # threads only read bytes and sniff headers there
    rows: dict[int, np.ndarray] = {}
    reasons: dict[int, str] = {}
    remaining = {c: len(entry.chunk_items(c)) for c in pending}
    computed, fallback = 0, 0
    start = time.perf_counter()
    with FeatureRunner(net, settings) as runner:
        if gpu_decode:
            from recsys.features.gpu_images import gpu_poster_batches, wait_ready

            def batches():
                nonlocal fallback
                for item in gpu_poster_batches(todo_paths, net.transform, settings.batch_size, device, workers):
                    wait_ready(item)
                    fallback += item.fallback
                    yield item.positions, item.batch, item.failed, None

        else:
            split = split_transform(net.transform) if cuda else None
            finish = split.finish if split is not None else None

            def batches():
                for positions, batch, failed in image_batches(
                    todo_paths, net.transform, settings.batch_size, workers, split
                ):
                    yield positions, batch, failed, finish

        for positions, batch, failed, finish in batches():
            if batch is not None:
                features = runner(batch, finish)
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
                progress(done, total, f"{computed / elapsed:.1f} images/s on {device}")
    seconds = time.perf_counter() - start
    info = {"decode_threads": workers, "preprocessing": job.config.preprocessing}
    if gpu_decode:
        info["cpu_fallback"] = fallback
    return computed, seconds, info


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
class _Trailer:
    """What the model thread knows about one trailer while it is decoded."""

    __slots__ = ("item_id", "chunk", "frames", "expected", "duration", "note", "reason", "decoded")

    def __init__(self, item_id: int, chunk: int):
        self.item_id, self.chunk = item_id, chunk
        self.frames: dict[int, np.ndarray] = {}  # frame number -> features
        self.expected: int | None = None  # frames the decoder sent, known once it finished
        self.duration, self.note, self.reason = 0.0, "", ""
        self.decoded = False

    @property
    def resolved(self) -> bool:
        return self.decoded and (self.reason != "" or len(self.frames) == self.expected)


def decode_trailer(
    path,
    config: ExtractionConfig,
    prepare: Callable,
    emit: Callable,
    threads: int | None,
    stop,
) -> tuple[float, str, int]:
    """Decode one trailer, calling ``emit(frame_number, tensor)`` for each sampled frame (which
    blocks while the model is behind); returns (duration_s, note, n_frames). MediaError when the
    video cannot be read at all."""
    from recsys.features.video import FrameSampler

    sampler = FrameSampler.for_config(path, config, transform=prepare, threads=threads)
    number = 0
    for _time, _index, tensor in sampler:
        if stop:
            break
        emit(number, tensor)
        number += 1
    return sampler.duration_s, sampler.note, number


def _run_trailer_chunks(job: ExtractionJob, net, settings):
    import torch

    from recsys.errors import MediaError
    from recsys.features.decoding import StopFlag, cpu_count, decode_workers, split_transform
    from recsys.features.images import FeatureRunner

    entry, paths, progress, config, run = job.entry, job.paths, job.progress, job.config, job.run
    pending, todo, chunk_of = _pending_items(entry)
    total = len(entry.item_ids)
    done = total - len(todo)
    progress(done, total, f"{done} of {total} trailers already cached" if done else "starting")
    if not pending:
        return 0, 0, 0.0, {}
    device = settings.device
    # Decoders hand over uint8 crops (a quarter of the float tensor's bytes, less allocator churn
    # over a long video); the model thread finishes them on its device with the same arithmetic.
    split = split_transform(net.transform)
    prepare = (lambda image: torch.from_numpy(split.to_array(image))) if split is not None else net.transform
    finish = split.finish if split is not None else None

    trailers = {item_id: _Trailer(item_id, chunk) for item_id, chunk in zip(todo, chunk_of)}
    jobs = [item_id for item_id in todo if paths.get(item_id) is not None]
    for item_id in todo:
        if paths.get(item_id) is None:  # coverage, not a failure: no decoding job
            trailers[item_id].reason, trailers[item_id].decoded = NO_TRAILER, True
    workers = max(1, decode_workers(run.num_workers, device, _model_threads(settings), n_jobs=len(jobs)) or 1)
    if not jobs:
        workers = 0
    threads_each = max(1, cpu_count() // max(workers, 1))
    frames_queue: queue.Queue = queue.Queue(maxsize=max(2 * settings.batch_size, 4 * max(workers, 1)))
    stop = StopFlag()

    def put(message) -> None:
        while not stop:
            try:
                frames_queue.put(message, timeout=0.1)
                return
            except queue.Full:
                continue

    def decode_one(item_id: int) -> None:
        try:
            duration, note, count = decode_trailer(
                paths.get(item_id),
                config,
                prepare,
                lambda number, tensor: put(("frame", item_id, number, tensor)),
                threads_each,
                stop,
            )
            put(("done", item_id, count, duration, note))
        except MediaError as exc:
            put(("failed", item_id, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a decoder bug is one item's failure, not the run's
            put(("failed", item_id, f"{paths.get(item_id)}: {type(exc).__name__}: {exc}"))

    remaining = {c: len(entry.chunk_items(c)) for c in pending}
    frames_total = items_total = 0
    start = time.perf_counter()

    def resolve(trailer: _Trailer) -> None:
        nonlocal done, items_total
        remaining[trailer.chunk] -= 1
        if remaining[trailer.chunk] == 0:
            del remaining[trailer.chunk]
            items_total += _write_trailer_chunk(entry, trailer.chunk, trailers, net.feature_dim)
            done += len(entry.chunk_items(trailer.chunk))
            elapsed = max(time.perf_counter() - start, 1e-9)
            progress(done, total, f"{frames_total / elapsed:.1f} frames/s on {device}, {workers} decoders")

    for item_id in todo:  # items without a trailer resolve at once (chunks of them only are written now)
        if trailers[item_id].resolved:
            resolve(trailers[item_id])

    in_flight = 0
    submitted = iter(jobs)
    pool = ThreadPoolExecutor(max(workers, 1), thread_name_prefix="recsys-trailer")
    futures = []

    def submit_more() -> None:
        nonlocal in_flight
        # at most two trailers per decoder queued or running: open chunks stay few
        while in_flight < 2 * max(workers, 1):
            item_id = next(submitted, None)
            if item_id is None:
                return
            futures.append(pool.submit(decode_one, item_id))
            in_flight += 1

    batch_ids: list[tuple[int, int]] = []
    batch_tensors: list = []

    def run_batch() -> None:
        nonlocal frames_total
        if not batch_tensors:
            return
        features = runner(torch.stack(batch_tensors), finish)
        for (item_id, number), vector in zip(batch_ids, features):
            trailers[item_id].frames[number] = vector
        frames_total += len(batch_ids)
        touched = {item_id for item_id, _ in batch_ids}
        batch_ids.clear()
        batch_tensors.clear()
        for item_id in touched:
            if trailers[item_id].resolved:
                resolve(trailers[item_id])

    try:
        with FeatureRunner(net, settings) as runner:
            submit_more()
            while in_flight > 0 or frames_queue.qsize() > 0:
                try:
                    message = frames_queue.get(timeout=PARTIAL_BATCH_WAIT_S if batch_tensors else 1.0)
                except queue.Empty:
                    run_batch()  # the decoders are behind: do not sit on a partial batch
                    continue
                kind, item_id = message[0], message[1]
                trailer = trailers[item_id]
                if kind == "frame":
                    batch_ids.append((item_id, message[2]))
                    batch_tensors.append(message[3])
                    if len(batch_tensors) >= settings.batch_size:
                        run_batch()
                    continue
                in_flight -= 1
                trailer.decoded = True
                if kind == "failed":
                    trailer.reason = message[2]
                    trailer.frames.clear()
                    batch_keep = [i for i, (owner, _) in enumerate(batch_ids) if owner != item_id]
                    batch_ids[:] = [batch_ids[i] for i in batch_keep]
                    batch_tensors[:] = [batch_tensors[i] for i in batch_keep]
                else:
                    trailer.expected, trailer.duration, trailer.note = message[2], message[3], message[4]
                submit_more()
                if trailer.resolved:
                    resolve(trailer)
            run_batch()
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    for future in futures:  # surface a bug in the decoding wrapper itself
        if future.done() and not future.cancelled() and future.exception() is not None:
            raise future.exception()
    info = {"decode_threads": workers, "decoder_threads_each": threads_each, "sampling": config.sampling}
    return frames_total, items_total, time.perf_counter() - start, info


def _write_trailer_chunk(entry: FeatureEntry, chunk_index: int, trailers: dict, dim: int) -> int:
    ids = [int(i) for i in entry.chunk_items(chunk_index)]
    ok_ids, matrices, offsets, durations, notes, bad = [], [], [0], [], [], []
    for item_id in ids:
        trailer = trailers.pop(item_id)
        if trailer.reason:
            bad.append((item_id, trailer.reason))
            continue
        per_frame = np.stack([trailer.frames[n] for n in range(trailer.expected)])
        ok_ids.append(item_id)
        matrices.append(per_frame)
        offsets.append(offsets[-1] + len(per_frame))
        durations.append(trailer.duration)
        notes.append(trailer.note)
    matrix = np.concatenate(matrices) if matrices else np.zeros((0, dim), np.float32)
    entry.write_chunk(
        chunk_index,
        Chunk(
            np.asarray(ok_ids, np.int64),
            matrix,
            pd.DataFrame(bad, columns=FAILURE_COLUMNS),
            np.asarray(offsets),
            {"duration_s": np.asarray(durations, np.float64), "note": np.asarray(notes, dtype=str)},
        ),
    )
    return len(ok_ids)
