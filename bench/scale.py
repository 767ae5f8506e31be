"""Scale benchmark (issue 13) on generated MovieLens-shaped data: one section per subsystem.

    .venv/bin/python bench/scale.py                       # "small": 10 % of ML-25M (2.5 M ratings)
    .venv/bin/python bench/scale.py --shape ml-25m        # the full ML-25M shape (25 M ratings)
    .venv/bin/python bench/scale.py --shape custom --users 20000 --movies 8000 --ratings 3000000
    .venv/bin/python bench/scale.py --workdir /tmp/scale --keep   # keep data + cache for a rerun

Sections (``--sections data,...``; each is a function ``section_<name>(context) -> dict`` whose
items join the summary line, registered in SECTIONS):

* ``data``: generate the dataset (``recsys generate``), then load it with the ``ml-25m`` loader
  three times, each in a fresh Python process so that peak memory (``ru_maxrss``) is honest:
  first load (pyarrow parse + validation + writing the Arrow cache), cached load, and a naive
  ``pandas.read_csv`` of the same ratings.csv with its default engine and no checks.
  Load times are those of the call (imports excluded, reported apart as ``import_s``).

* ``knn`` (issue 13, item 3): UserKNN's RMSE-vs-K curve (K = 10..100, co-rated cosine, 80/20
  holdout) with exact and approximate neighbours, each in a fresh process: ``knn_exact_s``,
  ``knn_approx_s`` (fit + curve), ``knn_peak_gb``, ``knn_approx_max_rmse_diff`` (largest
  |RMSE approx - exact| over K), ``knn_approx_overlap_k*`` (mean share of the exact neighbours
  the approximate ones keep, on a sample of pairs), ``knn_approx_exact_share``.
* ``fusion`` (item 4): VT2's fusion curve, k-fold (``--fusion-folds``, 10) on the ratings of the
  ``--fusion-items`` most-rated movies with random ``--fusion-dim``-dimensional item features
  (timing only: random features); ``fusion_s`` (all folds; extrapolated from
  ``--fusion-run-folds`` when given, then ``fusion_measured_folds`` says so).
* ``mf`` (item 5): BiasedMF (ALS, k = 20, 15 sweeps; ``--mf-solvers als,mcmc``) on 98 % of the
  ratings (2 % held out to check the fit): ``mf_als_s``, ``mf_peak_gb``; ``--fm-sweeps N`` adds the
  FM's MCMC (k = 10, genres) for N sweeps on all ratings (``fm_mcmc_s_per_sweep``, peak memory).

The machine is shared: the 1-minute load average is printed before and after each section
(``load_avg_*``); on a busy machine the times are upper bounds.

Last line: ratings=… users=… movies=… generate_s=… generate_peak_gb=… load_first_s=… load_cached_s=…
load_peak_gb=… naive_load_s=… naive_peak_gb=… speedup_cached=… (``*_cpu_s``: CPU time of the
child process, imports included) device=… cpus=…
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recsys.data.generate import SHAPES, Shape, shape_from_args

BENCH_SHAPES = {"small": Shape("small", 16_254, 6_242, 2_500_000), **SHAPES}


@dataclass
class Context:
    """What the sections share: the arguments, the work folder, the dataset folder, the results."""

    args: argparse.Namespace
    workdir: Path
    shape: Shape
    results: dict = field(default_factory=dict)

    @property
    def dataset_dir(self) -> Path:  # named like the registry folder so the ml-25m loader applies
        return self.workdir / "data" / "ml-25m"

    @property
    def cache_dir(self) -> Path:
        return self.workdir / "cache"

    def env(self) -> dict:
        return {**os.environ, "RECSYS_CACHE_DIR": str(self.cache_dir), "RECSYS_DATA_DIR": str(self.workdir / "data")}


# ---- helpers --------------------------------------------------------------------------------------
def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def run_child(code: str, context: Context, timeout: float = 3600) -> dict:
    """Run `code` in a fresh interpreter; it must print one JSON object as its last line. Adds the
    child's peak RSS (GB) as ``peak_gb`` and its CPU time (user + system, imports included) as
    ``cpu_s``: on a shared machine CPU time says more than wall time about the work done."""
    prologue = (
        "import json, resource, sys, time\n"
        "def report(**values):\n"
        "    usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "    values['peak_gb'] = usage.ru_maxrss / 2**20\n"
        "    values['cpu_s'] = usage.ru_utime + usage.ru_stime\n"
        "    print(json.dumps(values))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prologue + code],
        env=context.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- section: data ------------------------------------------------------------------------------
GENERATE = """
from recsys.data.generate import Shape, generate_movielens
shape = Shape(**json.loads({shape!r}))
start = time.perf_counter()
generate_movielens({folder!r}, shape, seed={seed}, overwrite=True)
report(seconds=time.perf_counter() - start)
"""

LOAD = """
start = time.perf_counter()
import numpy, pandas, pyarrow, pyarrow.csv, pyarrow.feather
from recsys.data.movielens import load_movielens_csv
imported = time.perf_counter()
dataset = load_movielens_csv({folder!r}, "ml-25m")
loaded = time.perf_counter()
report(seconds=loaded - imported, import_s=imported - start, ratings=dataset.n_ratings,
       frame_gb=dataset.ratings.memory_usage(deep=True).sum() / 2**30, synthetic=dataset.synthetic)
