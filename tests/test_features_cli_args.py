"""`python -m recsys extract` argument checks: a 0 or negative value is an error, not "use the default"."""

from __future__ import annotations

import pytest

from recsys.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--media", "trailers", "--fps", "0"], "--fps must be positive"),  # was read as 1 fps
        (["--media", "trailers", "--every-nth", "0"], "--every-nth must be >= 1"),  # was read as 1 fps
        (["--limit", "0"], "--limit must be a positive number"),  # was read as "all items"
        (["--limit", "-5"], "--limit must be a positive number"),  # was "all but the last 5"
        (["--media", "trailers", "--fps", "2", "--every-nth", "3"], "either --fps or --every-nth"),
        (["--fps", "2"], "apply to --media trailers only"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
    ],
)
def test_extract_rejects_meaningless_values_before_loading_anything(argv, message, capsys, tmp_path):
    # An empty data dir: had the check come after loading, the error would be about the dataset.
    code = main(["extract", "--dataset", "ml-100k", "--data-dir", str(tmp_path), *argv])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
