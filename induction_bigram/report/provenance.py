"""Where a report's numbers came from: the code's commit (and whether the tree had uncommitted
changes), the package, torch and TransformerLens versions, the device, the seeds and the wall
time, recorded in ``numbers.json`` and REPORT.md's header (docs/THEORY.md section 8)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

SOURCE = Path(__file__).resolve().parents[2]
"""The folder above the package: a git checkout when the package runs from one (editable)."""


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=SOURCE, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def device() -> str:
    """The machine the runs use, in words: the GPU's name, else the CPU's cores (not this
    process's torch threads, which say nothing of the runs: each sets its own)."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def provenance(out_dir: Path, seeds: int, wall_seconds: float) -> dict[str, Any]:
    """The record of a report written to ``out_dir``: ``commit`` is ``None`` where the package
    does not run from a git checkout; ``dirty`` counts changes outside ``out_dir`` itself (the
    report being written is no change to the code)."""
    commit = _git("rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        try:
            excluded = [f":(exclude){out_dir.resolve().relative_to(SOURCE)}"]
        except ValueError:  # the report is written outside the checkout
            excluded = []
        status = _git("status", "--porcelain", "--", ".", *excluded)
        dirty = None if status is None else bool(status)
    return {
        "commit": commit,
        "dirty": dirty,
        "induction_bigram": _version("induction-bigram"),
        "torch": torch.__version__,
        "transformer_lens": _version("transformer-lens"),
        "python": platform.python_version(),
        "device": device(),
        "seeds": seeds,
        "wall_seconds": wall_seconds,
    }


def provenance_line(record: dict[str, Any]) -> str:
    """REPORT.md's line for :func:`provenance`."""
    commit = record.get("commit")
    code = "code not from a git checkout" if commit is None else f"commit {commit[:12]}"
    if record.get("dirty"):
        code += " with uncommitted changes"
    return (
        f"Made by {code}; induction-bigram {record.get('induction_bigram')}, torch {record.get('torch')}, "
        f"TransformerLens {record.get('transformer_lens')}, Python {record.get('python')}."
    )
