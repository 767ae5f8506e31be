"""Batched image -> feature pipeline: DataLoader workers decode and preprocess, the main process runs the net.

Bad files never stop a run: each item either yields a tensor or a reason (missing, corrupt,
truncated), and the reasons end up in the failures table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset


def load_rgb(path):
    """Fully decoded RGB PIL image; MediaError naming the file if missing, corrupt or truncated.

    The data layer's opener is the one definition of a readable poster (it sniffs the bytes, so
    a PNG named .jpg works, and decodes fully, so a truncated JPEG fails instead of going grey).
    """
    from recsys.data.posters import open_image

    return open_image(path)


class ImageItems(TorchDataset):
    """(position, tensor or None, failure reason or "") for each path; runs inside DataLoader workers."""

    def __init__(self, paths: Sequence, transform: Callable):
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int):
        from recsys.data.errors import MediaError

        try:
            return position, self.transform(load_rgb(self.paths[position])), ""
        except MediaError as exc:
            return position, None, str(exc)
        except Exception as exc:  # noqa: BLE001 - any decoder bug becomes a per-item failure, not a crash
            return position, None, f"{self.paths[position]}: {type(exc).__name__}: {exc}"


def collate_items(samples):
    positions = [s[0] for s in samples if s[1] is not None]
    tensors = [s[1] for s in samples if s[1] is not None]
    failures = [(s[0], s[2]) for s in samples if s[1] is None]
    batch = torch.stack(tensors) if tensors else None
    return positions, batch, failures


def default_num_workers(n_items: int) -> int:
    """Decoding workers: none for tiny jobs (process start-up costs more), else one core left for the net."""
    cpus = os.cpu_count() or 1
    if n_items < 64 or cpus < 2:
        return 0
    return min(8, cpus - 1)


def image_batches(
    paths: Sequence, transform: Callable, batch_size: int, num_workers: int, pin_memory: bool = False
) -> Iterator:
    """Yields (positions, batch tensor or None, [(position, reason)]) in input order."""
    loader = DataLoader(
        ImageItems(paths, transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_items,
        pin_memory=pin_memory,
        prefetch_factor=4 if num_workers > 0 else None,
        persistent_workers=False,
    )
    yield from loader


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

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        batch = batch.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            if self.settings.amp:
                with torch.autocast(device_type=self.device.type, dtype=torch.float16):
                    out = self.backbone.extract(batch)
            else:
                out = self.backbone.extract(batch)
        return out.float().cpu().numpy()
