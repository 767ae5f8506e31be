"""The project's logging setup, in one place.

Modules log through ``log = logging.getLogger(__name__)`` at their decision points (dataset read
from the cache or parsed, title matches cached or computed, download resumed, results-cache hit or
miss, weights source, calibration). Nothing is printed unless an entry point configures logging:

- the CLI (``recsys ...``) calls :func:`setup_logging` with WARNING, INFO for ``-v``, DEBUG for
  ``-vv``: messages go to stderr, so stdout keeps only tables and the final ``key=value`` line;
- the dashboard (app.py) calls it with INFO: messages go to the server's log (its stderr).

``$RECSYS_LOG_LEVEL`` (DEBUG, INFO, WARNING, ...) overrides the dashboard's level.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

LOG_LEVEL_ENV = "RECSYS_LOG_LEVEL"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_FLAG = "_recsys_handler"


def level_from_verbosity(verbose: int) -> int:
    """0 -> WARNING, 1 -> INFO, 2 or more -> DEBUG."""
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def level_from_env(default: int) -> int:
    name = os.environ.get(LOG_LEVEL_ENV, "").strip().upper()
    level = logging.getLevelName(name) if name else default
    return level if isinstance(level, int) else default


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted: test runners and Streamlit
    swap it, and a handler holding an old, closed stream would fail."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(level: int = logging.WARNING, stream: TextIO | None = None) -> logging.Logger:
    """Send the ``recsys`` loggers' records at `level` and above to `stream` (default: stderr).

    Idempotent: a second call replaces the handler it added before instead of adding another.
    Records still propagate to the root logger, so pytest's ``caplog`` and an embedding
    application's own handlers see them too.
    """
    logger = logging.getLogger("recsys")
    logger.setLevel(level)
    for old in [h for h in logger.handlers if getattr(h, _HANDLER_FLAG, False)]:
        logger.removeHandler(old)
    handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    setattr(handler, _HANDLER_FLAG, True)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    handler.setLevel(level)
    logger.addHandler(handler)
    return logger