"""

NAIVE = """
import pandas
start = time.perf_counter()
frame = pandas.read_csv({path!r})
report(seconds=time.perf_counter() - start, ratings=len(frame))
"""


def section_data(context: Context) -> dict:
    shape, folder, args = context.shape, context.dataset_dir, context.args
    out = {"ratings": shape.n_ratings, "users": shape.n_users, "movies": shape.n_movies}
    out["load_avg_before"] = load_avg()
    if args.reuse and (folder / "GENERATED").is_file():
        print(f"data: reusing {folder}", file=sys.stderr)
        out["generate_s"] = float("nan")
    else:
        shape_json = json.dumps(shape.__dict__)
        code = GENERATE.format(shape=shape_json, folder=str(folder), seed=args.seed)
        print(f"data: generating {shape.n_ratings:,} ratings into {folder}", file=sys.stderr)
        generated = run_child(code, context)
        out["generate_s"] = round(generated["seconds"], 1)
        out["generate_peak_gb"] = round(generated["peak_gb"], 2)
        out["generate_cpu_s"] = round(generated["cpu_s"], 1)
    out["ratings_csv_mb"] = round((folder / "ratings.csv").stat().st_size / 2**20)
    shutil.rmtree(context.cache_dir, ignore_errors=True)  # a true first load: no ratings or movies cache
    first = run_child(LOAD.format(folder=str(folder)), context)
    cached = run_child(LOAD.format(folder=str(folder)), context)
    assert first["ratings"] == cached["ratings"] == shape.n_ratings, (first, cached)
    assert first["synthetic"] and cached["synthetic"]
    print(f"data: first load {first['seconds']:.1f}s, cached {cached['seconds']:.1f}s", file=sys.stderr)
    naive = run_child(NAIVE.format(path=str(folder / "ratings.csv")), context)
    out.update(
        load_first_s=round(first["seconds"], 2),
        load_cached_s=round(cached["seconds"], 2),
        load_first_cpu_s=round(first["cpu_s"], 1),
        load_cached_cpu_s=round(cached["cpu_s"], 1),
        load_peak_gb=round(max(first["peak_gb"], cached["peak_gb"]), 2),
        load_cached_peak_gb=round(cached["peak_gb"], 2),
        import_s=round(cached["import_s"], 2),
        ratings_frame_gb=round(cached["frame_gb"], 2),
        naive_load_s=round(naive["seconds"], 2),
        naive_peak_gb=round(naive["peak_gb"], 2),
        naive_cpu_s=round(naive["cpu_s"], 1),
        speedup_cached=round(naive["seconds"] / cached["seconds"], 1),
    )
    out["load_avg_after"] = load_avg()
    return out


# ---- sections: neighbourhood models, fusion, factor models (issue 13, items 3-5) --------------------
def ensure_dataset(context: Context) -> Path:
    """The generated dataset of this shape in the work folder (generated here if missing)."""
    folder = context.dataset_dir
    if not (folder / "GENERATED").is_file():
        code = GENERATE.format(shape=json.dumps(context.shape.__dict__), folder=str(folder), seed=context.args.seed)
        print(f"generating {context.shape.n_ratings:,} ratings into {folder}", file=sys.stderr)
        run_child(code, context)
    return folder


KNN = """
import numpy as np
from recsys.data.movielens import load_movielens_csv
from recsys.eval.metrics import rmse_rows
from recsys.eval.splits import make_splits
from recsys.models.knn import UserKNN
ratings = load_movielens_csv({folder!r}, "ml-25m").ratings[["user_id", "item_id", "rating"]]
train, test = make_splits(ratings, "holdout", seed={seed}, test_size=0.2)[0]
del ratings
users, items = test["user_id"].to_numpy(), test["item_id"].to_numpy()
truth = test["rating"].to_numpy(dtype=np.float64)
def progress(done, total, message):
    print(f"  knn {mode}: {{done}}/{{total}} {{message}} ({{time.perf_counter() - start:.0f}}s)", file=sys.stderr, flush=True)
