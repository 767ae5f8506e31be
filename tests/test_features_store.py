"""FeatureStore mechanics: chunk plan, atomic chunks, damaged files recomputed, listing (no model involved)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from recsys.errors import FeaturesNotFound
from recsys.features.config import ExtractionConfig
from recsys.features.store import Chunk, FeatureStore, media_fingerprint


def config(item_ids=(5, 1, 9), **changes) -> ExtractionConfig:
    values = dict(dataset="d", media="posters", backbone="b", weights_id="random-init:seed0", media_fingerprint="x")
    return ExtractionConfig(item_ids=tuple(item_ids), **{**values, **changes})


def test_media_fingerprint_follows_file_changes(tmp_path):
    poster = tmp_path / "1.jpg"
    poster.write_bytes(b"a" * 10)
    first = media_fingerprint([(1, str(poster)), (2, None)])
    poster.write_bytes(b"b" * 11)
    assert media_fingerprint([(1, str(poster)), (2, None)]) != first
    assert media_fingerprint([(1, str(tmp_path / "gone.jpg"))]) != media_fingerprint([(1, None)])


def test_chunks_are_whole_or_absent(tmp_path):
    store = FeatureStore(tmp_path, chunk_size=2)
    entry = store.entry(config())
    assert entry.n_chunks == 2 and entry.chunk_items(0).tolist() == [1, 5]
    entry.start({"dim": 2})
    with pytest.raises(ValueError, match="chunk plan"):
        entry.write_chunk(0, Chunk(np.array([1]), np.zeros((1, 2))))
    entry.write_chunk(0, Chunk(np.array([1]), np.ones((1, 2)), pd.DataFrame({"item_id": [5], "reason": ["corrupt"]})))
    # A write killed half-way leaves only a temporary file, which is not a chunk.
    (entry.directory / ".chunk_00001.npz.123-4.tmp").write_bytes(b"partial")
    assert entry.pending_chunks() == [1] and not entry.complete
    listing = store.list_entries()
    assert listing.loc[0, "chunks_done"] == 1 and not listing.loc[0, "complete"]
    assert listing.loc[0, "precision"] == "fp32" and listing.loc[0, "preprocessing"] == "cpu-pil"
    entry.write_chunk(1, Chunk(np.array([9]), np.full((1, 2), 2.0)))
    entry.finish({"device": "cpu", "n_failures": 1})
    data = entry.read_all()
    assert entry.complete and data.item_ids.tolist() == [1, 9] and data.failures["item_id"].tolist() == [5]
    assert bool(store.list_entries().loc[0, "complete"])
    reopened = store.open(entry.key)
    assert reopened.config == entry.config and reopened.chunk_size == 2
    store.remove(entry.directory.name)
    assert store.list_entries().empty
    with pytest.raises(FeaturesNotFound, match="no readable feature entry"):
        store.open(entry.key)


def test_an_entry_keeps_its_chunk_plan(tmp_path):
    FeatureStore(tmp_path, chunk_size=2).entry(config()).start({"dim": 2})
    assert FeatureStore(tmp_path).entry(config()).chunk_size == 2  # resuming never re-plans
    assert FeatureStore(tmp_path).entry(config(item_ids=(1, 2))).chunk_size == 128


def test_damaged_chunks_and_manifests_are_recomputed_with_a_note(tmp_path, caplog):
    store = FeatureStore(tmp_path, chunk_size=2)
    entry = store.entry(config())
    entry.start({"dim": 2})
    entry.write_chunk(0, Chunk(np.array([1, 5]), np.ones((2, 2))))
    entry.write_chunk(1, Chunk(np.array([9]), np.ones((1, 2))))
    entry.finish({"device": "cpu"})
    assert entry.complete
    entry.chunk_path(1).write_bytes(entry.chunk_path(1).read_bytes()[:40])  # cut short (full disk, kill)
    with caplog.at_level(logging.WARNING, logger="recsys.features.store"):
        data = entry.read_all()
    assert data.item_ids.tolist() == [1, 5] and entry.pending_chunks() == [1] and not entry.complete
    assert "unreadable" in caplog.text and "computed again" in caplog.text
    entry.manifest_path.write_text('{"config": ')
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="recsys.features.store"):
        assert entry.read_manifest() is None
        entry.start({"dim": 2})  # the next run writes it again
    assert "manifest" in caplog.text and entry.read_manifest()["chunk_size"] == 2
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files behind


def test_empty_store_lists_nothing(tmp_path):
    listing = FeatureStore(tmp_path / "none").list_entries()
    assert listing.empty and {"key", "backbone", "complete", "precision", "preprocessing"} <= set(listing.columns)
