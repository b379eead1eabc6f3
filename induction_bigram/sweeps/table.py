"""A sweep's results: one row per run, and an aggregate per grid point with a 95% interval.

``runs.csv`` (and ``runs.jsonl``, the records as they arrived) hold a row per run: its name,
status, every swept key, the seed, the run's numbers (dotted keys, e.g.
``in_context_accuracy`` or ``memories.W_K1.recall``), its error when it failed.
``aggregate.csv`` / ``aggregate.json`` hold a row per grid point: the swept values, the number
of finished seeds, and for each number its mean and Student-t 95% interval over those seeds
(:func:`induction_bigram.intervals.mean_interval`), clipped to the number's range where its name
says it has one (:func:`induction_bigram.intervals.range_of`). Failed runs count in no aggregate.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from induction_bigram.files import atomic_write_text, dumps_json
from induction_bigram.intervals import mean_interval, range_of

TIMING = ("seconds", "elapsed_seconds", "tokens_per_second", "wall_seconds", "train_seconds")
"""Numbers that measure the machine, not the model: kept in the rows, never averaged."""


def flatten(data: Any, prefix: str = "") -> dict[str, float]:
    """The numbers in a nested dict under dotted keys (lists and text are left out)."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out |= flatten(value, f"{prefix}{key}.")
    elif isinstance(data, (int, float)) and prefix:  # a bool counts as 0 / 1
        out[prefix[:-1]] = float(data)
    return out


@dataclass(frozen=True)
class SweepTable:
    """The rows of a sweep and their aggregate per grid point."""

    keys: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, spec: Any, runs: list[Any], records: dict[str, dict[str, Any]]) -> "SweepTable":
        rows = []
        for run in runs:
            record = records.get(run.name, {"status": "not run"})
            row = {"run": run.name, "status": record["status"], **run.values, "seed": run.seed}
            row |= record.get("metrics", {})
            if "error" in record:
                row["error"] = record["error"]
            if "seconds" in record:
                row["seconds"] = record["seconds"]
            rows.append(row)
        return cls(tuple(spec.grid), tuple(rows))

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] == "failed"]

    def aggregate(self) -> list[dict[str, Any]]:
        """Per grid point: the swept values, ``n`` finished seeds, and for every number its
        ``mean`` with the interval ``low``/``high`` (keys ``<number>.mean`` etc.)."""
        points: dict[tuple, list[dict[str, Any]]] = {}
        for row in self.rows:
            points.setdefault(tuple(str(row[k]) for k in self.keys), []).append(row)
        table = []
        for group in points.values():
            done = [row for row in group if row["status"] == "done"]
            entry: dict[str, Any] = {key: group[0][key] for key in self.keys} | {"n": len(done), "runs": len(group)}
            for name in _numbers(done):
                values = [row[name] for row in done if isinstance(row.get(name), float) and math.isfinite(row[name])]
                if values:
                    mean, low, high = mean_interval(values, bounds=range_of(name))
                    entry |= {f"{name}.mean": mean, f"{name}.low": low, f"{name}.high": high}
            table.append(entry)
        return table

    def write(self, folder: str | Path) -> None:
        """``runs.csv``, ``aggregate.csv`` and ``aggregate.json`` in ``folder``."""
        folder = Path(folder)
        aggregate = self.aggregate()
        atomic_write_text(folder / "runs.csv", _csv(list(self.rows)))
        atomic_write_text(folder / "aggregate.csv", _csv(aggregate))
        atomic_write_text(folder / "aggregate.json", dumps_json({"keys": list(self.keys), "points": aggregate}) + "\n")


def _numbers(rows: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names |= {k: None for k, v in row.items() if isinstance(v, float) and k not in TIMING and k != "seed"}
    return list(names)


def _csv(rows: list[dict[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for row in rows:
        columns |= dict.fromkeys(row)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
