"""FeatureStore mechanics: keys, chunk plan, atomic chunks, listing (no model involved)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.features.store import Chunk, FeatureStore, config_key, media_fingerprint


def test_keys_change_with_every_determining_input(tmp_path):
    store = FeatureStore(tmp_path)
    base = {"dataset": "d", "backbone": "b", "weights_id": "w", "layer": None, "pooling": "avg", "fps": None}
    key = store.entry(base, [3, 1, 2]).directory.name
    assert store.entry(base, [1, 2, 3]).directory.name == key  # item order does not matter
    assert store.entry(base, [1, 2]).directory.name != key
    for field, value in [
        ("backbone", "c"),
        ("weights_id", "x"),
        ("layer", "blocks.5"),
        ("pooling", "max"),
        ("fps", 2.0),
    ]:
        assert store.entry({**base, field: value}, [1, 2, 3]).directory.name != key
    assert config_key(base) == config_key(dict(reversed(list(base.items()))))


def test_media_fingerprint_follows_file_changes(tmp_path):
    poster = tmp_path / "1.jpg"
    poster.write_bytes(b"a" * 10)
    first = media_fingerprint([(1, str(poster)), (2, None)])
    poster.write_bytes(b"b" * 11)
    assert media_fingerprint([(1, str(poster)), (2, None)]) != first
    assert media_fingerprint([(1, str(tmp_path / "gone.jpg"))]) != media_fingerprint([(1, None)])


def test_chunks_are_whole_or_absent(tmp_path):
    store = FeatureStore(tmp_path, chunk_size=2)
    entry = store.entry({"dataset": "d", "media": "posters", "backbone": "b"}, [5, 1, 9])
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
    entry.write_chunk(1, Chunk(np.array([9]), np.full((1, 2), 2.0)))
    entry.finish({"device": "cpu", "n_failures": 1})
    data = entry.read_all()
    assert entry.complete and data.item_ids.tolist() == [1, 9] and data.failures["item_id"].tolist() == [5]
    assert bool(store.list_entries().loc[0, "complete"])
    store.remove(entry.directory.name)
    assert store.list_entries().empty


def test_empty_store_lists_nothing(tmp_path):
    listing = FeatureStore(tmp_path / "none").list_entries()
    assert listing.empty and {"key", "backbone", "complete"} <= set(listing.columns)
