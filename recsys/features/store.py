"""On-disk feature store: chunked, atomic, resumable, keyed by everything that determines features.

Layout under ``cache_dir()/features``::

    <key>/manifest.json          configuration, chunk plan, completion state
    <key>/chunk_00000.npz        item_ids, matrix (or per-frame rows + offsets), failures

Each chunk is written to a temporary file and moved into place with ``os.replace``, so a run
killed half-way leaves only whole chunks; the next run with the same key skips them. This module
deliberately imports neither torch nor timm: a cache hit must return in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.config import cache_dir

# Bump when a change in the extraction code changes the numbers stored for the same key.
STORE_FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 128
FAILURE_COLUMNS = ["item_id", "reason"]


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


def config_key(config: dict) -> str:
    blob = json.dumps({"store_format": STORE_FORMAT_VERSION, **config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _atomic_write_bytes(path: Path, write) -> None:
    # pid + thread id: two Streamlit sessions may extract the same configuration at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _atomic_write_json(path: Path, payload: dict) -> None:
    _atomic_write_bytes(path, lambda h: h.write(json.dumps(payload, indent=1, default=str).encode()))


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


class FeatureEntry:
    """One cached configuration: a manifest plus the chunks written so far."""

    def __init__(self, directory: Path, config: dict, item_ids: Sequence[int], chunk_size: int):
        self.directory = Path(directory)
        self.config = config
        self.item_ids = np.asarray(sorted(int(i) for i in item_ids), dtype=np.int64)
        self.chunk_size = int(chunk_size)

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
        return self.manifest_path.exists() and not self.pending_chunks()

    # ---- writing ---------------------------------------------------------------------------
    def start(self, extra_manifest: dict | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = self.read_manifest() or {}
        manifest.update(
            {
                "config": self.config,
                "n_items": len(self.item_ids),
                "chunk_size": self.chunk_size,
                "n_chunks": self.n_chunks,
                "created": manifest.get("created", time.strftime("%Y-%m-%d %H:%M:%S")),
                "complete": False,
            }
        )
        manifest.update(extra_manifest or {})
        _atomic_write_json(self.manifest_path, manifest)
        if not (self.directory / "item_ids.npy").exists():
            _atomic_write_bytes(self.directory / "item_ids.npy", lambda h: np.save(h, self.item_ids))

    def write_chunk(self, index: int, chunk: Chunk) -> None:
        expected = set(self.chunk_items(index).tolist())
        got = set(np.asarray(chunk.item_ids).tolist()) | set(chunk.failures["item_id"].astype(int).tolist())
        if got != expected:
            raise ValueError(f"chunk {index}: items {sorted(got ^ expected)[:5]} do not match the chunk plan")
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
        _atomic_write_bytes(self.chunk_path(index), lambda h: np.savez(h, **arrays))

    def finish(self, run_info: dict | None = None) -> None:
        manifest = self.read_manifest() or {}
        manifest["complete"] = not self.pending_chunks()
        manifest["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        if run_info:
            manifest.setdefault("runs", []).append(run_info)
        _atomic_write_json(self.manifest_path, manifest)

    # ---- reading ---------------------------------------------------------------------------
    def read_manifest(self) -> dict | None:
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return None

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

    def read_all(self) -> Chunk:
        """All chunks written so far, concatenated (offsets re-based for per-frame entries)."""
        chunks = [self.read_chunk(i) for i in self.done_chunks()]
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
    """Directory of FeatureEntry objects, one per configuration key."""

    def __init__(self, root: str | os.PathLike | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.root = Path(root) if root is not None else cache_dir() / "features"
        self.chunk_size = int(chunk_size)

    def entry(self, config: dict, item_ids: Sequence[int], chunk_size: int | None = None) -> FeatureEntry:
        item_ids = sorted(int(i) for i in item_ids)
        chunk_size = int(chunk_size or self.chunk_size)
        full_config = dict(config)
        full_config["items_hash"] = hashlib.sha256(np.asarray(item_ids, np.int64).tobytes()).hexdigest()[:16]
        full_config["n_items"] = len(item_ids)
        full_config["chunk_size"] = chunk_size
        return FeatureEntry(self.root / config_key(full_config), full_config, item_ids, chunk_size)

    def list_entries(self) -> pd.DataFrame:
        """One row per cached configuration, for the Extract page's table."""
        rows = []
        if self.root.exists():
            for manifest_path in sorted(self.root.glob("*/manifest.json")):
                try:
                    manifest = json.loads(manifest_path.read_text())
                except (OSError, ValueError):
                    continue
                config = manifest.get("config", {})
                n_chunks = int(manifest.get("n_chunks", 0))
                done = sum(1 for _ in manifest_path.parent.glob("chunk_*.npz"))
                last_run = (manifest.get("runs") or [{}])[-1]
                size = sum(p.stat().st_size for p in manifest_path.parent.glob("*") if p.is_file())
                rows.append(
                    {
                        "key": manifest_path.parent.name,
                        "dataset": config.get("dataset"),
                        "media": config.get("media"),
                        "backbone": config.get("backbone"),
                        "weights": config.get("weights_id"),
                        "layer": config.get("layer") or "pre-logits",
                        "pooling": config.get("pooling"),
                        "fps": config.get("fps"),
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
                        "path": str(manifest_path.parent),
                    }
                )
        columns = [
            "key",
            "dataset",
            "media",
            "backbone",
            "weights",
            "layer",
            "pooling",
            "fps",
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
        return pd.DataFrame(rows, columns=columns)

    def remove(self, key: str) -> None:
        directory = self.root / key
        if directory.is_dir() and directory.parent == self.root:
            for path in directory.iterdir():
                path.unlink()
            directory.rmdir()


def list_entries(store: FeatureStore | None = None) -> pd.DataFrame:
    return (store or FeatureStore()).list_entries()
