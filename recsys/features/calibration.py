"""Pick batch size and memory format per device and backbone by timing them, and remember the choice.

Bigger is not automatically faster: on a 2-core CPU tf_efficientnet_lite0 ran 59 images/s at
batch 1 but 27 at batch 32 (51 with channels_last), while a GPU wants large batches with AMP.
So a short measurement decides, and its result is stored in ``cache_dir()/calibration.json``.
"""

from __future__ import annotations

import json
import logging
import os
import time

import torch

from recsys.cache import atomic_write_text
from recsys.config import cache_dir
from recsys.errors import RecsysError, StorageError
from recsys.features.images import FeatureRunner, RunSettings

log = logging.getLogger(__name__)

CPU_BATCH_SIZES = (1, 4, 16, 32)
SINGLE_THREAD_MARGIN = 1.25
CALIBRATION_VERSION = 2  # bump when the searched settings change: old records are then ignored
GPU_BATCH_SIZES = (16, 32, 64, 128, 256)


class CalibrationFailed(RecsysError, RuntimeError):
    """No batch size could run on the device (out of memory at every size tried)."""


def calibration_path():
    return cache_dir() / "calibration.json"


def calibration_key(backbone, device: str, amp: bool | None = None) -> str:
    threads = torch.get_num_threads() if device == "cpu" else 0
    parts = [
        f"v{CALIBRATION_VERSION}",
        device,
        backbone.name,
        backbone.layer or "pre-logits",
        backbone.pooling,
        "x".join(map(str, backbone.input_size)),
        f"torch{torch.__version__}",
        f"threads{threads}",
    ]
    if amp is not None and amp != (device == "cuda"):  # the device's default precision keeps its old key
        parts.append("amp" if amp else "fp32")
    return "|".join(parts)


def _read_all() -> dict:
    path = calibration_path()
    try:
        table = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("calibration: %s is unreadable (%s); measuring again", path, exc)
        return {}
    return table if isinstance(table, dict) else {}


def _write_all(table: dict) -> None:
    """Best effort: a folder that cannot be written only means the next run measures again."""
    try:
        atomic_write_text(calibration_path(), json.dumps(table, indent=1))
    except StorageError as exc:
        log.warning("calibration: not remembered (%s)", exc)


def measure(backbone, settings: RunSettings, min_seconds: float = 0.25, windows: int = 2) -> float:
    """Images per second of the model alone on random input with these settings (after one warm-up):
    the best of `windows` timed windows of `min_seconds` each, so that one window slowed by
    something else on the machine does not decide (single windows on this 2-core CPU were up to
    2x off, and calibration then kept batch 1: 51 instead of 97 images/s end to end)."""
    batch = torch.randn((settings.batch_size, *backbone.input_size))
    best = 0.0
    with FeatureRunner(backbone, settings) as runner:
        runner(batch)  # warm-up: allocations, oneDNN / cuDNN kernel selection
        _synchronise(settings.device)
        for _ in range(max(1, windows)):
            done, start = 0, time.perf_counter()
            while True:
                runner(batch)
                done += 1
                if time.perf_counter() - start >= min_seconds:
                    break
            _synchronise(settings.device)
            best = max(best, done * settings.batch_size / (time.perf_counter() - start))
    return best


