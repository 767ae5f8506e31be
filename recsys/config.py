"""Paths, environment variables and compute device: the only place that reads the environment."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

DATA_DIR_ENV = "RECSYS_DATA_DIR"
CACHE_DIR_ENV = "RECSYS_CACHE_DIR"
DEVICE_ENV = "RECSYS_DEVICE"  # force "cpu"/"cuda"/"mps", e.g. to compare devices
DATA_ROOTS_ENV = "RECSYS_DATA_ROOTS"  # folders the dashboard's data-folder field may point into
MAX_IMAGE_PIXELS_ENV = "RECSYS_MAX_IMAGE_PIXELS"  # posters above this are refused (JPEGs: decoded smaller)
MAX_UNPACKED_ENV = "RECSYS_MAX_UNPACKED_MB"  # cap on what one downloaded archive may unpack to

DEFAULT_MAX_IMAGE_PIXELS = 50_000_000

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


def _positive_int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        value = 0
    if value <= 0:
        from recsys.errors import InvalidParameter

        raise InvalidParameter(f"${name}={os.environ[name]!r} is not a positive number")
    return value


def max_image_pixels() -> int:
    """Largest poster (width x height) decoded in full: $RECSYS_MAX_IMAGE_PIXELS, else 50 MP."""
    return _positive_int_env(MAX_IMAGE_PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS)


def max_unpacked_bytes(default: int) -> int:
    """Cap on the bytes one archive may unpack to: $RECSYS_MAX_UNPACKED_MB (MiB), else `default`."""
    mebibytes = _positive_int_env(MAX_UNPACKED_ENV, 0)
    return mebibytes << 20 if mebibytes else default


# ---- data folders the dashboard may read --------------------------------------------------------
def data_roots() -> list[Path]:
    """Folders the dashboard's data-folder field may point into (symlinks and ``..`` resolved).

    $RECSYS_DATA_ROOTS (folders separated by ``os.pathsep``) when set, else the default data
    directory and the cache directory; the configured data directory (:func:`data_dir`,
    $RECSYS_DATA_DIR) always. A visitor of a classroom server can then choose among the data the
    teacher provided, not browse the server's file system.
    """
    env = os.environ.get(DATA_ROOTS_ENV, "")
    if env.strip():
        candidates = [part for part in env.split(os.pathsep) if part.strip()]
    else:
        cache_env = os.environ.get(CACHE_DIR_ENV)
        candidates = [DEFAULT_DATA_DIR, cache_env or Path.home() / ".cache" / "recsys-dashboard"]
    candidates.append(data_dir())
    roots = []
    for candidate in candidates:
        if candidate:
            root = Path(candidate).expanduser().resolve()
            if root not in roots:
                roots.append(root)
    return roots


def data_dir_problem(path: str | os.PathLike) -> str | None:
    """None when `path` (after resolving symlinks and ``..``) lies in one of :func:`data_roots`,
    else a one-line reason for refusing it."""
    text = str(path).strip()
    if not text:
        return "no folder given"
    try:
        resolved = Path(text).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        return f"{text!r} cannot be resolved ({exc})"
    roots = data_roots()
    if any(resolved == root or resolved.is_relative_to(root) for root in roots):
        return None
    allowed = ", ".join(str(root) for root in roots)
    return f"{text} is outside the data folders this server allows ({allowed}); set ${DATA_ROOTS_ENV} to add one"


def allowed_data_dir(path: str | os.PathLike | None) -> str:
    """`path` when it is inside :func:`data_roots`, else the default data directory."""
    if path and data_dir_problem(path) is None:
        return str(path)
    return str(data_dir())


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
