"""CLI subcommand ``extract``: the headless twin of the Extract page, writing to the same store.

recsys extract --dataset ml-100k --backbone tf_efficientnet_lite0 --data-dir ../shared/data
recsys extract --dataset demo --media trailers --fps 2
recsys extract --list
"""

from __future__ import annotations

import argparse
import json

from recsys.cli_common import progress_bar
from recsys.errors import InvalidParameter


def add_parser(subparsers) -> None:
    from recsys.features.backbones import POOLINGS, WEIGHT_CHOICES
    from recsys.features.config import DEFAULT_BACKBONE, MEDIA, PRECISIONS, PREPROCESSING, SAMPLING
    from recsys.features.engines import available_engines

    parser = subparsers.add_parser(
        "extract",
        help="extract CNN features of posters or trailers (cached, resumable)",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--dataset", help="dataset name (default: the first available)")
    parser.add_argument("--data-dir", help="data directory (default: $RECSYS_DATA_DIR)")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, help="any timm model name")
    parser.add_argument(
        "--weights",
        default="auto",
        choices=list(WEIGHT_CHOICES),
        help="auto: weights file, else offline package, else timm hub; random = untrained baseline",
    )
    parser.add_argument("--weights-file", help="local state dict (.pth/.pt/.bin/.safetensors)")
    parser.add_argument("--layer", help="intermediate layer name (default: pooled pre-logits)")
    parser.add_argument("--pooling", default="avg", choices=list(POOLINGS))
    parser.add_argument("--media", default="posters", choices=list(MEDIA))
    parser.add_argument("--fps", type=float, default=None, help="trailer frames per second (default 1)")
    parser.add_argument("--every-nth", type=int, help="trailers: keep every n-th frame instead of --fps")
    parser.add_argument("--max-frames", type=int, help="trailers: at most this many frames per trailer")
    parser.add_argument(
        "--max-seconds",
        "--max-duration",
        dest="max_duration",
        type=float,
        metavar="SECONDS",
        help="trailers: only the first SECONDS of each trailer (a cut video says so in its status)",
    )
    parser.add_argument(
        "--sampling",
        choices=list(SAMPLING),
        default="exact",
        help="trailers: exact = the frame nearest each target time; keyframes = the nearest keyframe "
        "where keyframes are dense enough (less decoding; the status says how far timestamps moved)",
    )
    parser.add_argument(
        "--precision", choices=["auto", *PRECISIONS], default="auto", help="auto: amp on CUDA, fp32 elsewhere"
    )
    parser.add_argument(
        "--preprocessing", choices=["auto", *PREPROCESSING], default="auto", help="decoding path (auto: the device's)"
    )
    parser.add_argument(
        "--engine",
        default="local",
        choices=available_engines(),
        help="local: this process; ray: Ray Data (pip install -r requirements-ray.txt; $RAY_ADDRESS for a cluster)",
    )
    parser.add_argument("--batch-size", type=int, help="skip calibration and use this batch size")
    parser.add_argument(
        "--workers",
        type=int,
        help="decoding threads (default: every core on a GPU, the cores the model leaves on a CPU)",
    )
    parser.add_argument("--device", help="cpu / cuda / mps (default: autodetect)")
    parser.add_argument("--limit", type=int, help="only the first N items of the dataset (a quick try)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic demo dataset")
    parser.add_argument("--list", action="store_true", help="list cached feature configurations and exit")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def _check_arguments(args: argparse.Namespace) -> None:
    """Options whose 0 or negative value used to be read as "not given" (`args.fps or 1.0`),
    silently running a different extraction than asked; checked before any slow loading."""
    if args.limit is not None and args.limit < 1:
        raise InvalidParameter(f"--limit must be a positive number of items, got {args.limit}")
    trailer_only = [args.fps, args.every_nth, args.max_frames, args.max_duration]
    if args.media == "posters" and (any(v is not None for v in trailer_only) or args.sampling != "exact"):
        raise InvalidParameter(
            "--fps / --every-nth / --max-frames / --max-seconds / --sampling apply to --media trailers only"
        )
    if args.fps is not None and args.every_nth is not None:
        raise InvalidParameter("give either --fps or --every-nth, not both")
    # (option, value, lowest allowed; None = above zero), in the order they are reported
    bounds = (
        ("--fps", args.fps, None),
        ("--every-nth", args.every_nth, 1),
        ("--max-frames", args.max_frames, 1),
        ("--max-seconds", args.max_duration, None),
        ("--batch-size", args.batch_size, 1),
        ("--workers", args.workers, 0),
    )
    for option, value, lowest in bounds:
        if value is None:
            continue
        if lowest is None and not value > 0:
            raise InvalidParameter(f"{option} must be positive, got {value:g}")
        if lowest is not None and value < lowest:
            raise InvalidParameter(f"{option} must be >= {lowest}, got {value}")


def run(args: argparse.Namespace) -> int:
    from recsys.features.store import FeatureStore

    if args.list:
        entries = FeatureStore().list_entries()
        print("no cached features" if entries.empty else entries.drop(columns=["path"]).to_string(index=False))
        return 0
    from recsys.config import data_dir
    from recsys.data import default_dataset_name, load_dataset
    from recsys.features.config import RunOptions, make_config
    from recsys.features.extract import extract

    _check_arguments(args)
    root = data_dir(args.data_dir)
    dataset = load_dataset(args.dataset or default_dataset_name(root), root, seed=args.seed)
    run_options = RunOptions(
        device=args.device, batch_size=args.batch_size, num_workers=args.workers, engine=args.engine
    )
    config = make_config(
        dataset,
        args.media,
        args.backbone,
        weights=args.weights,
        weights_file=args.weights_file,
        layer=args.layer,
        pooling=args.pooling,
        fps=args.fps,
        every_nth=args.every_nth,
        max_frames=args.max_frames,
        max_duration=args.max_duration,
        precision=None if args.precision == "auto" else args.precision,
        preprocessing=None if args.preprocessing == "auto" else args.preprocessing,
        sampling=args.sampling,
        item_ids=dataset.items.index[: args.limit] if args.limit is not None else None,
        device=args.device,
    )
    with progress_bar(f"{args.media} · {args.backbone}", unit="item", leave=True) as progress:
        result = extract(dataset, config, run_options, progress)
    summary = {
        "dataset": dataset.name,
        "media": args.media,
        "backbone": args.backbone,
        "items": len(result.features),
        "dim": result.features.dim,
        "failures": len(result.failures),
        **({"without_trailer": len(result.missing)} if args.media == "trailers" else {}),
        "cache_hit": result.cache_hit,
        "computed": result.n_computed,
        "reused": result.n_reused,
        "device": result.device,
        "precision": config.precision,
        "preprocessing": config.preprocessing,
        "engine": args.engine,
        "settings": result.settings,
        "images_per_s": round(result.images_per_s, 2),
        "seconds": round(result.seconds, 3),
        "key": result.key,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        if len(result.failures):
            reasons = result.failures["reason"].str.replace(r"^.*?: ", "", regex=True).str[:60].value_counts()
            print(f"{len(result.failures)} items without features:")
            for reason, count in reasons.head(5).items():
                print(f"  {count:5d}  {reason}")
        print(" ".join(f"{key}={value}" for key, value in summary.items()))
    return 0
