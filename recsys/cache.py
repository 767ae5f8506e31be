"""On-disk artefacts written safely, and one results cache for experiments.

Three pieces every module that writes to disk uses:

- :func:`atomic_write` (and :func:`atomic_write_bytes`, :func:`atomic_write_text`,
  :func:`atomic_save`): write to a temporary file with a name unique to this process *and*
  thread, flush and fsync it, then ``os.replace`` it into place. A crash, a full disk or two
  writers at once never leave a half-written file under the final name.
- :func:`file_lock`: an advisory lock (``fcntl.flock``) on a sibling ``.lock`` file, so two
  processes computing the same artefact can take turns instead of both computing it.
- :class:`ResultsCache`: experiment results keyed by the function's qualified name, a hash of
  its module's source, an explicit version and the caller's parameters. Editing an experiment
  therefore never serves stale numbers after a restart. An unreadable entry is recomputed (with a
  logged note), and a folder that cannot be written degrades to "not cached".

Pickle is used for results because they are pandas frames and small dicts produced by this
package itself (never loaded from elsewhere); each file starts with a format header.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import pickle
import secrets
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from recsys.errors import StorageError, describe_os_error

log = logging.getLogger(__name__)

T = TypeVar("T")

#: bump to invalidate every results-cache entry at once (e.g. a change in pickling)
RESULTS_FORMAT_VERSION = 1
_HEADER = b"recsys-results\x00"


# ---- atomic writes ------------------------------------------------------------------------------
def temporary_path(path: str | os.PathLike) -> Path:
    """A sibling temporary name unique to this process, thread and call (hidden, ends in .tmp)."""
    path = Path(path)
    token = f"{os.getpid()}-{threading.get_ident()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.name}.{token}.tmp")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary sibling of `path` for writing; on success move it over `path` atomically.

    On any exception the temporary file is removed and the previous `path` (if any) is left as it
    was. OS errors (read-only folder, full disk) become :class:`StorageError` naming the file.
    """
    if "w" not in mode and "x" not in mode:
        raise ValueError(f"atomic_write needs a write mode, got {mode!r}")
    path = Path(path)
    tmp = temporary_path(path)
    with _replacing(path, tmp):
        with open(tmp, mode.replace("x", "w"), encoding=encoding if "b" not in mode else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)


def atomic_save(path: str | os.PathLike, writer: Callable[[Path], Any]) -> None:
    """For libraries that write to a path themselves (``np.savez``, ``DataFrame.to_parquet``):
    `writer(tmp_path)` writes a temporary file, which then replaces `path` atomically.

    The temporary name keeps `path`'s suffix, so writers that append one (numpy) do not rename it.
    """
    path = Path(path)
    tmp = temporary_path(path).with_suffix(".tmp" + path.suffix)
    with _replacing(path, tmp):
        writer(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())


@contextlib.contextmanager
def _replacing(path: Path, tmp: Path) -> Iterator[None]:
    """The part both atomic writers share: the block writes and fsyncs `tmp`; then it replaces
    `path`. On failure `tmp` is removed and an OS error becomes a :class:`StorageError` naming
    `path`; on success the folder entry is fsynced."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        if isinstance(exc, StorageError):
            raise
        if exc.filename in (None, str(tmp)):
            exc.filename = str(path)
        raise StorageError(describe_os_error(exc)) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


# ---- locks --------------------------------------------------------------------------------------
@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an advisory lock on ``<path>.lock`` for the duration of the block.

    Yields True when the lock is held. With ``blocking=False`` it yields False at once when another
    process holds it. Where locking is impossible (read-only folder, no ``fcntl``) it yields True
    without a lock: callers must stay correct without it (atomic writes), the lock only saves work.
    """
    lock_path = Path(str(path) + ".lock")
    try:
        import fcntl

        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+b")  # noqa: SIM115 - closed in finally
    except (ImportError, OSError) as exc:
        log.debug("no lock for %s (%s): going on without one", path, exc)
        yield True
        return
    try:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle.fileno(), flags)
        except BlockingIOError:
            yield False
            return
        except OSError as exc:  # e.g. a file system without locks
            log.debug("cannot lock %s (%s): going on without a lock", lock_path, exc)
            yield True
            return
        try:
            yield True
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


