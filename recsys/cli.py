"""`recsys ...` (or `python -m recsys ...`): the headless twin of the dashboard.

Each subcommand lives beside the logic it drives and registers itself through an
`add_parser(subparsers)` function that sets `func`; this file only lists them, so that
every subsystem owns its own command without editing a shared file.

Expected failures (a :class:`recsys.errors.RecsysError`: missing data, a malformed file, a bad
parameter, no weights, an unwritable folder) end with one ``error: <message>`` line on stderr and
exit status 1; anything else is a bug and keeps its traceback. ``-v`` logs decisions to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from recsys.errors import RecsysError, describe_os_error
from recsys.logs import level_from_verbosity, setup_logging

log = logging.getLogger(__name__)

# subcommand name -> module that defines add_parser(subparsers)
COMMANDS = {
    "info": "recsys.data.commands",
    "download": "recsys.data.commands",
    "demo": "recsys.data.commands",
    "posters": "recsys.data.commands",
    "generate": "recsys.data.generate",
    "extract": "recsys.features.commands",
    "evaluate": "recsys.eval.commands",
    "audience-eval": "recsys.faces.commands",
    "topn": "recsys.eval.topn_commands",
    "rank": "recsys.eval.rank_commands",
}

VERBOSE_HELP = "log decisions to stderr (-v: info, -vv: debug; default: warnings only)"


def _add_verbose(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0, dest=dest, help=VERBOSE_HELP)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that subcommand's module is imported (fast start:
    the feature and face modules pull in torch, which `info` does not need)."""
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__.splitlines()[0])
    _add_verbose(parser, "verbose")
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
    # `-v` is accepted after the subcommand too (`recsys info -v`); a separate dest, because a
    # subparser's default would otherwise overwrite the value given before the subcommand.
    for subparser in subparsers.choices.values():
        _add_verbose(subparser, "verbose_after")
    return parser


def _subcommand(argv: list[str]) -> str | None:
    """The first argument that is not an option (the subcommand), for the fast-start parser."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only=_subcommand(argv))
    args = parser.parse_args(argv)
    setup_logging(level_from_verbosity(args.verbose + getattr(args, "verbose_after", 0)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RecsysError as exc:
        # Expected failures (missing data, bad input, no weights) get one clear line, not a traceback.
        log.debug("%s", type(exc).__name__, exc_info=True)
        print(f"error: {exc.user_message()}", file=sys.stderr)
        return 1
    except OSError as exc:
        # The environment, not the code: a folder that cannot be read, a disk that is full.
        log.debug("%s", type(exc).__name__, exc_info=True)
        print(f"error: {describe_os_error(exc, 'access')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