mode = {mode!r}
start = time.perf_counter()
model = UserKNN(neighbours=mode, n_candidates={candidates}).fit(train)
fit_s = time.perf_counter() - start
curve = model.predict_k_curve(users, items, {ks}, progress=progress)
seconds = time.perf_counter() - start
out = dict(seconds=seconds, fit_s=fit_s, rmse=rmse_rows(truth, curve.values).tolist(), info=curve.info,
           n_train=len(train), n_test=len(test))
if mode == "approx" and {overlap_pairs} > 0:
    from recsys.models.approx import neighbour_overlap
    sample = np.random.default_rng(0).choice(len(test), min({overlap_pairs}, len(test)), replace=False)
    exact = UserKNN().fit(train)
    out["overlap"] = {{k: neighbour_overlap(exact, model, users[sample], items[sample], k) for k in (10, {k_max})}}
report(**out)
"""


def section_knn(context: Context) -> dict:
    """User KNN RMSE-vs-K curve (80/20 holdout), exact and approximate, each in a fresh process."""
    folder, args = ensure_dataset(context), context.args
    ks = list(range(10, 101, 10)) if args.knn_ks is None else [int(k) for k in args.knn_ks.split(",")]
    out = {"knn_load_avg_before": load_avg()}
    results = {}
    for mode in args.knn_modes.split(","):
        code = KNN.format(
            folder=str(folder),
            seed=args.seed,
            mode=mode,
            candidates=args.knn_candidates,
            ks=ks,
            overlap_pairs=args.knn_overlap_pairs,
            k_max=max(ks),
        )
        print(f"knn: {mode} neighbours, K = {ks[0]}..{ks[-1]}", file=sys.stderr)
        results[mode] = run_child(code, context, timeout=4 * 3600)
        result = results[mode]
        (context.workdir / f"knn_{mode}_seed{args.seed}.json").write_text(json.dumps({"ks": ks, **result}))
        out[f"knn_{mode}_s"] = round(result["seconds"], 1)
        out[f"knn_{mode}_fit_s"] = round(result["fit_s"], 1)
        out[f"knn_{mode}_cpu_s"] = round(result["cpu_s"], 1)
        out[f"knn_{mode}_peak_gb"] = round(result["peak_gb"], 2)
        print(f"knn: {mode} {result['seconds']:.0f}s, rmse {[round(r, 4) for r in result['rmse']]}", file=sys.stderr)
    saved = context.workdir / f"knn_exact_seed{args.seed}.json"
    if "exact" not in results and "approx" in results and saved.is_file():
        earlier = json.loads(saved.read_text())  # an exact run on the same data and split, kept by --keep
        if earlier.get("ks") == ks:
            print(f"knn: comparing with the exact curve saved in {saved}", file=sys.stderr)
            results["exact"] = earlier
            out["knn_exact_s"] = round(earlier["seconds"], 1)
            out["knn_exact_peak_gb"] = round(earlier["peak_gb"], 2)
    if "exact" in results:
        out["knn_peak_gb"] = out["knn_exact_peak_gb"]
        out["knn_rmse_k10"] = round(results["exact"]["rmse"][0], 4)
        out["knn_rmse_kmax"] = round(results["exact"]["rmse"][-1], 4)
        out["knn_test_pairs"] = results["exact"]["n_test"]
    if "approx" in results:
        approx = results["approx"]
        out["knn_approx_exact_share"] = round(approx["info"].get("exact_share", float("nan")), 3)
        out["knn_approx_short_share"] = round(approx["info"].get("short_share", float("nan")), 3)
        for k, overlap in approx.get("overlap", {}).items():
            out[f"knn_approx_overlap_k{k}"] = round(overlap, 3)
        if "exact" in results:
            diffs = [abs(a - b) for a, b in zip(approx["rmse"], results["exact"]["rmse"])]
            out["knn_approx_max_rmse_diff"] = round(max(diffs), 4)
            print(f"knn: |rmse approx - exact| per K: {[round(d, 4) for d in diffs]}", file=sys.stderr)
    out["knn_load_avg_after"] = load_avg()
    return out


FUSION = """
import numpy as np
import pandas as pd
from recsys.data.movielens import load_movielens_csv
from recsys.eval.experiments import fusion_curve, fusion_summary
from recsys.eval.splits import Fold
from recsys.features.item_features import ItemFeatures
from recsys.models.content import ContentPredictor
from recsys.models.knn import UserKNN
from recsys.models.mf import BiasedMF
ratings = load_movielens_csv({folder!r}, "ml-25m").ratings[["user_id", "item_id", "rating"]]
# VT2's setting: the ratings of the {n_items} most-rated movies (the trailer subset), random features.
counts = ratings["item_id"].value_counts()
kept = np.sort(counts.index.to_numpy()[: {n_items}])
ratings = ratings[ratings["item_id"].isin(kept)].reset_index(drop=True)
rng = np.random.default_rng({seed})
features = ItemFeatures(kept, rng.normal(size=(len(kept), {dim})).astype(np.float32), name="random{dim}")
assignment = rng.permutation(len(ratings)) % {n_folds}
cf = UserKNN(k=40) if {cf!r} == "knn" else BiasedMF(solver="als", n_factors=20, n_epochs=15)
frames, content_s = [], None
start = time.perf_counter()
for number in range({run_folds}):
    test_mask = assignment == number
    fold = Fold(number, ratings[~test_mask].reset_index(drop=True), ratings[test_mask].reset_index(drop=True),
                np.flatnonzero(test_mask))
    if number == 0:
        started = time.perf_counter()
        ContentPredictor(features).fit(fold.train).predict(fold.test["user_id"], fold.test["item_id"])
        content_s = time.perf_counter() - started
        start += content_s  # not part of the curve
    frames.append(fusion_curve([fold], features, cf_model=cf))
    print(f"  fusion: fold {{number + 1}}/{run_folds} ({{time.perf_counter() - start:.0f}}s)", file=sys.stderr, flush=True)
