"""A sweep's figure: any number against any swept key, mean and 95% interval over seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from induction_bigram.errors import ConfigError


def read_aggregate(folder: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The swept keys and the per-point aggregate of a sweep folder."""
    path = Path(folder) / "aggregate.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return list(data["keys"]), list(data["points"])
    except OSError:
        raise ConfigError(f"no sweep at {folder} (no aggregate.json)") from None
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path} is not a sweep aggregate ({err})") from None


def plot_sweep(keys: list[str], points: list[dict[str, Any]], x: str, y: str) -> Figure:
    """Mean of ``y`` against ``x`` with its 95% interval as error bars, one line per value of
    the other swept keys."""
    if x not in keys:
        raise ConfigError(f"--x {x!r} is not a swept key; the sweep swept {', '.join(keys) or 'nothing'}")
    if not any(f"{y}.mean" in p for p in points):
        numbers = sorted({k[: -len(".mean")] for p in points for k in p if k.endswith(".mean")})
        raise ConfigError(f"--y {y!r} is not a number of this sweep; it has {', '.join(numbers[:12])}, ...")
    others = [k for k in keys if k != x]
    lines: dict[tuple, list[dict[str, Any]]] = {}
    for point in points:
        if f"{y}.mean" in point:
            lines.setdefault(tuple(point[k] for k in others), []).append(point)
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    numeric = all(_is_number(p[x]) for p in points)
    for line, members in lines.items():
        members.sort(key=lambda p: float(p[x]) if numeric else str(p[x]))
        xs = [float(p[x]) if numeric else str(p[x]) for p in members]
        means = [p[f"{y}.mean"] for p in members]
        below = [m - p[f"{y}.low"] for m, p in zip(means, members)]
        above = [p[f"{y}.high"] - m for m, p in zip(means, members)]
        label = ", ".join(f"{k}={v}" for k, v in zip(others, line)) or None
        ax.errorbar(xs, means, yerr=[below, above], marker="o", capsize=3, label=label)
    seeds = sorted({p["n"] for p in points})
    ax.set(xlabel=x, ylabel=y, title=f"{y} against {x}: mean and 95% interval over {'/'.join(map(str, seeds))} seeds")
    ax.title.set_fontsize(9)
    if others:
        ax.legend(fontsize=7)
    return fig


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
