"""Extraction engines: what computes the pending chunks of a feature-store entry.

``recsys.features.extract.extract`` does everything engines share (the key, the cache lookup,
refusing a dataset without the media, the manifest, the result); an engine only turns the
entry's pending chunks into written chunks and reports how it went::

    class MyEngine:
        name = "mine"
        def run(self, job: ExtractionJob) -> EngineReport: ...

    register_engine("mine", "mypackage.engine:MyEngine")     # or ENGINES entry below

Engines are imported lazily by name (``RunOptions(engine="ray")``), so an optional dependency
(Ray) is only needed when its engine is asked for; its module should raise
``OptionalDependencyMissing`` with the install command when the dependency is absent.

Contract (every engine): write each chunk with ``job.entry.write_chunk`` as soon as all its items
are resolved (features or a failure reason, so interrupted runs resume); call
``job.entry.start(...)`` with ``{"dim", "backbone"}`` before the first chunk; report progress as
``job.progress(done_items, total_items, "<rate> images/s on <device>")``; honour the config's
precision and preprocessing (refuse with InvalidParameter what it cannot do, never compute
something else under the key).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from recsys.errors import InvalidParameter
from recsys.features.config import ExtractionConfig, RunOptions
from recsys.features.store import FeatureEntry
from recsys.progress import Progress

#: engine name -> "module:attribute" of its class (instantiated without arguments)
ENGINES: dict[str, str] = {
    "local": "recsys.features.engines.local:LocalEngine",
    "ray": "recsys.features.engines.ray:RayEngine",
}


@dataclass
class ExtractionJob:
    """What an engine is asked to compute: the pending chunks of `entry` for `config`.

    paths: item_id -> media path (None where the item has no file), for the entry's items.
    """

    config: ExtractionConfig
    run: RunOptions
    entry: FeatureEntry
    paths: pd.Series
    progress: Progress

    def entry_progress(self) -> tuple[int, int]:
        """(items already in written chunks, items of the entry): where the progress bar starts."""
        total = len(self.entry.item_ids)
        return total - sum(len(self.entry.chunk_items(i)) for i in self.entry.pending_chunks()), total


@dataclass
class EngineReport:
    """How a run went. items: items computed (failures excluded); frames: images (posters) or
    frames (trailers) through the model; seconds: time in the compute loop."""

    device: str
    settings: str
    items: int = 0
    frames: int = 0
    seconds: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Images (posters) or frames (trailers) per second of computation; 0 when nothing ran."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Engine(Protocol):
    name: str

    def run(self, job: ExtractionJob) -> EngineReport: ...


def register_engine(name: str, target: str) -> None:
    """Make `RunOptions(engine=name)` use the class at "module:attribute"."""
    ENGINES[name] = target


def available_engines() -> list[str]:
    return list(ENGINES)


def get_engine(name: str) -> Engine:
    """An instance of the engine registered as `name` (imported now)."""
    target = ENGINES.get(name)
    if target is None:
        raise InvalidParameter(f"unknown extraction engine {name!r}; available: {', '.join(ENGINES)}")
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)()
