"""The data layer: MovieLens loaders, the dataset registry, posters, trailers and the offline demo.

Entry points: :func:`load_dataset` (by registry name), :func:`available_datasets` (for the
sidebar) and :func:`default_dataset_name`. Every loader returns one :class:`Dataset`.
"""

from recsys.data.dataset import Dataset
from recsys.data.errors import DataFormatError, DatasetNotFound, MediaError
from recsys.data.registry import (
    DATASETS,
    DatasetInfo,
    attach_posters,
    attach_trailers,
    available_datasets,
    dataset_info,
    default_dataset_name,
    find_dataset_folder,
    load_dataset,
)

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "DataFormatError",
    "DatasetNotFound",
    "MediaError",
    "attach_posters",
    "attach_trailers",
    "available_datasets",
    "dataset_info",
    "default_dataset_name",
    "find_dataset_folder",
    "load_dataset",
]
