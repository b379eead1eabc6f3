"""The command line a new user meets first (issue 31): ``--help`` works for every command, and
it starts without the heavy imports (their time is benchmarks/bench_startup.py's business)."""

import subprocess
import sys

import pytest

import induction_bigram
from induction_bigram.cli import build_parser
from tests.conftest import REPO, run_benchmark

pytestmark = pytest.mark.backend_free("tl3")  # the command line starts without TransformerLens (checked here)

HEAVY = ("torch", "transformer_lens", "matplotlib", "ray", "pandas", "circuitsvis")


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


# main(argv) as the shell sees it: argparse leaves --help by SystemExit
_MAIN = """\
from induction_bigram.cli import main
def run(*argv):
    try:
        return main(list(argv))
    except SystemExit as e:
        return e.code
"""


@pytest.mark.parametrize(
    "code",
    [
        "import induction_bigram",
        "import induction_bigram.cli",
        _MAIN + "assert run('--help') == 0",
        _MAIN + "assert run('train') == 2",
        _MAIN + "assert run('sweep-plot', '--help') == 0",
        _MAIN + "assert run('evaluate', 'no/such/run', '--seed', 'x') == 2",
    ],
    ids=["import the package", "import the cli", "--help", "a usage error", "a command's --help", "a bad flag"],
)
def test_the_cli_starts_without_torch_or_transformer_lens(code):
    check = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_the_lazy_names_are_the_public_names():
    assert set(induction_bigram._MODULE_OF) | {n for n in induction_bigram.__all__ if n.endswith("Error")} == set(
        induction_bigram.__all__
    )
    assert set(induction_bigram.__all__) <= set(dir(induction_bigram))
    from induction_bigram.model import build_model

    assert induction_bigram.build_model is build_model
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        induction_bigram.no_such_name


def test_the_public_api_is_small_and_the_rest_is_one_attribute_away():
    """About as many top-level names as TransformerLens's (issue 30); the other public names
    live in their stage's subpackage, each reachable as ``ib.<subpackage>`` without an import."""
    assert len(induction_bigram.__all__) <= 20
    assert {"anymodel", "config", "errors", "incontext", "memories", "model", "pretrained"} <= set(
        induction_bigram._SUBPACKAGES
    )
    assert set(induction_bigram._SUBPACKAGES) <= set(dir(induction_bigram))
    assert induction_bigram.errors.DataError.__module__ == "induction_bigram.errors"
    assert induction_bigram.anymodel.score_heads.__module__.startswith("induction_bigram.anymodel")


@pytest.mark.benchmark
@pytest.mark.backend_free("tl4")
def test_the_startup_benchmark_prints_every_row():
    out = run_benchmark("bench_startup.py", "--repeats", "1")
    rows = {line[:40].strip(): line[40:].split() for line in out.splitlines()[2:]}
    assert {"induction-bigram --help", "import induction_bigram", "import transformer_lens"} <= set(rows)
    assert all(float(seconds) > 0 for row in rows.values() for seconds in row)