seconds = time.perf_counter() - start
summary = fusion_summary(pd.concat(frames))
best = summary[summary["best"] & (summary["subset"] == "all")].iloc[0]
report(seconds=seconds, content_fold_s=content_s, ratings=len(ratings), items=len(kept),
       best_w=float(best["weight"]), best_rmse=float(best["mean"]))
"""


def section_fusion(context: Context) -> dict:
    """VT2's fusion curve (w = 0..1) by k-fold CV on the ratings of the most-rated movies."""
    folder, args = ensure_dataset(context), context.args
    run_folds = args.fusion_run_folds or args.fusion_folds
    out = {"fusion_load_avg_before": load_avg()}
    for cf in args.fusion_cf.split(","):
        code = FUSION.format(
            folder=str(folder),
            seed=args.seed,
            n_items=args.fusion_items,
            dim=args.fusion_dim,
            n_folds=args.fusion_folds,
            run_folds=run_folds,
            cf=cf,
        )
        print(f"fusion: {args.fusion_folds}-fold, {run_folds} run, CF = {cf}", file=sys.stderr)
        result = run_child(code, context, timeout=6 * 3600)
        key = "fusion" if cf == "knn" else f"fusion_{cf}"
        out[f"{key}_s"] = round(result["seconds"] * args.fusion_folds / run_folds, 1)
        out[f"{key}_peak_gb"] = round(result["peak_gb"], 2)
        out[f"{key}_best_w"] = result["best_w"]
        if run_folds != args.fusion_folds:
            out[f"{key}_measured_folds"] = run_folds  # the time is extrapolated from these folds
        out["fusion_content_fold_s"] = round(result["content_fold_s"], 1)
        out["fusion_ratings"] = result["ratings"]
        out["fusion_items"] = result["items"]
    out["fusion_load_avg_after"] = load_avg()
    return out


