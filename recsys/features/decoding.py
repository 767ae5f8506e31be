"""Decoding on threads: an ordered, bounded thread pool and the split of a timm transform.

Why threads and not DataLoader worker processes: a worker forked after CUDA is initialised can
hang (issue 12 saw one in the trailer test on an H200), spawn/forkserver workers pay an
interpreter start and a torch import each (3-9 s on a small CPU), and the work they would do is
in C code that releases the GIL: PIL's JPEG/PNG decoders and resizes, PyAV's
``avcodec_send_packet``/``receive_frame`` and swscale (``with nogil`` in PyAV >= 14), torch's
tensor ops. So one process with a thread pool keeps every core busy without any of the above.

``split_transform`` cuts a timm eval transform (Resize, CenterCrop, ToTensor, Normalize) into a
spatial PIL part, run in the decoding threads, and an exact arithmetic tail (``x / 255``, then
``(x - mean) / std``), run on the model's device on uint8 batches: a quarter of the bytes to move,
and the same float32 operations as torchvision's, so the numbers do not change.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice

import numpy as np

_END = object()


def cpu_count() -> int:
    """Cores this process may use (the affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def decode_workers(requested: int | None, device: str, model_threads: int = 0, n_jobs: int | None = None) -> int:
    """Decoding threads: `requested` when given, else every core on a GPU machine (the model runs
    on the GPU) and the cores the model's own threads leave free on a CPU (at least one); never more
    than there are jobs. 0 means decode in the calling thread."""
    if requested is not None:
        workers = int(requested)
    elif device.split(":")[0] == "cpu":
        workers = max(1, cpu_count() - max(int(model_threads), 1))
    else:
        workers = cpu_count()
    if n_jobs is not None:
        workers = min(workers, max(int(n_jobs), 0))
    return max(workers, 0)


def ordered_map(fn: Callable, items: Iterable, workers: int, lookahead: int | None = None) -> Iterator:
    """``fn(item)`` for every item, in input order, computed by `workers` threads.

    At most `lookahead` calls are queued or running at once (default 4 per worker), so memory stays
    bounded whatever the number of items; a consumer that stops early (an exception, a closed
    generator) cancels what has not started and waits for what has. workers=0 runs inline.
    """
    if workers <= 0:
        for item in items:
            yield fn(item)
        return
    lookahead = max(int(lookahead or 4 * workers), 1)
    iterator = iter(items)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="recsys-decode")
    pending: deque = deque()
    try:
        for item in islice(iterator, lookahead):
            pending.append(pool.submit(fn, item))
        while pending:
            result = pending.popleft().result()
            following = next(iterator, _END)
            if following is not _END:
                pending.append(pool.submit(fn, following))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class StopFlag:
    """A threading.Event with the one question producers ask."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()


# ---- timm eval transforms split in two ------------------------------------------------------------
@dataclass
class SplitTransform:
    """``spatial(pil) -> uint8 HxWx3 array`` (decoding threads) and ``finish(uint8 NHWC tensor on a
    device) -> float32 NCHW`` (the model's device). ``finish(spatial(x))`` equals the full transform
    (ToTensor's ``float / 255`` and Normalize's ``(x - mean) / std`` are exact IEEE operations on
    any device)."""

    spatial: Callable
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_array(self, image) -> np.ndarray:
        array = np.array(self.spatial(image), dtype=np.uint8)  # a writable copy (torch.from_numpy)
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        return array

    def finish(self, batch_uint8_nhwc):
        import torch

        x = batch_uint8_nhwc.permute(0, 3, 1, 2).to(torch.float32).div(255)
        mean = torch.as_tensor(self.mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        return x.sub_(mean).div_(std)


def split_transform(transform) -> SplitTransform | None:
    """Cut a timm eval transform (Compose of PIL-side steps, ToTensor, Normalize) in two; None when
    its steps are not of that shape (then the whole transform runs on the CPU)."""
    from torchvision import transforms as T

    steps = list(getattr(transform, "transforms", []))
    if len(steps) < 2:
        return None
    to_tensor, normalize = steps[-2], steps[-1]
    if type(to_tensor).__name__ not in ("ToTensor", "MaybeToTensor") or not isinstance(normalize, T.Normalize):
        return None
    spatial_steps = steps[:-2]
    if not all(isinstance(s, (T.Resize, T.CenterCrop)) for s in spatial_steps):
        return None
    if getattr(normalize, "inplace", False):
        return None
    mean = tuple(float(v) for v in np.asarray(normalize.mean, dtype=np.float64).ravel())
    std = tuple(float(v) for v in np.asarray(normalize.std, dtype=np.float64).ravel())
    return SplitTransform(T.Compose(spatial_steps), mean, std)
