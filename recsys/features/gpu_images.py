"""Posters decoded on the GPU (preprocessing "gpu-nvjpeg"): nvJPEG batches, resize and normalise there.

Pipeline (one run)::

    reader threads : read the file's bytes, check the JPEG header (``jpeg_header``); what nvJPEG
                     cannot take (PNG behind a .jpg name, CMYK, 12-bit, lossless/arithmetic,
                     no end marker = truncated, over PIL's pixel cap) is decoded by PIL and the
                     backbone's own transform right there, with the CPU path's failure reasons
    producer thread: per batch, ``torchvision.io.decode_jpeg(list, device="cuda")`` (nvJPEG; the
                     hardware decoder of A100/H100 for baseline JPEGs), then ``TensorTransform``
                     (the backbone's timm eval transform on tensors: shorter side to
                     floor(size / crop_pct) with its interpolation and antialias, centre crop,
                     /255, mean/std), all on a side CUDA stream; an event marks the batch ready
    model thread   : waits for the event on its own stream and runs the net while the producer
                     decodes the next batch (a queue of two batches)

A batch that nvJPEG rejects as a whole is decoded one image at a time to find the culprit, which
then takes the CPU path. The same code runs with ``device="cpu"`` (torchvision's libjpeg-turbo
decode), which is how the CPU-only test suite checks it.

nvJPEG and PIL's libjpeg-turbo differ in IDCT and chroma upsampling, and torchvision's tensor
resize is not PIL's to the last bit, so features differ from the "cpu-pil" path by more than 1e-3
(cosine >= 0.995 is the bar, tests/test_features_gpu.py): the two are different store keys.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from recsys.errors import InvalidParameter
from recsys.features.decoding import StopFlag, ordered_map

log = logging.getLogger(__name__)

#: SOF markers nvJPEG decodes: baseline, extended sequential and progressive Huffman
_SOF_SUPPORTED = {0xC0, 0xC1, 0xC2}
#: every other start-of-frame marker (lossless, arithmetic, hierarchical): the CPU path
_SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass
class JpegInfo:
    height: int
    width: int
    components: int
    progressive: bool


def jpeg_header(data: bytes) -> tuple[JpegInfo | None, str]:
    """(info, "") when nvJPEG can decode `data` to RGB as PIL would, else (None, why not).

    Walks the marker segments up to the start of frame: 8-bit baseline/progressive Huffman with
    1 or 3 components and no Adobe RGB transform; the data must end with the EOI marker (a
    truncated file does not, and nvJPEG would decode it to grey instead of failing like PIL).
    """
    if len(data) < 4 or data[:3] != b"\xff\xd8\xff":
        return None, "not a JPEG"
    if not data.rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9"):
        return None, "no end-of-image marker (truncated?)"
    position, size = 2, len(data)
    adobe_transform = None
    while position + 4 <= size:
        if data[position] != 0xFF:
            return None, "bad marker"
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if length < 2:
            return None, "bad segment length"
        segment = data[position + 4 : position + 2 + length]
        if marker == 0xEE and segment[:5] == b"Adobe" and len(segment) >= 12:
            adobe_transform = segment[11]
        if marker in _SOF_OTHER:
            return None, f"JPEG process 0x{marker:02X} (lossless/arithmetic/hierarchical)"
        if marker in _SOF_SUPPORTED:
            if len(segment) < 6:
                return None, "short frame header"
            precision, height, width, components = (
                segment[0],
                int.from_bytes(segment[1:3], "big"),
                int.from_bytes(segment[3:5], "big"),
                segment[5],
            )
            if precision != 8:
                return None, f"{precision}-bit JPEG"
            if components not in (1, 3):
                return None, f"{components} colour components (CMYK/YCCK)"
            if components == 3 and adobe_transform == 0:
                return None, "Adobe RGB-coded JPEG"
            if height == 0 or width == 0:
                return None, "no image size in the frame header"
            return JpegInfo(height, width, components, marker == 0xC2), ""
        if marker == 0xDA:  # start of scan before any frame header
            return None, "no frame header"
        position += 2 + length
    return None, "no frame header"


def _pixel_cap() -> int:
    """Above this many pixels a JPEG takes the CPU path, which decodes big JPEGs at a reduced scale
    and refuses images over the poster limit (recsys.data.posters.open_image) with its message."""
    from recsys.data import posters

    return int(getattr(posters, "DRAFT_ABOVE_PIXELS", 16_000_000))


# ---- tensor version of the backbone's eval transform ----------------------------------------------
class TensorTransform:
    """The backbone's timm eval transform (Resize, CenterCrop, ToTensor, Normalize) on uint8 CHW
    tensors, on whatever device they are. Images of one size are resized together."""

    def __init__(self, transform):
        from torchvision import transforms as T

        steps = list(getattr(transform, "transforms", []))
        self.spatial, self.mean, self.std = [], None, None
        for step in steps:
            if isinstance(step, T.Resize):
                if step.max_size is not None:
                    raise InvalidParameter("GPU preprocessing: Resize with max_size is not supported")
                self.spatial.append(("resize", step.size, step.interpolation))
            elif isinstance(step, T.CenterCrop):
                self.spatial.append(("crop", step.size, None))
            elif type(step).__name__ in ("ToTensor", "MaybeToTensor"):
                continue
            elif isinstance(step, T.Normalize):
                self.mean = torch.as_tensor(step.mean, dtype=torch.float32).view(1, -1, 1, 1)
                self.std = torch.as_tensor(step.std, dtype=torch.float32).view(1, -1, 1, 1)
            else:
                raise InvalidParameter(
                    f"the backbone's preprocessing has a {type(step).__name__} step, which the GPU path "
                    "does not implement; use preprocessing 'cpu-pil'"
                )
        if self.mean is None:
            raise InvalidParameter("GPU preprocessing needs a Normalize step in the backbone's transform")

    def _spatial(self, batch: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms import functional as F

        for kind, size, interpolation in self.spatial:
            if kind == "resize":
                batch = F.resize(batch, size, interpolation=interpolation, antialias=True)
            else:
                batch = F.center_crop(batch, size)
        return batch

    def __call__(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """float32 (N, 3, H, W) normalised, from uint8 (3, h_i, w_i) images (one device)."""
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(tuple(image.shape[-2:]), []).append(index)
        out: list[torch.Tensor | None] = [None] * len(images)
        for indices in groups.values():
            resized = self._spatial(torch.stack([images[i] for i in indices]))
            for i, row in zip(indices, resized):
                out[i] = row
        batch = torch.stack(out).to(torch.float32).div_(255)
        mean = self.mean.to(batch.device)
        std = self.std.to(batch.device)
        return batch.sub_(mean).div_(std)


# ---- the pipeline ---------------------------------------------------------------------------------
@dataclass
class GpuBatch:
    positions: list[int]
    batch: torch.Tensor | None  # float32 NCHW on the device, rows in `positions` order
    failed: list[tuple[int, str]]
    fallback: int = 0  # images of this batch that took the CPU path
    ready: object = None  # CUDA event recorded after the batch was made


def _read(path, transform):
    """(bytes tensor, None, "") for an nvJPEG-able file; (None, CPU-preprocessed tensor, "") for one
    it cannot take; (None, None, reason) for one nothing can read (the CPU path's reasons)."""
    from recsys.features.images import load_item

    data = None
    if path is not None:
        try:
            data = Path(path).read_bytes()
        except OSError:
            data = None
    if data is not None:
        info, _ = jpeg_header(data)
        if info is not None and info.height * info.width <= _pixel_cap():
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), None, ""
    tensor, reason = load_item(path, transform)
    return None, tensor, reason


