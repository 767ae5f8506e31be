"""CLI subcommands of the data layer: ``info``, ``download`` and ``demo``.

    python -m recsys info --dataset ml-100k --data-dir ../shared/data --json
    python -m recsys download ml-1m --data-dir ~/movielens
    python -m recsys demo --seed 0

``--data-dir`` falls back to $RECSYS_DATA_DIR (recsys.config.data_dir).
"""

from __future__ import annotations

import argparse
import json
import sys

from recsys.config import data_dir as resolve_data_dir
from recsys.data.dataset import Dataset


def tqdm_progress(description: str, unit: str = "B", leave: bool = True):
    """A progress(done, total, message) callback drawing a tqdm bar on stderr; call .close() at the end.

    The one CLI adapter for the shared progress signature (every subcommand uses it), so stdout
    stays clean for tables and the final key=value line. `leave=False` erases the bar when done.
    """
    from tqdm import tqdm

    bar = tqdm(
        total=0, desc=description, unit=unit, unit_scale=unit == "B", unit_divisor=1024, leave=leave, file=sys.stderr
    )

    def progress(done: int, total: int, message: str) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.set_postfix_str(message[-40:], refresh=False)
        bar.refresh()

    progress.close = bar.close  # type: ignore[attr-defined]
    return progress


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
    progress = tqdm_progress(args.name)
    try:
        folder = download_dataset(args.name, root, progress=progress, force=args.force, keep_archive=args.keep_archive)
    finally:
        progress.close()
    print(f"{args.name} ready in {folder}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import shutil

    from recsys.data.demo import demo_folder, load_demo

    if args.rebuild:
        shutil.rmtree(demo_folder(args.seed), ignore_errors=True)
    progress = tqdm_progress("demo", unit="file")
    try:
        dataset = load_demo(seed=args.seed, progress=progress)
    finally:
        progress.close()
    print(json.dumps(dataset_report(dataset), default=str))
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