MF = """
import numpy as np
from recsys.data.movielens import load_movielens_csv
from recsys.eval.metrics import rmse
from recsys.models.mf import BiasedMF
ratings = load_movielens_csv({folder!r}, "ml-25m").ratings[["user_id", "item_id", "rating"]]
rng = np.random.default_rng({seed})
test_mask = rng.random(len(ratings)) < 0.02  # a small holdout, to check the fit is a fit
train, test = ratings[~test_mask].reset_index(drop=True), ratings[test_mask].reset_index(drop=True)
del ratings
start = time.perf_counter()
model = BiasedMF(solver={solver!r}, n_factors={k}, n_epochs={sweeps}).fit(train)
seconds = time.perf_counter() - start
error = rmse(test["rating"].to_numpy(dtype=np.float64), model.predict(test["user_id"], test["item_id"]))
report(seconds=seconds, rmse=error, n_train=len(train))
"""


FM = """
import numpy as np
from recsys.data.movielens import load_movielens_csv
from recsys.features.baselines import genre_features
from recsys.models.fm import FactorizationMachine
dataset = load_movielens_csv({folder!r}, "ml-25m")
ratings = dataset.ratings[["user_id", "item_id", "rating"]]
genres = genre_features(dataset, np.unique(ratings["item_id"].to_numpy()))
start = time.perf_counter()
model = FactorizationMachine(n_factors={k}, side_features={{"genres": genres}}, n_epochs={sweeps}, solver="mcmc",
                             implicit={implicit!r})
model.fit(ratings)
report(seconds=time.perf_counter() - start, n_train=len(ratings), device=model.device_)
"""


def section_mf(context: Context) -> dict:
    """Biased MF on all the ratings (ALS by default; --mf-solvers als,mcmc), in a fresh process."""
    folder, args = ensure_dataset(context), context.args
    out = {"mf_load_avg_before": load_avg()}
    for solver in args.mf_solvers.split(","):
        code = MF.format(folder=str(folder), seed=args.seed, solver=solver, k=args.mf_k, sweeps=args.mf_sweeps)
        print(f"mf: {solver}, k={args.mf_k}, {args.mf_sweeps} sweeps", file=sys.stderr)
        result = run_child(code, context, timeout=4 * 3600)
        key = "mf_als" if solver == "als" else f"mf_{solver}"
        out[f"{key}_s"] = round(result["seconds"], 1)
        out[f"{key}_cpu_s"] = round(result["cpu_s"], 1)
        out[f"{key}_peak_gb"] = round(result["peak_gb"], 2)
        out[f"{key}_rmse"] = round(result["rmse"], 4)
        print(f"mf: {solver} {result['seconds']:.0f}s, peak {result['peak_gb']:.2f} GB", file=sys.stderr)
    if args.fm_sweeps:
        # FM MCMC (k = 10, genres): the bar is 100 sweeps on a GPU; here --fm-sweeps sweeps on this
        # device, the time per sweep and the peak memory (a sample is kept per sweep after burn-in).
        code = FM.format(folder=str(folder), k=args.fm_k, sweeps=args.fm_sweeps, implicit=args.fm_implicit)
        print(f"fm: mcmc, k={args.fm_k}, genres, implicit={args.fm_implicit}, {args.fm_sweeps} sweeps", file=sys.stderr)
        result = run_child(code, context, timeout=6 * 3600)
        out["fm_mcmc_s"] = round(result["seconds"], 1)
        out["fm_mcmc_sweeps"] = args.fm_sweeps
        out["fm_mcmc_s_per_sweep"] = round(result["seconds"] / args.fm_sweeps, 2)
        out["fm_mcmc_peak_gb"] = round(result["peak_gb"], 2)
        out["fm_implicit"] = args.fm_implicit
        out["fm_device"] = result["device"]
    out["mf_peak_gb"] = max(v for key, v in out.items() if key.endswith("_peak_gb"))
    out["mf_load_avg_after"] = load_avg()
    return out


