"""The CLI's contract: expected failures are one `error:` line and exit 1, bugs keep their traceback,
`-v` logs decisions to stderr, and the `recsys` console script is installed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.cli import main


@pytest.fixture(autouse=True)
def quiet_recsys_logger():
    """main() configures the recsys logger; put it back so other tests see the default."""
    logger = logging.getLogger("recsys")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


def test_an_expected_failure_is_one_error_line_and_exit_1(tmp_path, capsys):
    assert main(["info", "--dataset", "ml-5m", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset 'ml-5m'") and err.count("\n") == 1
    assert "Traceback" not in err
    assert main(["info", "--dataset", "ml-1m", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: dataset 'ml-1m' not found") and "recsys download ml-1m" in err


def test_a_bug_is_not_turned_into_a_polite_message(monkeypatch):
    """A ValueError/RuntimeError that is not a RecsysError is a bug: it keeps its traceback."""
    from recsys.data import commands

    def buggy(_args):
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(commands, "_info", buggy)  # add_parser binds it when main() builds the parser
    with pytest.raises(ValueError, match="broadcast"):
        main(["info"])


def test_verbose_logs_decisions_to_stderr_and_default_is_quiet(capsys, isolated_cache):
    assert main(["info", "--dataset", "demo", "--json"]) == 0
    quiet = capsys.readouterr()
    assert quiet.out.startswith("{") and "INFO" not in quiet.err  # stdout stays a clean JSON object
    assert main(["-v", "info", "--dataset", "demo", "--json"]) == 0
    verbose = capsys.readouterr()
    assert verbose.out.startswith("{") and "INFO recsys.data.demo: demo dataset read from" in verbose.err
    assert main(["info", "--dataset", "demo", "--json", "-vv"]) == 0  # after the subcommand too
    assert "recsys.data.demo" in capsys.readouterr().err


def test_console_script_and_module_entry_point_print_help():
    script = Path(sys.executable).with_name("recsys")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable}: run `pip install -e .` (the Makefile does)")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    for command in ([str(script), "--help"], [sys.executable, "-m", "recsys", "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        assert "usage: recsys" in done.stdout and "--verbose" in done.stdout and "info" in done.stdout
