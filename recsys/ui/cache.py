"""Experiment results kept on disk, so a restarted server (or a second visitor) redraws them at once.

A thin layer over :class:`recsys.cache.ResultsCache`: an entry is keyed by the experiment
function's qualified name, a hash of its module's source, its ``cache_version``, the page's
parameters *and* a hash of the page script that calls it (pages wrap experiments in a little code
of their own: which model, how many factors, which split). Editing the experiment or the page
therefore never serves stale numbers after a restart; the old entry is simply not found again.

::

    frame = ui.disk_cached(experiments.rmse_vs_k, {"dataset": token, "ks": ks}, compute)
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from recsys.cache import ResultsCache

log = logging.getLogger(__name__)

T = TypeVar("T")


@cache
def _file_hash(path: str, mtime_ns: int) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    except OSError:
        return "unreadable"


def page_identity(page_file: str | None) -> dict:
    """{"page": file name, "page_code": hash of its source} for the page script that computes."""
    if not page_file:
        return {}
    path = Path(page_file)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return {"page": path.name, "page_code": _file_hash(str(path), mtime)}


def _caller_file(depth: int = 2) -> str | None:
    """The source file of the function `depth` frames up (the page calling disk_cached)."""
    try:
        return sys._getframe(depth).f_code.co_filename
    except ValueError:
        return None


def _with_page(params: Mapping[str, Any], page: str | None) -> dict:
    return {**dict(params), **page_identity(page)}


def disk_cache_path(
    fn: Callable, params: Mapping[str, Any], *, version: int | str | None = None, page: str | None = None
) -> Path:
    """Where :func:`disk_cached` keeps `fn`'s result for `params` (exists once computed).

    `page` defaults to the calling script, as in :func:`disk_cached`: call both from the same page.
    """
    return ResultsCache().path(fn, _with_page(params, page or _caller_file()), version)


def disk_cached(
    fn: Callable[..., T],
    params: Mapping[str, Any],
    compute: Callable[[], T] | None = None,
    *,
    version: int | str | None = None,
    page: str | None = None,
) -> T:
    """`compute()` (default ``fn(**params)``), kept on disk under the cache folder's ``results/``.

    `fn` is the experiment the result comes from (its code identifies the entry); `params` must
    name every input that changes the result (dataset token, representation, split, settings).
    `page` is the script whose code takes part in the key (default: the caller's file).
    A damaged entry is recomputed and an unwritable folder means "not cached", never a failure.
    """
    full = _with_page(params, page or _caller_file())
    results = ResultsCache()
    run = compute if compute is not None else (lambda: fn(**params))
    computed = False

    def counted() -> T:
        nonlocal computed
        computed = True
        return run()

    value = results.get_or_compute(fn, full, counted, version=version)
    name = results.path(fn, full, version).name
    log.info("results cache %s: %s", "miss (computed)" if computed else "hit", name)
    return value
