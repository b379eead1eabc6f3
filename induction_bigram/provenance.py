"""Where a report's numbers came from: the code's commit (and whether the package had uncommitted
changes), the package, torch and TransformerLens versions, the device, the seeds and the wall
time, recorded in ``numbers.json`` and REPORT.md's header (docs/results.md). A resumed
report loads runs that an earlier invocation trained, maybe at another commit: each sweep record
keeps the code that ran it (:func:`code_state`), and the report counts its runs by that code."""

from __future__ import annotations

import os
import platform
import subprocess
from collections import Counter
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

SOURCE = Path(__file__).resolve().parents[1]
"""The folder above the package: a git checkout when the package runs from one (editable)."""
CODE = ("induction_bigram", "pyproject.toml")
"""What the numbers depend on, relative to :data:`SOURCE`."""


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


def code_state() -> dict[str, Any]:
    """The code that runs now: its ``commit`` (``None`` where the package does not run from a git
    checkout) and whether the package (its source, its data files, ``pyproject.toml``) has
    uncommitted changes, ``dirty``; a report or a run written into the checkout is no change to
    the code."""
    commit = _git("rev-parse", "HEAD")
    status = None if commit is None else _git("status", "--porcelain", "--", *CODE)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def provenance(seeds: int, wall_seconds: float, run_codes: Sequence[dict[str, Any] | None] = ()) -> dict[str, Any]:
    """The record of a report (:func:`code_state` and the versions);
    ``runs_by_code`` counts the report's runs by the code that trained them (``run_codes``, one
    per run: its sweep record's, ``None`` where the record predates them)."""
    counts = Counter(None if code is None else (code.get("commit"), code.get("dirty")) for code in run_codes)
    return {
        **code_state(),
        "runs_by_code": [
            {"commit": key[0], "dirty": key[1], "runs": n}
            if key
            else {"commit": None, "dirty": None, "runs": n, "unrecorded": True}
            for key, n in sorted(counts.items(), key=lambda item: -item[1])
        ],
        "induction_bigram": _version("induction-bigram"),
        "torch": torch.__version__,
        "transformer_lens": _version("transformer-lens"),
        "python": platform.python_version(),
        "device": device(),
        "seeds": seeds,
        "wall_seconds": wall_seconds,
    }


def provenance_line(record: dict[str, Any]) -> str:
    """REPORT.md's line for :func:`provenance`: the runs' code too where any run was trained by
    other code than the report's (a resumed report)."""
    line = (
        f"Made by {_code_words(record)}; induction-bigram {record.get('induction_bigram')}, "
        f"torch {record.get('torch')}, TransformerLens {record.get('transformer_lens')}, Python {record.get('python')}."
    )
    runs = record.get("runs_by_code", [])
    if all(
        not r.get("unrecorded") and (r["commit"], r["dirty"]) == (record.get("commit"), record.get("dirty"))
        for r in runs
    ):
        return line
    trained = ", ".join(f"{'code not recorded' if r.get('unrecorded') else _code_words(r)} ({r['runs']})" for r in runs)
    return f"{line} Its runs (a resumed report keeps those trained before) were trained by {trained}."


def _code_words(code: dict[str, Any]) -> str:
    commit = code.get("commit")
    words = "code not from a git checkout" if commit is None else f"commit {commit[:12]}"
    return words + (" with uncommitted changes" if code.get("dirty") else "")
