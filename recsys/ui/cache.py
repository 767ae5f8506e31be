"""Experiment results kept on disk, so a restarted server (or a second visitor) redraws them at once."""

from __future__ import annotations

import os
from pathlib import Path

from recsys import config


def disk_cache_path(kind: str, key: str) -> Path:
    """Where `disk_cached(kind, key, ...)` keeps its result (exists once it has been computed)."""
    import hashlib

    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return config.cache_dir() / "results" / f"{kind}-{digest}.pkl"


def disk_cached(kind: str, key: str, compute):
    """Result of `compute()` pickled under cache_dir()/results, keyed by `kind` + a hash of `key`.

    Experiments on real data take seconds to minutes; keeping their tidy frames on disk means a
    restarted server (or a second visitor) redraws them without recomputing.
    """
    import pickle

    path = disk_cache_path(kind, key)
    if path.exists():
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            pass  # unreadable or stale: recompute
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(value, handle)
    os.replace(tmp, path)
    return value
