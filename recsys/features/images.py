"""Batched image -> feature pipeline: decoding threads read and preprocess, the calling thread runs the net.

Bad files never stop a run: each item either yields a tensor or a reason (missing, corrupt,
truncated), and the reasons end up in the failures table. Decoding runs on threads (see
``recsys.features.decoding``: no worker process is ever forked, so CUDA can be initialised
before or after), in input order, with a bounded number of images in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recsys.features.decoding import SplitTransform, cpu_count, ordered_map


def load_rgb(path):
    """Fully decoded RGB PIL image; MediaError naming the file if missing, corrupt or truncated.

    The data layer's opener is the one definition of a readable poster (it sniffs the bytes, so
    a PNG named .jpg works, and decodes fully, so a truncated JPEG fails instead of going grey).
    """
    from recsys.data.posters import open_image

    return open_image(path)


def load_item(path, transform: Callable, split: SplitTransform | None = None):
    """(tensor, "") or (None, reason) for one image: the full transform (float CHW), or with `split`
    its spatial part as a uint8 HxWx3 tensor (the device finishes it)."""
    from recsys.errors import MediaError

    try:
        image = load_rgb(path)
        if split is not None:
            return torch.from_numpy(split.to_array(image)), ""
        return transform(image), ""
    except MediaError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - any decoder bug becomes a per-item failure, not a crash
        return None, f"{path}: {type(exc).__name__}: {exc}"


def default_num_workers(n_items: int) -> int:
    """Decoding threads for `n_items` images on a CPU run: the cores left to the net, at least one."""
    return max(1, min(8, cpu_count() - 1, n_items))


def image_batches(
    paths: Sequence,
    transform: Callable,
    batch_size: int,
    num_workers: int,
    split: SplitTransform | None = None,
) -> Iterator:
    """Yields (positions, batch tensor or None, [(position, reason)]) in input order.

    Each batch holds `batch_size` readable images (the last one fewer); failures come with the
    batch during which they were found. num_workers decoding threads (0: in this thread).
    """

    def load(position: int):
        return (position, *load_item(paths[position], transform, split))

    positions, tensors, failed = [], [], []
    lookahead = max(2 * batch_size, 4 * max(num_workers, 1))
    for position, tensor, reason in ordered_map(load, range(len(paths)), num_workers, lookahead):
        if tensor is None:
            failed.append((position, reason))
            continue
        positions.append(position)
        tensors.append(tensor)
        if len(tensors) == batch_size:
            yield positions, torch.stack(tensors), failed
            positions, tensors, failed = [], [], []
    if tensors or failed:
        yield positions, (torch.stack(tensors) if tensors else None), failed


@dataclass
class RunSettings:
    """How the net runs on a device: chosen by calibration, reported with the results."""

    device: str
    batch_size: int
    channels_last: bool
    amp: bool
    threads: int = 0  # CPU intra-op threads for the net; 0 = torch's current setting

    def label(self) -> str:
        fmt = "channels_last" if self.channels_last else "contiguous"
        threads = f" threads={self.threads}" if self.threads else ""
        return f"{self.device} batch={self.batch_size} {fmt}{' amp' if self.amp else ''}{threads}"


class FeatureRunner:
    """Moves the model to the device once and turns preprocessed batches into float32 numpy features.

    Use as a context manager: it sets the CPU thread count chosen by calibration and restores the
    previous one on exit.
    """

    def __init__(self, backbone, settings: RunSettings):
        self.backbone = backbone
        self.settings = settings
        self.device = torch.device(settings.device)
        memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
        backbone.model.to(self.device, memory_format=memory_format)
        self.memory_format = memory_format
        self._previous_threads = torch.get_num_threads()

    def __enter__(self) -> FeatureRunner:
        if self.settings.threads and self.settings.device == "cpu":
            torch.set_num_threads(self.settings.threads)
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self._previous_threads)

    def __call__(self, batch: torch.Tensor, finish: Callable | None = None) -> np.ndarray:
        """Features (N, d) as float32 numpy. `finish` turns the batch into the net's input on the
        device (e.g. ``SplitTransform.finish`` for uint8 NHWC batches)."""
        batch = batch.to(self.device, non_blocking=True)
        if finish is not None:
            batch = finish(batch)
        batch = batch.contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            if self.settings.amp:
                with torch.autocast(device_type=self.device.type, dtype=torch.float16):
                    out = self.backbone.extract(batch)
            else:
                out = self.backbone.extract(batch)
        return out.float().cpu().numpy()
