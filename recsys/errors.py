"""The project's error family: what the CLI and the pages catch and show as one line.

Every *expected* failure (missing data, a malformed file, a bad parameter, no weights, an
unwritable folder) raises a :class:`RecsysError` subclass whose message names the file, the line
or the parameter and, where one exists, the command that fixes it. The CLI prints
``error: <message>`` and exits 1; pages show the message without a traceback. Anything else
(``ValueError`` from numpy, ``KeyError``, ...) is a bug and keeps its traceback.

Subclasses also inherit the built-in exception they replace (``ValueError``,
``FileNotFoundError``, ...), so code and tests written against the built-ins keep working.
"""

from __future__ import annotations

import os


class RecsysError(Exception):
    """Base class of every expected, user-facing failure of the project."""

    #: a command or action that fixes the problem, shown after the message when set
    hint: str | None = None

    def __init__(self, message: str = "", *, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def user_message(self) -> str:
        """One line for the CLI and the pages: the message, then the hint."""
        text = str(self)
        if self.hint and self.hint not in text:
            text = f"{text} (hint: {self.hint})"
        return " ".join(text.split("\n"))


class InvalidParameter(RecsysError, ValueError):
    """A parameter of a model, experiment or command is out of its domain (``k=0``, ``w=1.5``)."""


class InvalidInput(RecsysError, ValueError):
    """Input data (ratings frame, features, ids) cannot give a meaningful result."""


class NotFittedError(RecsysError, ValueError, AttributeError):
    """A model was used before ``fit`` (scikit-learn's exception of the same name, same bases)."""


class DataFormatError(RecsysError, ValueError):
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


class DatasetNotFound(RecsysError, FileNotFoundError):
    """A dataset (or one of its files) is not in the data directory; the message says how to get it."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.message = message

    def __str__(self) -> str:  # FileNotFoundError would otherwise print "[Errno None] ..."
        return self.message


class MediaError(RecsysError, ValueError):
    """An image or video file is missing, corrupt, truncated or not decodable."""


class FeaturesNotFound(RecsysError, LookupError):
    """An item representation has not been extracted (the hint names the extract command)."""


class WeightsUnavailable(RecsysError, RuntimeError):
    """Pretrained weights for a backbone cannot be found offline or downloaded."""


class DownloadError(RecsysError, RuntimeError):
    """A download failed (offline, HTTP error, dropped connection that could not be resumed)."""


class StorageError(RecsysError, OSError):
    """A file could not be written or read back (read-only folder, full disk, unreadable cache)."""


class OptionalDependencyMissing(RecsysError, ImportError):
    """An optional extra (Ray, a peer library) is not installed; the hint says how to install it."""


def describe_os_error(exc: OSError, action: str = "write") -> str:
    """A one-line reason for an OSError: which file, and what the operating system said."""
    import errno

    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EROFS: "the file system is read-only",
    }
    reason = reasons.get(exc.errno or -1, exc.strerror or str(exc))
    where = exc.filename or "a file"
    return f"cannot {action} {where}: {reason}"
