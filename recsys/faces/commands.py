"""`python -m recsys audience-eval`: the Audience page, headless.

Prints the group recommender's precision/recall/F1 table (the same `evaluate_groups` call, same
seed, as the page); with `--image` it also reads faces from a photo and prints each face's group
and the group's top-10.
"""

from __future__ import annotations

import time
from pathlib import Path

from recsys.data.dataset import Dataset
from recsys.errors import MediaError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "audience-eval",
        help="group recommender evaluation by age band and gender (Balfaqih); optional faces from an image",
    )
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n", type=int, default=10, help="list length N (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--image", type=Path, default=None, help="photo to analyse (faces -> group -> top-N)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import pandas as pd

    from recsys.cli_common import progress_bar
    from recsys.data import load_dataset
    from recsys.eval.groups import evaluate_groups

    if args.image is not None and not args.image.is_file():  # fail before the evaluation, not after it
        raise MediaError(f"--image {args.image}: no such file")
    start = time.perf_counter()
    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    with progress_bar("groups") as progress:
        table = evaluate_groups(dataset, n=args.n, test_fraction=args.test_fraction, seed=args.seed, progress=progress)
    elapsed = time.perf_counter() - start
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(table.round(4).to_string(index=False))
    overall = table[table["facet"] == "all"].set_index("method")
    print(
        f"dataset={dataset.name} n={args.n} seed={args.seed} "
        f"f1_group={overall.loc['group recommender', 'f1']:.4f} "
        f"f1_popular={overall.loc['popular in group', 'f1']:.4f} "
        f"f1_svd_all_clusters={overall.loc['group SVD, all clusters', 'f1']:.4f} "
        f"users={int(overall['n_users'].iloc[0])} seconds={elapsed:.1f}"
    )
    if args.image is not None:
        _print_faces(args.image, dataset, args.n)
    return 0


def _print_faces(path: Path, dataset: Dataset, n: int) -> None:
    from recsys.faces.pipeline import AudienceAnalyzer, FaceInputError, NoFaceError
    from recsys.models.groups import GroupRecommender

    try:
        result = AudienceAnalyzer().analyse_image_bytes(Path(path).read_bytes())
    except NoFaceError as exc:  # a valid photo without a face is an answer, not a failure
        print(f"{path}: {exc}")
        return
    except FaceInputError as exc:  # not an image, too large: bad input, so a non-zero exit
        raise MediaError(f"{path}: {exc}") from None
    model = GroupRecommender().fit(dataset.ratings, dataset.users, dataset.genres)
    for i, face in enumerate(result.faces, 1):
        rec = model.recommend_group(face.age_band, face.gender, face.emotion, n=n)
        print(
            f"face {i}: {face.label()} -> group {rec.age_band or 'all'}/{rec.gender or 'all'} "
            f"({rec.n_members} users), cluster {rec.favoured_cluster}"
        )
        for row in rec.items.itertuples(index=False):
            print(f"  {row.rank:>2}. {dataset.items.loc[row.item_id, 'title']}  ({row.score:.2f})")
