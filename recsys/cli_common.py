"""What the CLI's subcommands share: the progress bar on stderr, list-valued argument types and the
dataset options.

Each subcommand module (``recsys.data.commands``, ``recsys.eval.rank_commands``, ...) builds its own
parser; the pieces that were written once per command live here:

- :func:`tqdm_progress` / :func:`progress_bar`: the one CLI adapter for the shared progress
  signature ``progress(done, total, message)``, drawing a tqdm bar on stderr (stdout stays clean for
  tables and the final ``key=value`` line); :func:`progress_bar` closes it however the block ends;
- :func:`int_list`, :func:`positive_int_list`, :func:`float_list`, :func:`positive_int`: argparse
  types that refuse bad text with a usage error naming it;
- :func:`add_dataset_options`: ``--dataset`` (a registry name) and ``--data-dir``.

Importing this module loads no tqdm, pandas or torch.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator


# ---- progress -------------------------------------------------------------------------------------
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


@contextlib.contextmanager
def progress_bar(description: str, unit: str = "step", leave: bool = False) -> Iterator:
    """:func:`tqdm_progress` for a ``with`` block: the bar is closed however the block ends.

    The defaults are the study commands' (steps, erased when done)."""
    bar = tqdm_progress(description, unit=unit, leave=leave)
    try:
        yield bar
    finally:
        bar.close()


# ---- argument types -------------------------------------------------------------------------------
def _numbers(text: str, kind: type, what: str) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from exc


def int_list(text: str) -> list[int]:
    """``"10,20,50"`` -> [10, 20, 50] (any integers)."""
    return _numbers(text, int, "integers")


def positive_int_list(text: str) -> list[int]:
    """Like :func:`int_list`, but at least one value and every value >= 1."""
    values = int_list(text)
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def float_list(text: str) -> list[float]:
    """``"0,0.5,1"`` -> [0.0, 0.5, 1.0]."""
    return _numbers(text, float, "numbers")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


# ---- options --------------------------------------------------------------------------------------
def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """``--dataset`` (registry name, ml-100k by default) and ``--data-dir`` (the folder of dataset folders)."""
    parser.add_argument("--dataset", default="ml-100k", help="dataset registry name (default ml-100k)")
    parser.add_argument("--data-dir", default=None, help="folder holding the dataset folders")
