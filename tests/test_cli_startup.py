"""The command line a new user meets first (issue 31): ``--help`` works for every command."""

import subprocess
import sys

import pytest

from induction_bigram.cli import build_parser
from tests.conftest import REPO


def _commands() -> list[str]:
    subparsers = next(a for a in build_parser()._actions if a.choices and isinstance(a.choices, dict))
    return list(subparsers.choices)


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "induction_bigram", *argv], cwd=REPO, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", [[], *([c] for c in _commands())], ids=lambda c: " ".join(c) or "top level")
def test_help_exits_0_for_the_top_level_and_every_command(command):
    done = _cli(*command, "--help")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith(f"usage: induction-bigram {' '.join(command)}".rstrip())


def test_a_bare_command_points_to_a_help_that_works():
    done = _cli()
    assert done.returncode == 2 and done.stdout == ""
    assert "see `induction-bigram --help`" in done.stderr and done.stderr.count("\n") == 1
