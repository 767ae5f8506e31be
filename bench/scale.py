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


SECTIONS: dict[str, Callable[[Context], dict]] = {"data": section_data}


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
