"""`python -m recsys ...`: the headless twin of the dashboard.

Each subcommand lives beside the logic it drives and registers itself through an
`add_parser(subparsers)` function that sets `func`; this file only lists them, so that
every subsystem owns its own command without editing a shared file.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand name -> module that defines add_parser(subparsers)
COMMANDS = {
    "info": "recsys.data.commands",
    "download": "recsys.data.commands",
    "demo": "recsys.data.commands",
    "extract": "recsys.features.commands",
    "evaluate": "recsys.eval.commands",
    "audience-eval": "recsys.faces.commands",
    "topn": "recsys.eval.topn_commands",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that subcommand's module is imported (fast start:
    the feature and face modules pull in torch, which `info` does not need)."""
    parser = argparse.ArgumentParser(prog="python -m recsys", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    seen = set()
    modules = [COMMANDS[only]] if only in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # subsystem not installed in this build
        if module_name not in seen:
            module.add_parser(subparsers)
            seen.add(module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only=argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        # Expected failures (missing data, bad input, no weights) get one clear line, not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 1
