"""The README's Python examples run as printed (the training one shrunk to a few steps)."""

import re

import pytest

from tests.conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_its_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.slow
def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "runs/quick" lands here
    code = "\n".join(BLOCKS)
    shrunk = 'ib.config.tiny(ib.preset("quick"))'
    assert 'ib.preset("quick")' in code
    namespace: dict = {}
    exec(compile(code.replace('ib.preset("quick")', shrunk), "README.md", "exec"), namespace)
    assert (tmp_path / "runs" / "quick" / "checkpoint.pt").is_file()
