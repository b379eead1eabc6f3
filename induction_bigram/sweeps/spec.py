"""What a sweep is: a target (a training run or a study), its preset and ``--set`` overrides,
a grid of keys with lists of values, and a number of seeds; and the runs it expands to.

Each grid point x seed is one run, named by its swept values (``model.d_model=32__seed=1``)
so that the same sweep asked for again finds the same runs. A seed s sets ``train.seed`` and
``model.seed`` (the training batches and every frozen random matrix) and adds s to every
evaluation seed of the config (:meth:`~induction_bigram.config.Config.evaluation_seeds`: the
evaluation batch, the designed prompts), so that each seed is measured on prompts of its own
and an interval over seeds covers the prompts as well as the training; seed 0 keeps the
preset's prompts.
"""

import dataclasses
import hashlib
import itertools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from induction_bigram.config import PRESETS as RUN_PRESETS
from induction_bigram.config import Config, Presets
from induction_bigram.config.checks import show
from induction_bigram.errors import ConfigError
from induction_bigram.studies import STUDIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the same parser, as a package before Python 3.11
    import tomli as tomllib

SEED_KEYS = ("train.seed", "model.seed")
TRAIN = "train"
"""The target that trains one run from a run preset (every other target is a study)."""


def targets() -> list[str]:
    """What a sweep can run: ``train`` or any study."""
    return [TRAIN, *STUDIES]


def presets_of(target: str) -> Presets:
    if target == TRAIN:
        return RUN_PRESETS
    try:
        return STUDIES[target].presets
    except KeyError:
        raise ConfigError(f"unknown sweep target {target!r}; choose one of {', '.join(targets())}") from None


def config_class(target: str) -> type[Config]:
    """The config class of ``target``'s runs."""
    presets = presets_of(target)
    return type(presets[next(iter(presets))])


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its folder name, its swept values, its seed and its config."""

    name: str
    values: dict[str, Any]
    seed: int
    config: Config


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A sweep (:func:`load_spec` reads one from TOML or JSON; the CLI builds one from flags).

    Attributes:
        target: ``"train"`` or a study name (:data:`induction_bigram.studies.STUDIES`).
        preset: the target's preset (``None``: its default).
        overrides: ``key=value`` strings applied to every run.
        grid: key -> the values it takes (each a ``--set`` string or a JSON value).
        seeds: how many seeds (0, 1, ..., seeds - 1).
        config: a config to start from instead of the preset (the report sweeps its studies'
            configs over seeds this way).
    """

    target: str = TRAIN
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    grid: dict[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)
    seeds: int = 1
    config: Config | None = None

    def __post_init__(self) -> None:
        presets_of(self.target)
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 1:
            raise ConfigError(f"seeds must be an integer >= 1, got {show(self.seeds)}")
        for key, values in self.grid.items():
            if not values:
                raise ConfigError(f"grid key {key!r} has no values")
            if key in SEED_KEYS:
                raise ConfigError(
                    f"grid key {key!r}: seeds are swept with --seeds, which sets {' and '.join(SEED_KEYS)}"
                )
            texts = [_as_text(value) for value in values]
            twice = next((text for i, text in enumerate(texts) if text in texts[:i]), None)
            if twice is not None:  # one run folder for two runs: they would clash, and count twice
                raise ConfigError(f"grid key {key!r} lists the value {twice!r} twice; give each value once")

    def to_dict(self) -> dict[str, Any]:
        data = {
            "target": self.target,
            "preset": self.preset,
            "overrides": list(self.overrides),
            "grid": {key: list(values) for key, values in self.grid.items()},
            "seeds": self.seeds,
        }
        return data | ({"config": self.config.to_dict()} if self.config is not None else {})

    @classmethod
    def from_dict(cls, data: Any) -> "SweepSpec":
        if not isinstance(data, dict):
            raise ConfigError(f"a sweep must be an object of keys, got {show(data)}")
        unknown = sorted(set(data) - {"target", "preset", "overrides", "set", "grid", "seeds", "config"})
        if unknown:
            raise ConfigError(f"unknown sweep key {unknown[0]!r} (keys: target, preset, set, grid, seeds)")
        overrides = data.get("overrides", [])
        if isinstance(data.get("set"), dict):  # TOML's natural form: [set] key = value
            overrides = [*overrides, *(f"{k}={_as_text(v)}" for k, v in data["set"].items())]
        grid = data.get("grid", {})
        if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
            raise ConfigError(f"grid must map keys to lists of values, got {show(grid)}")
        target = data.get("target", TRAIN)
        config = data.get("config")
        return cls(
            target=target,
            preset=data.get("preset"),
            overrides=tuple(overrides),
            grid={key: tuple(values) for key, values in grid.items()},
            seeds=data.get("seeds", 1),
            config=None if config is None else config_class(target).from_dict(config),
        )

    def base(self) -> Config:
        """The config every run starts from: ``config`` or the preset, with the overrides."""
        presets = presets_of(self.target)
        try:
            config = self.config or presets[self.preset or next(iter(presets))]
        except ConfigError as err:
            raise ConfigError(f"preset: {err}") from None
        return config.with_overrides(list(self.overrides))

    def runs(self) -> list[SweepRun]:
        """Every grid point x seed, each config checked now (a bad value fails before any run)."""
        base = self.base()
        keys = list(self.grid)
        runs = []
        points: dict[str, dict[str, Any]] = {}
        for combination in itertools.product(*(self.grid[key] for key in keys)):
            values = dict(zip(keys, combination))
            point = base.with_overrides({k: _as_text(v) for k, v in values.items()})
            same = points.setdefault(point.to_json(), values)
            if same is not values:  # e.g. 0.1 and 1e-1: the same runs under two names, counted twice
                raise ConfigError(f"the grid points {same} and {values} are the same config; give each once")
            for seed in range(self.seeds):
                shifted = {key: value + seed for key, value in point.evaluation_seeds().items()}
                config = point.with_overrides({key: seed for key in SEED_KEYS} | shifted)
                runs.append(SweepRun(run_name(values, seed), values, seed, config))
        return runs


def run_name(values: dict[str, Any], seed: int) -> str:
    """A folder name that says the run's swept values; a hash where a value is not
    filename-safe (a path, say)."""
    parts = [f"{key}={_as_text(value)}" for key, value in values.items()] + [f"seed={seed}"]
    name = "__".join(parts)
    if re.fullmatch(r"[A-Za-z0-9._=,+-]+", name) and len(name) <= 120:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"run-{digest}__seed={seed}"


def _as_text(value: Any) -> str:
    """A grid or ``[set]`` value as ``--set`` text: strings as they are, lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)


def parse_grid(items: list[str]) -> dict[str, tuple[str, ...]]:
    """``--grid key=v1,v2,...`` (repeatable) as a grid; a list-valued key takes JSON lists:
    ``--grid 'capacity.widths=[16,32];[64]'`` separates its values with ``;``."""
    grid: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise ConfigError(f"--grid takes key=v1,v2,..., got {item!r}")
        separator = ";" if text.lstrip().startswith("[") else ","
        grid[key.strip()] = tuple(v.strip() for v in text.split(separator) if v.strip())
    return grid


def load_spec(path: str | Path) -> SweepSpec:
    """A sweep from a ``.toml`` or ``.json`` file (keys: target, preset, set, grid, seeds)."""
    path = Path(path)
    reader: Callable[[str], Any] = tomllib.loads if path.suffix == ".toml" else json.loads
    try:
        data = reader(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read the sweep file {path}: {err.strerror or err}") from None
    except ValueError as err:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ConfigError(f"{path} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {err}") from None
    try:
        return SweepSpec.from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
