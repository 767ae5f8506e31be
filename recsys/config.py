"""Paths, environment variables and compute device: the only place that reads the environment."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

DATA_DIR_ENV = "RECSYS_DATA_DIR"
CACHE_DIR_ENV = "RECSYS_CACHE_DIR"
DEVICE_ENV = "RECSYS_DEVICE"  # force "cpu"/"cuda"/"mps", e.g. to compare devices

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = Path.home() / ".cache" / "recsys-dashboard" / "data"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: explicit argument, else $RECSYS_DATA_DIR, else a per-user default."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return DEFAULT_DATA_DIR


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where generated artefacts live (feature store, demo dataset, splits, calibration)."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get(CACHE_DIR_ENV):
        path = Path(os.environ[CACHE_DIR_ENV])
    else:
        path = Path.home() / ".cache" / "recsys-dashboard"
    path = path.expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from recsys.errors import StorageError, describe_os_error

        if exc.filename is None:
            exc.filename = str(path)
        raise StorageError(
            describe_os_error(exc, "create the cache folder"), hint=f"set ${CACHE_DIR_ENV} to a writable folder"
        ) from exc
    return path


@cache
def torch_device_name() -> str:
    """CUDA, then Apple MPS, else CPU; $RECSYS_DEVICE overrides."""
    forced = os.environ.get(DEVICE_ENV)
    if forced:
        return forced
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def torch_device():
    import torch

    return torch.device(torch_device_name())
