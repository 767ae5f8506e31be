"""Run the bad-input corpus and the fault scenarios of tests/bad_inputs.py and count the outcomes.

Every generated bad input (malformed MovieLens lines, huge ids, wrong encodings, empty files,
broken and odd-mode images, cut videos, zip bombs and links, bad CLI numbers, split files, ...)
must be *handled cleanly* (one `error:` line naming the file and line, a per-item failure with its
reason, or a correct reading of an input that is valid after all); every fault (SIGKILL during
an extraction, full and read-only disks, patched and real where the machine allows mount
namespaces, three processes on a cold cache, every kind of damaged cache file) must be
*survived* without *data loss* (nothing later read back wrong).

    .venv/bin/python bench/bad_inputs_report.py [--data-dir DIR] [--trials N] [--quick]

`--trials` repeats the issue's bar: 3 concurrent cold-cache `recsys evaluate rmse-k --dataset
ml-100k` runs, all exiting 0 (real ML-100K from --data-dir). Unhandled cases are listed on stderr.
Last line: inputs_tried=… handled_cleanly=… faults_tried=… faults_survived=… data_lost=…
faults_skipped=… concurrent_trials_ok=…/…
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _data import REPOSITORY, SHARED_DATA_DIR


def load_corpus():
    """tests/bad_inputs.py, loaded by path (the tests and this report share one corpus)."""
    spec = importlib.util.spec_from_file_location("bad_inputs", REPOSITORY / "tests" / "bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_inputs"] = module
    spec.loader.exec_module(module)
    return module


def concurrent_trial(data_dir: Path, workdir: Path) -> tuple[bool, list[int]]:
    """The issue's exact bar: three `recsys evaluate rmse-k` at once on one fresh cache folder."""
    cache = Path(tempfile.mkdtemp(prefix="trial-", dir=workdir))
    env = dict(os.environ, RECSYS_CACHE_DIR=str(cache))
    argv = [sys.executable, "-m", "recsys", "evaluate", "rmse-k", "--dataset", "ml-100k", "--data-dir", str(data_dir)]
    running = [subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)]
    codes = [process.wait() for process in running]
    for process in running:
        process.stderr.close()
    return codes == [0, 0, 0], codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA_DIR, help="real ML-100K for the race trials")
    parser.add_argument("--trials", type=int, default=5, help="concurrent cold-cache trials (0: none)")
    parser.add_argument("--quick", action="store_true", help="skip the slow faults (kill, real mounts, races)")
    args = parser.parse_args()

    corpus = load_corpus()
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as tmp:
        workdir = Path(tmp)
        os.environ["RECSYS_CACHE_DIR"] = str(workdir / "cache")
        os.environ.setdefault("RECSYS_DEVICE", "cpu")
        start = time.perf_counter()
        cases = corpus.all_cases()
        handled = 0
        for number, case in enumerate(cases):
            result = corpus.run_case(case, workdir / f"case-{number}")
            logging.getLogger("recsys").setLevel(logging.ERROR)  # the CLI set WARNING: keep stderr to the verdicts
            handled += result.handled
            if not result.handled:
                print(f"not handled: {case.id}: {result.detail[:300]}", file=sys.stderr)
        inputs_s = time.perf_counter() - start

        slow = {"kill-mid-extraction", "read-only-cache-real", "full-disk-real", "concurrent-first-use"}
        tried = survived = lost = skipped = 0
        for number, (name, scenario) in enumerate(corpus.all_faults()):
            if args.quick and name in slow:
                continue
            folder = workdir / f"fault-{number}"
            folder.mkdir()
            os.environ["RECSYS_CACHE_DIR"] = str(folder / "cache")
            try:
                if name == "concurrent-first-use" and (args.data_dir / "ml-100k" / "u.data").is_file():
                    result = corpus.fault_concurrent_first_use(folder, args.data_dir)
                else:
                    result = scenario(folder)
            except Exception as exc:  # noqa: BLE001 - a scenario that crashes is a fault not survived
                result = corpus.FaultResult(name, False, False, f"crashed: {type(exc).__name__}: {exc}")
            if result.skipped:
                skipped += 1
                print(f"skipped: {name}: {result.skipped}", file=sys.stderr)
                continue
            tried += 1
            survived += result.survived
            lost += result.data_lost
            if not result.survived or result.data_lost:
                print(f"not survived: {name}: {result.detail[:300]}", file=sys.stderr)

        trials_ok = 0
        trials = args.trials if (args.data_dir / "ml-100k" / "u.data").is_file() else 0
        for trial in range(trials):
            ok, codes = concurrent_trial(args.data_dir, workdir)
            trials_ok += ok
            print(f"trial {trial + 1}: exit codes {codes}", file=sys.stderr)
    print(f"corpus_s={inputs_s:.1f} total_s={time.perf_counter() - start:.1f}", file=sys.stderr)
    print(
        f"inputs_tried={len(cases)} handled_cleanly={handled} faults_tried={tried} faults_survived={survived} "
        f"data_lost={lost} faults_skipped={skipped} concurrent_trials_ok={trials_ok}/{trials}"
    )


if __name__ == "__main__":
    main()
