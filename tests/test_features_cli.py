"""`python -m recsys extract` on real ML-100K posters: progress, summary line, cache hit, listing."""

from __future__ import annotations

from recsys.cli import main


def _summary(output: str) -> dict:
    last = output.strip().splitlines()[-1]
    return dict(part.split("=", 1) for part in last.split(" ") if "=" in part)


def test_extract_command_writes_and_reuses_the_store(shared_data_dir, capsys):
    argv = ["extract", "--dataset", "ml-100k", "--data-dir", str(shared_data_dir), "--limit", "6", "--batch-size", "3"]
    assert main(argv) == 0
    first = _summary(capsys.readouterr().out)
    assert first["items"] == "6" and first["dim"] == "1280" and first["cache_hit"] == "False"
    assert first["device"] == "cpu" and float(first["images_per_s"]) > 0

    assert main(argv) == 0
    second = _summary(capsys.readouterr().out)
    assert second["cache_hit"] == "True" and second["key"] == first["key"] and float(second["seconds"]) < 1.0

    assert main(["extract", "--list"]) == 0
    listing = capsys.readouterr().out
    assert first["key"] in listing and "tf_efficientnet_lite0" in listing


def test_extract_command_reports_bad_options(shared_data_dir, capsys):
    code = main(["extract", "--dataset", "ml-100k", "--data-dir", str(shared_data_dir), "--fps", "2", "--limit", "2"])
    assert code == 1 and "--media trailers" in capsys.readouterr().err
    code = main(
        [
            "extract",
            "--dataset",
            "ml-100k",
            "--data-dir",
            str(shared_data_dir),
            "--limit",
            "2",
            "--backbone",
            "resnet10t",
            "--weights",
            "offline",
        ]
    )
    assert code == 1 and "weights_file" in capsys.readouterr().err
