"""``make test``'s two suites (tests/run_suites.sh): a ``backend_free`` test runs in exactly the
one it names, every other test in both, and a plain pytest run keeps every test."""

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.conftest import REPO, SUITES, pytest_collection_modifyitems

pytestmark = pytest.mark.backend_free("tl3")  # the split is conftest's, not TransformerLens's


class _Collected:
    """What the hook reads of a collected test: its name and its backend_free marker."""

    def __init__(self, name: str, *suite: str):
        self.name, self.mark = name, pytest.mark.backend_free(*suite).mark if suite else None

    def get_closest_marker(self, name: str):
        return self.mark if name == "backend_free" else None


def _split(items: list[_Collected]) -> tuple[list[str], list[str]]:
    deselected: list[_Collected] = []
    config = SimpleNamespace(hook=SimpleNamespace(pytest_deselected=lambda items: deselected.extend(items)))
    pytest_collection_modifyitems(config, items)
    return [item.name for item in items], [item.name for item in deselected]


@pytest.mark.parametrize("suite, other", [("tl3", "tl4"), ("tl4", "tl3")])
def test_a_backend_free_test_runs_only_in_the_suite_it_names(monkeypatch, suite, other):
    monkeypatch.setenv("INDUCTION_BIGRAM_SUITE", suite)
    items = [_Collected("both"), _Collected("here", suite), _Collected("there", other)]
    assert _split(items) == (["both", "here"], ["there"])


def test_outside_make_test_every_test_runs(monkeypatch):
    monkeypatch.delenv("INDUCTION_BIGRAM_SUITE", raising=False)
    assert _split([_Collected("both"), _Collected("tl3 only", "tl3")]) == (["both", "tl3 only"], [])


@pytest.mark.parametrize("suite, marker", [("tl5", ()), ("tl3", ("tl5",)), ("tl3", ())])
def test_an_unknown_suite_is_a_usage_error(monkeypatch, suite, marker):
    monkeypatch.setenv("INDUCTION_BIGRAM_SUITE", suite)
    items = [_Collected("x", *marker)] if marker else [_Collected("x", "tl3", "tl4")]
    with pytest.raises(pytest.UsageError, match="tl5|one suite"):
        _split(items)


@pytest.mark.slow
def test_a_real_collection_leaves_the_other_suites_tests_out():
    """Through pytest itself: the Ray tests of tests/sweeps are TL 3.9's, so the TL 4.3 suite
    leaves them out and keeps the module's other tests."""
    module = "tests/sweeps/test_honest.py"
    env = {**os.environ, "INDUCTION_BIGRAM_SUITE": "tl4"}
    argv = [sys.executable, "-m", "pytest", "-o", "addopts=", "--collect-only", "-q", "-p", "no:cacheprovider", module]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    tests = [line.split("::")[1] for line in done.stdout.splitlines() if "::" in line]
    assert done.returncode == 0 and tests and "2 deselected" in done.stdout, done.stdout + done.stderr
    assert not any("ray" in test for test in tests)


@pytest.mark.parametrize("suite", SUITES)
def test_the_suite_script_runs_each_venv_under_its_name(suite):
    script = (REPO / "tests" / "run_suites.sh").read_text()
    assert f"suite {suite} " in script and "INDUCTION_BIGRAM_SUITE=$name" in script
