"""On-disk feature store: chunked, atomic, resumable, keyed by an ExtractionConfig.

Layout under ``cache_dir()/features``::

    <key>/manifest.json          configuration, chunk plan, completion state, runs
    <key>/item_ids.npy           the entry's items (sorted)
    <key>/chunk_00000.npz        item_ids, matrix (or per-frame rows + offsets), failures

Every file is written through :func:`recsys.cache.atomic_write` (a temporary name unique to the
process and thread, fsync, ``os.replace``), so a run killed half-way leaves only whole chunks and
the next run with the same key skips them. A chunk or manifest that cannot be read back (a disk
that filled up, a file cut short by hand) is set aside with a logged note and computed again,
never a crash. This module imports neither torch nor timm: a cache hit returns in well under a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.cache import atomic_write, atomic_write_text, file_lock
from recsys.config import cache_dir
from recsys.errors import FeaturesNotFound, InvalidInput
from recsys.features.config import LEGACY_CHUNK_SIZE, STORE_FORMAT_VERSION, ExtractionConfig

log = logging.getLogger(__name__)

__all__ = [
    "FAILURE_COLUMNS",
    "STORE_FORMAT_VERSION",
    "Chunk",
    "FeatureEntry",
    "FeatureStore",
    "list_entries",
    "media_fingerprint",
]

FAILURE_COLUMNS = ["item_id", "reason"]
LIST_COLUMNS = [
    "key",
    "dataset",
    "media",
    "backbone",
    "weights",
    "layer",
    "pooling",
    "fps",
    "precision",
    "preprocessing",
    "sampling",
    "items",
    "dim",
    "failures",
    "chunks_done",
    "chunks",
    "complete",
    "device",
    "images_per_s",
    "size_mb",
    "created",
    "path",
]


def media_fingerprint(paths: Iterable[tuple[int, str | None]]) -> str:
    """Hash of (item id, path, size, mtime) for every media file: cheap and changes when a file does.

    Content hashes would be exact but read every byte (gigabytes of trailers); size + mtime is
    what build tools such as make rely on and catches replaced or regenerated files.
    """
    digest = hashlib.sha256()
    for item_id, path in paths:
        if path is None:
            stat_part = "none"
        else:
            try:
                stat = os.stat(path)
                stat_part = f"{stat.st_size}:{stat.st_mtime_ns}"
            except OSError:
                stat_part = "missing"
        digest.update(f"{int(item_id)}|{path}|{stat_part}\n".encode())
    return digest.hexdigest()


@dataclass
class Chunk:
    """Result of one chunk of items.

    matrix: one row per item in `item_ids` (posters), or, when `offsets` is given, one row per
    frame with item i owning rows offsets[i]:offsets[i+1] (trailers).
    """

    item_ids: np.ndarray
    matrix: np.ndarray
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILURE_COLUMNS))
    offsets: np.ndarray | None = None
    extra: dict = field(default_factory=dict)  # small per-item arrays, e.g. durations


# what a damaged .npz / .json raises when read back
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class FeatureEntry:
    """One cached configuration: a manifest plus the chunks written so far."""

    def __init__(self, directory: Path, config: ExtractionConfig, chunk_size: int):
        self.directory = Path(directory)
        self.config = config
        self.item_ids = np.asarray(config.item_ids, dtype=np.int64)
        self.chunk_size = int(chunk_size)

    @property
    def key(self) -> str:
        return self.directory.name

    # ---- plan ------------------------------------------------------------------------------
    @property
    def n_chunks(self) -> int:
        return (len(self.item_ids) + self.chunk_size - 1) // self.chunk_size

    def chunk_items(self, index: int) -> np.ndarray:
        return self.item_ids[index * self.chunk_size : (index + 1) * self.chunk_size]

    def chunk_path(self, index: int) -> Path:
        return self.directory / f"chunk_{index:05d}.npz"

    @property
    def manifest_path(self) -> Path:
        return self.directory / "manifest.json"

    def done_chunks(self) -> list[int]:
        return [i for i in range(self.n_chunks) if self.chunk_path(i).exists()]

    def pending_chunks(self) -> list[int]:
        return [i for i in range(self.n_chunks) if not self.chunk_path(i).exists()]

    @property
    def complete(self) -> bool:
        return not self.pending_chunks() and self.read_manifest() is not None

    # ---- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def computing(self, waiting: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold this entry's lock (``<key>.lock`` beside its folder) while computing it: a second
        extraction of the same configuration (another process, or another session's thread) waits
        here (`waiting` is called first), then finds the chunks written and reuses them. Without
        locks (a read-only folder) both compute; atomic chunk writes keep the entry valid."""
        with file_lock(self.directory, blocking=False) as held:
            if held:
                yield
                return
        if waiting is not None:
            waiting()
        log.info("feature store: %s is being extracted by another process; waiting for it", self.key)
        with file_lock(self.directory):
            yield

    def start(self, extra_manifest: dict | None = None) -> None:
        """Write (or refresh) the manifest before computing; an unreadable one is replaced."""
        manifest = self.read_manifest() or {}
        manifest.update(
            {
                "config": self.config.to_dict(),
                "n_items": len(self.item_ids),
                "chunk_size": self.chunk_size,
                "n_chunks": self.n_chunks,
                "created": manifest.get("created", time.strftime("%Y-%m-%d %H:%M:%S")),
                "complete": False,
            }
        )
        manifest.update(extra_manifest or {})
        self._write_manifest(manifest)
        ids_path = self.directory / "item_ids.npy"
        if not self._item_ids_readable(ids_path):
            with atomic_write(ids_path, "wb") as handle:
                np.save(handle, self.item_ids)

    def _item_ids_readable(self, path: Path) -> bool:
        try:
            return np.array_equal(np.load(path, allow_pickle=False), self.item_ids)
        except FileNotFoundError:
            return False
        except _UNREADABLE as exc:
            log.warning("feature store: %s is unreadable (%s); writing it again", path, exc)
            return False

    def write_chunk(self, index: int, chunk: Chunk) -> None:
        expected = set(self.chunk_items(index).tolist())
        got = set(np.asarray(chunk.item_ids).tolist()) | set(chunk.failures["item_id"].astype(int).tolist())
        if got != expected:
            raise InvalidInput(f"chunk {index}: items {sorted(got ^ expected)[:5]} do not match the chunk plan")
        arrays = {
            "item_ids": np.asarray(chunk.item_ids, dtype=np.int64),
            "matrix": np.asarray(chunk.matrix, dtype=np.float32),
            "failed_ids": chunk.failures["item_id"].to_numpy(dtype=np.int64),
            "failed_reasons": np.asarray(chunk.failures["reason"].astype(str).tolist(), dtype=str),
        }
        if chunk.offsets is not None:
            arrays["offsets"] = np.asarray(chunk.offsets, dtype=np.int64)
        for name, values in chunk.extra.items():
            arrays[f"extra_{name}"] = np.asarray(values)
        with atomic_write(self.chunk_path(index), "wb") as handle:
            np.savez(handle, **arrays)

    def finish(self, run_info: dict | None = None) -> None:
        manifest = self.read_manifest() or {"config": self.config.to_dict(), "chunk_size": self.chunk_size}
        manifest["complete"] = not self.pending_chunks()
        manifest["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        if run_info:
            manifest.setdefault("runs", []).append(run_info)
        self._write_manifest(manifest)

    def _write_manifest(self, manifest: dict) -> None:
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=1, default=str))

    # ---- reading ---------------------------------------------------------------------------
    def read_manifest(self) -> dict | None:
        """The manifest, or None when it is missing or unreadable (logged: it is then rewritten)."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None
        except _UNREADABLE as exc:
            log.warning(
                "feature store: manifest %s is unreadable (%s); it will be written again", self.manifest_path, exc
            )
            return None
        return manifest if isinstance(manifest, dict) else None

    def read_chunk(self, index: int) -> Chunk:
        with np.load(self.chunk_path(index), allow_pickle=False) as data:
            failures = pd.DataFrame(
                {"item_id": data["failed_ids"].astype(np.int64), "reason": data["failed_reasons"].astype(str)}
            )
            extra = {key[len("extra_") :]: data[key] for key in data.files if key.startswith("extra_")}
            return Chunk(
                item_ids=data["item_ids"],
                matrix=data["matrix"],
                failures=failures,
                offsets=data["offsets"] if "offsets" in data.files else None,
                extra=extra,
            )

    def discard_chunk(self, index: int, reason: str) -> None:
        """Set an unreadable chunk aside (renamed ``.bad``) so that the next run computes it again."""
        path = self.chunk_path(index)
        log.warning("feature store: chunk %s is unreadable (%s); it will be computed again", path, reason)
        try:
            os.replace(path, path.with_name(path.name + ".bad"))
        except FileNotFoundError:
            pass
        except OSError:
            path.unlink(missing_ok=True)

    def read_all(self) -> Chunk:
        """All readable chunks, concatenated (offsets re-based for per-frame entries).

        A chunk that cannot be read is discarded (see `discard_chunk`): the entry is then
        incomplete and `pending_chunks()` lists it, so extraction recomputes just that chunk.
        """
        chunks = []
        for index in self.done_chunks():
            try:
                chunks.append(self.read_chunk(index))
            except _UNREADABLE as exc:
                self.discard_chunk(index, f"{type(exc).__name__}: {exc}")
        if not chunks:
            return Chunk(np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
        dims = {c.matrix.shape[1] for c in chunks if c.matrix.size}
        dim = dims.pop() if dims else 0
        matrices = [c.matrix if c.matrix.size else np.zeros((0, dim), np.float32) for c in chunks]
        offsets = None
        if chunks[0].offsets is not None:
            parts, base = [np.zeros(1, np.int64)], 0
            for c in chunks:
                parts.append(c.offsets[1:] + base)
                base += int(c.offsets[-1])
            offsets = np.concatenate(parts)
        failures = [c.failures for c in chunks if len(c.failures)]
        extra = {}
        for key in chunks[0].extra:
            extra[key] = np.concatenate([c.extra[key] for c in chunks])
        return Chunk(
            item_ids=np.concatenate([c.item_ids for c in chunks]),
            matrix=np.concatenate(matrices) if matrices else np.zeros((0, dim), np.float32),
            failures=pd.concat(failures, ignore_index=True) if failures else pd.DataFrame(columns=FAILURE_COLUMNS),
            offsets=offsets,
            extra=extra,
        )


class FeatureStore:
    """Directory of FeatureEntry objects, one per configuration key.

    chunk_size: items per chunk of a new entry (None: 128 posters / 16 trailers). It is not part
    of the key: an entry keeps the plan in its manifest, whatever later runs ask for.
    """

    def __init__(self, root: str | os.PathLike | None = None, chunk_size: int | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "features"
        self.chunk_size = int(chunk_size) if chunk_size else None

    def entry(self, config: ExtractionConfig, chunk_size: int | None = None) -> FeatureEntry:
        """The entry of `config` (existing or not yet written); its chunk plan is the stored one if any."""
        if not isinstance(config, ExtractionConfig):
            raise TypeError(f"FeatureStore.entry takes an ExtractionConfig, got {type(config).__name__}")
        directory = self.root / config.key()
        planned = chunk_size or self.chunk_size or LEGACY_CHUNK_SIZE[config.media]
        entry = FeatureEntry(directory, config, planned)
        manifest = entry.read_manifest()
        if manifest and int(manifest.get("chunk_size") or 0) > 0 and int(manifest["chunk_size"]) != planned:
            entry = FeatureEntry(directory, config, int(manifest["chunk_size"]))  # resume keeps the plan
        return entry

    def open(self, key: str) -> FeatureEntry:
        """An existing entry by its key (a row of `list_entries()`); FeaturesNotFound when absent."""
        directory = self.root / key
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
            item_ids = np.load(directory / "item_ids.npy", allow_pickle=False)
            config = ExtractionConfig.from_dict(manifest["config"], item_ids)
            chunk_size = int(manifest["chunk_size"])
        except (*_UNREADABLE, TypeError) as exc:
            raise FeaturesNotFound(
                f"no readable feature entry '{key}' in {self.root} ({type(exc).__name__})",
                hint="recsys extract --list",
            ) from exc
        return FeatureEntry(directory, config, chunk_size)

    def manifests(self) -> Iterable[tuple[Path, dict]]:
        """(entry directory, manifest) of every readable manifest; unreadable ones are logged and skipped."""
        if not self.root.exists():
            return
        for manifest_path in sorted(self.root.glob("*/manifest.json")):
            try:
                manifest = json.loads(manifest_path.read_text())
            except _UNREADABLE as exc:
                log.warning("feature store: skipping unreadable manifest %s (%s)", manifest_path, exc)
                continue
            if isinstance(manifest, dict):
                yield manifest_path.parent, manifest

    def list_entries(self) -> pd.DataFrame:
        """One row per cached configuration, for the Extract page's table and `extract --list`."""
        rows = []
        for directory, manifest in self.manifests():
            config = manifest.get("config", {})
            n_chunks = int(manifest.get("n_chunks", 0))
            done = sum(1 for _ in directory.glob("chunk_*.npz"))
            last_run = (manifest.get("runs") or [{}])[-1]
            size = sum(p.stat().st_size for p in directory.glob("*") if p.is_file())
            rows.append(
                {
                    "key": directory.name,
                    "dataset": config.get("dataset"),
                    "media": config.get("media"),
                    "backbone": config.get("backbone"),
                    "weights": config.get("weights_id"),
                    "layer": config.get("layer") or "pre-logits",
                    "pooling": config.get("pooling"),
                    "fps": config.get("fps"),
                    "precision": config.get("precision", "fp32"),
                    "preprocessing": config.get("preprocessing", "cpu-pil"),
                    "sampling": config.get("sampling", "exact") if config.get("media") == "trailers" else None,
                    "items": manifest.get("n_items"),
                    "dim": manifest.get("dim"),
                    "failures": last_run.get("n_failures"),
                    "chunks_done": done,
                    "chunks": n_chunks,
                    "complete": done >= n_chunks and n_chunks > 0,
                    "device": last_run.get("device"),
                    "images_per_s": last_run.get("images_per_s"),
                    "size_mb": round(size / 1e6, 2),
                    "created": manifest.get("created"),
                    "path": str(directory),
                }
            )
        return pd.DataFrame(rows, columns=LIST_COLUMNS)

    def remove(self, key: str) -> None:
        directory = self.root / key
        if directory.is_dir() and directory.parent == self.root:
            for path in directory.iterdir():
                path.unlink()
            directory.rmdir()


def list_entries(store: FeatureStore | None = None) -> pd.DataFrame:
    return (store or FeatureStore()).list_entries()
