"""Errors of the data layer (defined in :mod:`recsys.errors`, re-exported here for the data modules)."""

from recsys.errors import DataFormatError, DatasetNotFound, MediaError

__all__ = ["DataFormatError", "DatasetNotFound", "MediaError"]