def _decode(encoded: list[torch.Tensor], device: str) -> list[torch.Tensor | None]:
    """uint8 (3, H, W) images on `device`, None where the decoder refused one."""
    import warnings

    from torchvision.io import ImageReadMode, decode_jpeg

    if not encoded:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29 marks its image decoders deprecated (TorchCodec)
        try:
            return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            if len(encoded) == 1:
                return [None]
        out = []
        for one in encoded:  # find the image that broke the batch
            try:
                out.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                out.append(None)
        return out


def gpu_poster_batches(
    paths: Sequence,
    transform,
    batch_size: int,
    device: str,
    workers: int,
    queue_depth: int = 2,
) -> Iterator[GpuBatch]:
    """GpuBatch after GpuBatch (input order), made by a producer thread; see the module docstring.

    `transform` is the backbone's timm eval transform (its CPU form serves the fallback path, its
    tensor form the decoded JPEGs). On CUDA the consumer must wait for ``batch.ready`` on its
    stream (``wait_ready``) before using the batch.
    """
    tensor_transform = TensorTransform(transform)
    cuda = device.split(":")[0] == "cuda"
    handoff: queue.Queue = queue.Queue(maxsize=max(queue_depth, 1))
    stop = StopFlag()

    def put(item) -> bool:
        while not stop:
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        stream = torch.cuda.Stream(device=device) if cuda else None
        try:
            reads = ordered_map(
                lambda position: (position, paths[position], *_read(paths[position], transform)),
                range(len(paths)),
                workers,
                lookahead=max(2 * batch_size, 4 * max(workers, 1)),
            )
            with torch.cuda.stream(stream) if cuda else nullcontext():
                pending: list = []
                for read in reads:
                    if stop:
                        return
                    pending.append(read)
                    if len(pending) == batch_size:
                        if not put(_make_batch(pending, tensor_transform, transform, device, cuda)):
                            return
                        pending = []
                if pending and not put(_make_batch(pending, tensor_transform, transform, device, cuda)):
                    return
            put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(exc)

    thread = threading.Thread(target=produce, name="recsys-nvjpeg", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _make_batch(reads, tensor_transform: TensorTransform, transform, device: str, cuda: bool) -> GpuBatch:
    """One GpuBatch from reads (position, path, bytes or None, CPU tensor or None, reason)."""
    from recsys.features.images import load_item

    encoded = [(position, data) for position, _, data, _, _ in reads if data is not None]
    decoded = dict(zip((p for p, _ in encoded), _decode([data for _, data in encoded], device)))
    images: dict[int, torch.Tensor] = {}
    cpu_ready: dict[int, torch.Tensor] = {}
    failed: list[tuple[int, str]] = []
    for position, path, data, tensor, reason in reads:
        if data is not None:
            if decoded.get(position) is not None:
                images[position] = decoded[position]
                continue
            tensor, reason = load_item(path, transform)  # nvJPEG refused it: the CPU path decides
        if tensor is not None:
            cpu_ready[position] = tensor
        else:
            failed.append((position, reason))
    positions = [position for position, *_ in reads if position in images or position in cpu_ready]
    rows: dict[int, torch.Tensor] = {}
    if images:
        order = [p for p in positions if p in images]
        rows.update(zip(order, tensor_transform([images[p] for p in order])))
    for position, tensor in cpu_ready.items():
        rows[position] = tensor.to(device, non_blocking=True)
    batch = torch.stack([rows[p] for p in positions]) if positions else None
    event = None
    if cuda:
        event = torch.cuda.Event()
        event.record()
    return GpuBatch(positions, batch, failed, len(cpu_ready), event)


def wait_ready(item: GpuBatch) -> None:
    """Make the current CUDA stream wait for the producer's work on this batch (no host sync)."""
    if item.ready is not None and item.batch is not None:
        torch.cuda.current_stream().wait_event(item.ready)
        item.batch.record_stream(torch.cuda.current_stream())
