"""Errors of the data layer: each one says what is wrong and where, so the UI and CLI can show it as is."""

from __future__ import annotations

import os


class DataFormatError(ValueError):
    """A data file does not have the format its loader expects.

    The message always names the file and, where one line is to blame, its 1-based line number,
    e.g. ``u.data:17: rating 7 outside 1..5``.
    """

    def __init__(self, path: str | os.PathLike, line: int | None, problem: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class DatasetNotFound(FileNotFoundError):
    """A dataset (or one of its files) is not in the data directory; the message says how to get it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # FileNotFoundError would otherwise print "[Errno None] ..."
        return self.message


class MediaError(ValueError):
    """An image or video file is missing, corrupt, truncated or not decodable."""
