"""`python -m recsys evaluate ...` on the real ML-100K data, and its clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.cli import main
from recsys.eval.commands import parse_grid


def test_parse_grid():
    assert parse_grid("10:100:10") == list(range(10, 101, 10))
    assert parse_grid("5,20") == [5, 20]
    assert parse_grid("0:1:0.25", float) == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="start:stop:step"):
        parse_grid("a:b")


def test_rmse_k_command_writes_table(shared_data_dir, tmp_path, capsys):
    out = tmp_path / "rmse.csv"
    code = main(
        [
            "evaluate",
            "rmse-k",
            "--dataset",
            "ml-100k",
            "--data-dir",
            str(shared_data_dir),
            "--representations",
            "ratings,genre",
            "--k",
            "20,60",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("best_genre=K") and "best_ratings=K" in lines[-1]
    table = pd.read_csv(out)
    assert sorted(table.representation.unique()) == ["genre", "ratings"] and sorted(table.k.unique()) == [20, 60]
    assert table.rmse.between(0.85, 1.1).all()  # ML-100K user KNN territory, not a broken model


def test_r2_command_and_errors(shared_data_dir, capsys):
    assert main(["evaluate", "r2", "--data-dir", str(shared_data_dir), "--features", "genre"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("genre:r2_in=")
    assert main(["evaluate", "r2", "--data-dir", str(shared_data_dir), "--features", "smell"]) == 1
    assert "unknown representation" in capsys.readouterr().err
    code = main(
        ["evaluate", "rmse-k", "--data-dir", str(shared_data_dir), "--representations", "poster:resnet18", "--k", "10"]
    )
    assert code == 1
    assert "not extracted yet" in capsys.readouterr().err
