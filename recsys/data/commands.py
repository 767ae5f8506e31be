"""CLI subcommands of the data layer: ``info``, ``download``, ``demo`` and ``posters``.

    python -m recsys info --dataset ml-100k --data-dir ../shared/data --json
    python -m recsys download ml-1m --data-dir ~/movielens
    python -m recsys demo --seed 0
    TMDB_API_KEY=... python -m recsys posters --dataset ml-latest-small --source tmdb

``--data-dir`` falls back to $RECSYS_DATA_DIR (recsys.config.data_dir).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from recsys.cli_common import (
    positive_int,
    progress_bar,
    tqdm_progress,  # noqa: F401 - re-exported: older imports name it here
)
from recsys.config import data_dir as resolve_data_dir
from recsys.data.dataset import Dataset

if TYPE_CHECKING:
    import pandas as pd


def dataset_report(dataset: Dataset) -> dict:
    """Dataset.summary() plus poster/trailer coverage and where the media came from."""
    report = dataset.summary()
    posters = dataset.media_coverage("poster")
    trailers = dataset.media_coverage("trailer")
    report.update(
        {
            "ratings_with_poster": posters["ratings"],
            "items_with_poster_share": round(posters["items_share"], 4),
            "ratings_with_poster_share": round(posters["ratings_share"], 4),
            "ratings_with_trailer": trailers["ratings"],
            "rating_scale": list(dataset.rating_scale),
            "source_dir": str(dataset.source_dir) if dataset.source_dir else None,
        }
    )
    for key in ("poster_sources", "ml1m_match", "poster_warning", "variance_share"):
        if key in dataset.notes:
            report[key] = dataset.notes[key]
    return report


def _info(args: argparse.Namespace) -> int:
    from recsys.data.registry import default_dataset_name, load_dataset

    root = resolve_data_dir(args.data_dir)
    name = args.dataset or default_dataset_name(root)
    dataset = load_dataset(name, root, seed=args.seed)
    report = dataset_report(dataset)
    report["data_dir"] = str(root)
    if args.json:
        print(json.dumps(report, default=str))
    else:
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from recsys.data.download import download_dataset

    root = resolve_data_dir(args.data_dir)
    with progress_bar(args.name, unit="B", leave=True) as progress:
        folder = download_dataset(args.name, root, progress=progress, force=args.force, keep_archive=args.keep_archive)
    print(f"{args.name} ready in {folder}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import shutil

    from recsys.data.demo import demo_folder, load_demo

    if args.rebuild:
        shutil.rmtree(demo_folder(args.seed), ignore_errors=True)
    with progress_bar("demo", unit="file", leave=True) as progress:
        dataset = load_demo(seed=args.seed, progress=progress)
    print(json.dumps(dataset_report(dataset), default=str))
    return 0


def tmdb_items(name: str, root) -> pd.DataFrame:
    """Items of a CSV-family dataset with their ``tmdb_id`` (movies.csv + links.csv only: the
    ratings are not needed to fetch posters). InvalidParameter for datasets without TMDB ids."""
    from recsys.data.movielens import read_csv_links, read_csv_movies
    from recsys.data.registry import dataset_info, find_dataset_folder
    from recsys.errors import DatasetNotFound, InvalidParameter

    info = dataset_info(name)
    folder = None if info.synthetic else find_dataset_folder(name, root)
    if folder is None and not info.synthetic:
        raise DatasetNotFound(f"dataset {name!r} not found in {root}", hint=f"recsys download {name}")
    if folder is None or not (folder / "links.csv").is_file():
        raise InvalidParameter(
            f"{name} has no TMDB ids (links.csv): TMDB posters are for ml-latest-small, ml-20m and ml-25m"
        )
    items, _ = read_csv_movies(folder / "movies.csv")
    links = read_csv_links(folder / "links.csv", items.index)
    return items.join(links[["tmdb_id"]])


def _posters(args: argparse.Namespace) -> int:
    from recsys.data.posters import TMDB_STATUSES, download_tmdb_posters
    from recsys.errors import DownloadError

    root = resolve_data_dir(args.data_dir)
    items = tmdb_items(args.dataset, root)
    if args.limit is not None:
        items = items.iloc[: args.limit]
    folder = root / "posters" / args.dataset
    with progress_bar(f"TMDB posters {args.dataset}", unit="poster", leave=True) as progress:
        report = download_tmdb_posters(
            items,
            folder,
            api_url=args.api_url,
            image_url=args.image_url,
            progress=progress,
            timeout=args.timeout,
            overwrite=args.overwrite,
        )
    counts = report["status"].value_counts()
    failed = report[report["status"] == "error"]
    for row in failed.head(5).itertuples():
        print(f"warning: item {row.item_id}: {row.detail}", file=sys.stderr)
    if len(failed) > 5:
        print(f"warning: ... and {len(failed) - 5} more failures", file=sys.stderr)
    print(" ".join(f"{status}={int(counts.get(status, 0))}" for status in TMDB_STATUSES) + f" folder={folder}")
    stopped = failed["detail"].str.startswith("not tried: ")
    if stopped.any():
        raise DownloadError(failed.loc[stopped, "detail"].iloc[0].removeprefix("not tried: "))
    return 0


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data directory (default: $RECSYS_DATA_DIR, else ~/.cache/recsys-dashboard/data)",
    )


def add_parser(subparsers) -> None:
    info = subparsers.add_parser("info", help="counts, demographics and media coverage of a dataset")
    info.add_argument("--dataset", default=None, help="registry name (default: ml-100k if present, else demo)")
    info.add_argument("--seed", type=int, default=0, help="seed of the synthetic demo dataset")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data_dir(info)
    info.set_defaults(func=_info)

    download = subparsers.add_parser("download", help="download and extract a GroupLens dataset")
    download.add_argument("name", help="ml-100k, ml-1m, ml-latest-small, ml-20m or ml-25m")
    download.add_argument("--force", action="store_true", help="download even if already present")
    download.add_argument("--keep-archive", action="store_true", help="keep the .zip after extraction")
    _add_data_dir(download)
    download.set_defaults(func=_download)

    demo = subparsers.add_parser("demo", help="build (or read) the synthetic offline demo dataset")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--rebuild", action="store_true", help="regenerate even if cached")
    demo.set_defaults(func=_demo)

    posters = subparsers.add_parser(
        "posters",
        help="fetch posters from TMDB into <data dir>/posters/<dataset>/ (needs $TMDB_API_KEY or $TMDB_BEARER)",
        description="Fetch one poster per movie from TMDB for a dataset with links.csv (ml-latest-small, ml-20m, "
        "ml-25m). Credentials come from $TMDB_API_KEY (v3 key) or $TMDB_BEARER (v4 token) and are never "
        "printed. Existing posters are kept, so an interrupted run continues. Items that fail are listed "
        "with their reason; the exit status is 1 only when TMDB refused the credentials or was unreachable.",
    )
    posters.add_argument("--dataset", required=True, help="ml-latest-small, ml-20m or ml-25m")
    posters.add_argument("--source", choices=["tmdb"], default="tmdb", help="where posters come from")
    posters.add_argument("--limit", type=positive_int, default=None, help="only the first N movies")
    posters.add_argument("--overwrite", action="store_true", help="fetch again posters already present")
    posters.add_argument("--timeout", type=float, default=20.0, help="seconds per HTTP request")
    # a mirror or a test server (default: $RECSYS_TMDB_API_URL / $RECSYS_TMDB_IMAGE_URL, else TMDB)
    posters.add_argument("--api-url", default=None, help=argparse.SUPPRESS)
    posters.add_argument("--image-url", default=None, help=argparse.SUPPRESS)
    _add_data_dir(posters)
    posters.set_defaults(func=_posters)