SECTIONS: dict[str, Callable[[Context], dict]] = {
    "data": section_data,
    "knn": section_knn,
    "fusion": section_fusion,
    "mf": section_mf,
}


# ---- main ---------------------------------------------------------------------------------------
def device_name() -> str:
    try:
        from recsys.config import torch_device_name

        return torch_device_name()
    except ImportError:
        return "cpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="small", help=f"{', '.join(BENCH_SHAPES)} or custom (default: small)")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--movies", type=int, default=None)
    parser.add_argument("--ratings", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sections", default="data", help=f"comma-separated, from: {', '.join(SECTIONS)}")
    parser.add_argument("--workdir", default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--reuse", action="store_true", help="reuse a dataset already generated in --workdir")
    knn = parser.add_argument_group("knn section")
    knn.add_argument("--knn-modes", default="exact,approx", help="exact, approx or both (default)")
    knn.add_argument("--knn-ks", default=None, help="comma-separated K values (default 10,20,...,100)")
    knn.add_argument("--knn-candidates", type=int, default=200, help="approx: candidates per user")
    knn.add_argument("--knn-overlap-pairs", type=int, default=500, help="approx: pairs for the overlap")
    fusion = parser.add_argument_group("fusion section")
    fusion.add_argument("--fusion-items", type=int, default=13_606, help="most-rated movies kept (VT2: 13,606)")
    fusion.add_argument("--fusion-dim", type=int, default=64, help="random item feature dimension")
    fusion.add_argument("--fusion-folds", type=int, default=10)
    fusion.add_argument("--fusion-run-folds", type=int, default=None, help="run only N folds, extrapolate")
    fusion.add_argument("--fusion-cf", default="knn", help="CF model(s): knn (UserKNN k=40), mf (BiasedMF ALS)")
    mf = parser.add_argument_group("mf section")
    mf.add_argument("--mf-solvers", default="als", help="als, mcmc or both")
    mf.add_argument("--mf-k", type=int, default=20)
    mf.add_argument("--mf-sweeps", type=int, default=15)
    mf.add_argument("--fm-sweeps", type=int, default=0, help="also FM MCMC (genres) for N sweeps (0: no)")
    mf.add_argument("--fm-k", type=int, default=10)
    mf.add_argument(
        "--fm-implicit",
        default="none",
        choices=("none", "user", "item", "both"),
        help="FM implicit-feedback blocks (default none: the bar's FM is ids + genres; the model's default is both)",
    )
    args = parser.parse_args(argv)
    if args.shape == "small" and all(v is None for v in (args.users, args.movies, args.ratings)):
        shape = BENCH_SHAPES["small"]
    else:
        shape = shape_from_args(args.shape, args.users, args.movies, args.ratings)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    temporary = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="recsys-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    context = Context(args, workdir, shape)
    started = time.perf_counter()
    try:
        for name in sections:
            context.results.update(SECTIONS[name](context))
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        "shape": shape.name,
        **context.results,
        "device": device_name(),
        "cpus": os.cpu_count(),
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(" ".join(f"{key}={value}" for key, value in summary.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