def _synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def calibrate(
    backbone,
    device: str,
    force: bool = False,
    progress=None,
    budget_s: float | None = None,
    amp: bool | None = None,
) -> tuple[RunSettings, dict]:
    """Best RunSettings for this backbone on this device (remembered), and the measurements.

    Both memory formats are timed at growing batch sizes; growth stops when the larger batch is
    not faster (5 % margin) or the time budget is spent, so a slow model on a CPU does not spend
    long on large batches. On a CPU one intra-op thread is tried beside torch's default: with
    decoding workers on the other cores (or other programs busy) a single thread often wins.
    amp: float16 autocast (None: on CUDA only).
    """
    amp = (device == "cuda") if amp is None else bool(amp)
    key = calibration_key(backbone, device, amp)
    table = _read_all()
    if not force and key in table and not _measured_under_load_now_idle(table[key]):
        try:
            settings = _settings(device, table[key]["best"])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("calibration: remembered record for %s is unreadable (%s); measuring again", key, exc)
        else:
            log.info("calibration: remembered %s for %s", settings.label(), key)
            return settings, table[key]
    sizes = GPU_BATCH_SIZES if device == "cuda" else CPU_BATCH_SIZES
    thread_options = [0] if device != "cpu" or torch.get_num_threads() == 1 else [0, 1]
    budget_s = budget_s if budget_s is not None else (20.0 if device == "cuda" else 12.0)
    results = []
    started = time.perf_counter()
    # Untimed warm-up of the process (thread pools, oneDNN's JIT): the first measurements of a fresh
    # process otherwise read up to 2x low and decide the search.
    measure(backbone, RunSettings(device, sizes[0], True, amp, 0), windows=1)
    for threads in thread_options:
        best_ips, flat = 0.0, 0
        for batch_size in sizes:
            best_at_size = 0.0
            for channels_last in (False, True):
                settings = RunSettings(device, batch_size, channels_last, amp, threads)
                try:
                    ips = measure(backbone, settings)
                except torch.OutOfMemoryError:
                    if device == "cuda":
                        torch.cuda.empty_cache()
                    continue
                results.append(
                    {
                        "batch_size": batch_size,
                        "channels_last": channels_last,
                        "amp": amp,
                        "threads": threads,
                        "images_per_s": round(ips, 2),
                    }
                )
                best_at_size = max(best_at_size, ips)
                if progress:
                    progress(
                        len(results),
                        len(sizes) * 2 * len(thread_options),
                        f"calibrating {settings.label()}: {ips:.1f} img/s",
                    )
            # Growth stops after two sizes in a row without a 5 % gain: one short measurement can
            # be 10 % off on a busy CPU, and stopping at the first flat step then kept batch 1
            # (bench/extract_throughput: 51 instead of 97 images/s end to end).
            flat = 0 if best_at_size > 1.05 * best_ips else flat + 1
            best_ips = max(best_ips, best_at_size)
            if flat >= 2 or time.perf_counter() - started > budget_s:
                break
    if not results:
        raise CalibrationFailed(
            f"calibration of {backbone.name} on {device} failed at every batch size (out of memory)"
        )
    best = max(results, key=lambda r: r["images_per_s"])
    single = [r for r in results if r["threads"] == 1]
    if single and best["threads"] != 1:
        # Several intra-op threads must clearly win to be chosen: on a 2-core machine they share
        # the cores with the decoding worker, and when anything else runs their spin-waiting
        # collapses (measured: lite0 37 vs 33 img/s idle, but 4.5 vs 10.7 img/s under load).
        best_single = max(single, key=lambda r: r["images_per_s"])
        if best_single["images_per_s"] * SINGLE_THREAD_MARGIN >= best["images_per_s"]:
            best = best_single
    record = {
        "best": best,
        "measurements": results,
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_per_core": _load_per_core(),
    }
    table = _read_all()
    table[key] = record
    _write_all(table)
    # Leave the model in its default layout; the runner sets the chosen one.
    backbone.model.to(memory_format=torch.contiguous_format)
    settings = _settings(device, best)
    log.info(
        "calibration: measured %s for %s (%.1f images/s, %d settings tried)",
        settings.label(),
        key,
        best["images_per_s"],
        len(results),
    )
    return settings, record


def _load_per_core() -> float | None:
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 2)
    except OSError:  # no load average on this platform
        return None


def _measured_under_load_now_idle(record: dict) -> bool:
    """A CPU calibration taken while other programs saturated the cores favours one thread and
    small batches; once the machine is idle again it is measured anew rather than trusted."""
    then, now = record.get("load_per_core"), _load_per_core()
    return then is not None and now is not None and then > 1.0 and now < 0.5


def _settings(device: str, best: dict) -> RunSettings:
    return RunSettings(
        device, int(best["batch_size"]), bool(best["channels_last"]), bool(best["amp"]), int(best.get("threads", 0))
    )