# ---- results cache ------------------------------------------------------------------------------
def _module_source_hash(fn: Callable) -> str:
    """Hash of the source file of `fn`'s module (changes whenever the experiment's code does)."""
    module = sys.modules.get(getattr(fn, "__module__", ""), None)
    try:
        source_file = inspect.getsourcefile(module or fn)
        data = Path(source_file).read_bytes() if source_file else b""
    except (TypeError, OSError):
        data = b""
    if not data:
        try:
            data = inspect.getsource(fn).encode()
        except (TypeError, OSError):
            data = getattr(fn, "__qualname__", repr(fn)).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def function_identity(fn: Callable, version: int | str | None = None) -> dict:
    """What identifies a function's results besides its inputs: qualified name, code hash, version."""
    target = inspect.unwrap(fn)
    return {
        "function": f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}",
        "code": _module_source_hash(target),
        "version": version if version is not None else getattr(target, "cache_version", 1),
        "format": RESULTS_FORMAT_VERSION,
    }


def results_key(fn: Callable, params: Mapping[str, Any], version: int | str | None = None) -> str:
    """A stable key for `fn` called with `params` (JSON-able values; others are repr()-ed)."""
    blob = json.dumps({**function_identity(fn, version), "params": dict(params)}, sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class ResultsCache:
    """Experiment results on disk, keyed by function identity + parameters.

    ::

        cache = ResultsCache()                      # <cache dir>/results
        frame = cache.get_or_compute(experiments.rmse_vs_k, {"dataset": token, "reps": reps},
                                     lambda: experiments.rmse_vs_k(...))

    `params` must describe every input that changes the result (dataset token, split, settings);
    the function's qualified name, module source hash and `version` are added automatically.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            from recsys.config import cache_dir

            root = Path(cache_dir()) / "results"
        self.root = Path(root)

    def path(self, fn: Callable, params: Mapping[str, Any], version: int | str | None = None) -> Path:
        target = inspect.unwrap(fn)
        name = getattr(target, "__qualname__", "result").replace("<", "").replace(">", "").replace(".", "-")
        return self.root / f"{name}-{results_key(fn, params, version)}.pkl"

    def load(self, path: Path) -> tuple[bool, Any]:
        """(True, value) for a readable entry; (False, None) when missing or unreadable (logged)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False, None
        except OSError as exc:
            log.warning("results cache: cannot read %s (%s); recomputing", path, exc)
            return False, None
        if not data.startswith(_HEADER):
            log.warning("results cache: %s has no valid header (truncated or foreign); recomputing", path)
            return False, None
        try:
            return True, pickle.loads(data[len(_HEADER) :])
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means "recompute"
            log.warning("results cache: %s is unreadable (%s); recomputing", path, exc)
            return False, None

    def store(self, path: Path, value: Any) -> bool:
        """Write an entry; False (logged) when the folder cannot be written: results stay valid."""
        try:
            atomic_write_bytes(path, _HEADER + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            return True
        except (StorageError, OSError) as exc:
            log.warning("results cache: not cached (%s)", exc)
            return False

    def get_or_compute(
        self,
        fn: Callable,
        params: Mapping[str, Any],
        compute: Callable[[], T] | None = None,
        *,
        version: int | str | None = None,
    ) -> T:
        """The cached result of `compute()` (default: ``fn(**params)``), computing it at most once
        across processes that share the cache folder (a file lock per entry)."""
        path = self.path(fn, params, version)
        hit, value = self.load(path)
        if hit:
            log.debug("results cache hit: %s", path.name)
            return value
        run = compute if compute is not None else (lambda: fn(**params))
        with file_lock(path):
            hit, value = self.load(path)  # another process may have finished while we waited
            if hit:
                log.debug("results cache hit after waiting: %s", path.name)
                return value
            log.debug("results cache miss: %s", path.name)
            value = run()
            self.store(path, value)
        return value


def cached_result(
    fn: Callable[..., T],
    params: Mapping[str, Any],
    compute: Callable[[], T] | None = None,
    *,
    version: int | str | None = None,
    root: str | os.PathLike | None = None,
) -> T:
    """Shorthand for ``ResultsCache(root).get_or_compute(fn, params, compute, version=version)``."""
    return ResultsCache(root).get_or_compute(fn, params, compute, version=version)
