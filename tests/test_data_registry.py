"""Dataset registry, load_dataset with posters/trailers attached, and the data CLI commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from test_data_movielens import write_csv_family, write_ml100k

from recsys.config import PROJECT_ROOT
from recsys.data import (
    DATASETS,
    DatasetNotFound,
    available_datasets,
    default_dataset_name,
    load_dataset,
)


@pytest.fixture(scope="module")
def ml100k(shared_data_dir):
    return load_dataset("ml-100k", shared_data_dir)


def test_registry_names_urls_and_checksums():
    assert list(DATASETS) == ["demo", "ml-100k", "ml-1m", "ml-latest-small", "ml-20m", "ml-25m"]
    for _name, info in DATASETS.items():
        if info.synthetic:
            continue
        assert info.url == f"https://files.grouplens.org/datasets/movielens/{info.folder}.zip"
        assert info.checksum is None or info.checksum.startswith(("md5:", "sha256:"))
    assert DATASETS["ml-100k"].checksum == "md5:0e33842e24a9c977be4e0107933c0723"


def test_ml100k_posters_through_title_matcher(ml100k):
    coverage = ml100k.media_coverage("poster")
    assert coverage["items"] >= 1660  # README of the shared data: 1,668
    assert coverage["ratings"] >= 99_900  # 99,927
    assert ml100k.items.loc[50, "ml1m_movie_id"] == 260  # Star Wars (1977) -> Episode IV
    assert ml100k.posters.loc[50].endswith("posters-ml1m/260.jpg")
    assert ml100k.posters.loc[267] is None  # "unknown" has no counterpart
    assert ml100k.notes["poster_sources"]["posters-ml1m via title match"] == coverage["items"]


def test_local_poster_folder_wins_and_trailers_attach(tmp_path, shared_data_dir):
    data = tmp_path / "data"
    shutil.copytree(shared_data_dir / "ml-100k", data / "ml-100k")
    (data / "posters" / "ml-100k").mkdir(parents=True)
    (data / "posters" / "ml-100k" / "1.png").write_bytes(b"not read here")
    (data / "trailers" / "ml-100k").mkdir(parents=True)
    (data / "trailers" / "ml-100k" / "2.mp4").write_bytes(b"x")
    (data / "trailers" / "ml-100k" / "3.txt").write_bytes(b"x")
    dataset = load_dataset("ml-100k", data)
    # without ml-1m/movies.dat there is no title matcher: only the local folder, and a visible note
    assert dataset.posters.notna().sum() == 1 and dataset.posters.loc[1].endswith("1.png")
    assert "ml-1m" in dataset.notes["poster_warning"]
    assert dataset.trailers.notna().sum() == 1 and dataset.trailers.loc[2].endswith("2.mp4")


def test_csv_family_uses_ml1m_numbered_posters(tmp_path, shared_data_dir):
    data = tmp_path / "data"
    write_csv_family(data / "ml-latest-small")
    (data / "posters-ml1m").symlink_to(shared_data_dir / "posters-ml1m")
    dataset = load_dataset("ml-latest-small", data)
    assert dataset.posters.notna().sum() == 3 and dataset.posters.loc[2].endswith("posters-ml1m/2.jpg")


def test_not_found_says_what_to_download_and_where(tmp_path):
    with pytest.raises(DatasetNotFound) as info:
        load_dataset("ml-20m", tmp_path)
    message = str(info.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-20m.zip" in message
    assert str(tmp_path / "ml-20m" / "ratings.csv") in message
    assert "python -m recsys download ml-20m" in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(ValueError, match="unknown dataset 'ml-5m'"):
        load_dataset("ml-5m", tmp_path)


def test_available_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    table = available_datasets()
    assert list(table.columns) == ["name", "present", "synthetic", "description", "size", "url", "folder"]
    assert table.set_index("name")["present"].to_dict() == {
        "demo": True,
        "ml-100k": False,
        "ml-1m": False,
        "ml-latest-small": False,
        "ml-20m": False,
        "ml-25m": False,
    }
    assert default_dataset_name() == "demo"
    write_ml100k(tmp_path / "ml-100k")
    assert default_dataset_name() == "ml-100k"
    assert available_datasets(tmp_path).set_index("name").loc["ml-100k", "present"]


def test_cli_info_json(shared_data_dir):
    result = subprocess.run(
        [sys.executable, "-m", "recsys", "info", "--dataset", "ml-100k", "--data-dir", str(shared_data_dir), "--json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert (report["ratings"], report["users"], report["items"], report["genres"]) == (100_000, 943, 1682, 19)
    assert report["users_with_age_gender"] == 943 and report["items_with_poster"] >= 1660


def _run_data_command(argv: list[str]) -> int:
    """The data subcommands through their own parser (the full CLI imports every subsystem)."""
    import argparse

    from recsys.data import commands

    parser = argparse.ArgumentParser()
    commands.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_info_text_and_missing_dataset(tmp_path, capsys, monkeypatch):
    write_ml100k(tmp_path / "ml-100k")
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    assert _run_data_command(["info"]) == 0  # default dataset: ml-100k when present
    out = capsys.readouterr().out
    assert "ratings" in out and "ml-100k" in out
    with pytest.raises(DatasetNotFound, match="ml-1m.zip"):
        _run_data_command(["info", "--dataset", "ml-1m", "--data-dir", str(tmp_path)])


def test_title_match_cache_is_best_effort(shared_data_dir, isolated_cache, monkeypatch, caplog):
    """A full disk or a damaged cache file never stops ML-100K from loading with its posters."""
    import logging

    from recsys.data import registry
    from recsys.errors import StorageError

    def full_disk(path, writer):
        raise StorageError(f"cannot write {path}: the disk is full")

    real_save = registry.atomic_save
    monkeypatch.setattr(registry, "_MATCH_CACHE", {})
    monkeypatch.setattr(registry, "atomic_save", full_disk)
    with caplog.at_level(logging.WARNING, logger="recsys.data.registry"):
        dataset = load_dataset("ml-100k", shared_data_dir)
    assert dataset.posters.loc[50].endswith("posters-ml1m/260.jpg")
    assert "title matches not cached" in caplog.text
    assert not list(isolated_cache.glob("title-match/*.csv"))

    monkeypatch.setattr(registry, "atomic_save", real_save)
    monkeypatch.setattr(registry, "_MATCH_CACHE", {})
    load_dataset("ml-100k", shared_data_dir)  # now kept on disk
    (cached,) = isolated_cache.glob("title-match/*.csv")
    cached.write_text("not,a\nmatch,file\n")  # damaged: recomputed, not trusted
    monkeypatch.setattr(registry, "_MATCH_CACHE", {})
    with caplog.at_level(logging.WARNING, logger="recsys.data.registry"):
        dataset = load_dataset("ml-100k", shared_data_dir)
    assert dataset.items.loc[50, "ml1m_movie_id"] == 260
    assert "unreadable" in caplog.text
