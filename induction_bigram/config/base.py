"""Composite configs and named presets.

A :class:`Config` is a frozen dataclass whose fields are sections (see
:func:`~induction_bigram.config.checks.section`) or other configs; every value in it has a
dotted key (``model.d_model``, ``lengths.multiples``, ``incontext.train.lr`` inside the report
config). :meth:`Config.from_dict` and :meth:`Config.with_overrides` turn JSON and ``--set``
strings into a checked config, and any bad key or value is one :class:`ConfigError` naming it.
"""

import dataclasses
import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, no_type_check

from induction_bigram.config.checks import from_json, parse, show
from induction_bigram.errors import ConfigError
from induction_bigram.files import dumps_json
from induction_bigram.serialise import field_types

C = TypeVar("C", bound="Config")


def _is_part(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every composite config: sections and sub-configs under dotted keys."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return dumps_json(self.to_dict(), sort_keys=True)

    @classmethod
    @no_type_check  # any JSON value gets a ConfigError naming it; runtime checkers must not pre-empt it
    def from_dict(cls: type[C], data: Any) -> C:
        """Rebuild from :meth:`to_dict` output; an unknown key anywhere is an error naming it.
        A missing section takes its defaults."""
        return _build(cls, data, "")

    def with_overrides(self: C, overrides: list[str] | dict[str, Any]) -> C:
        """Apply ``key=value`` overrides with dotted keys (strings are parsed by the field's
        annotated type, so ``--set`` values need no quoting)."""
        items = overrides.items() if isinstance(overrides, dict) else map(_split, overrides)
        data = self.to_dict()
        for key, value in items:
            if not isinstance(key, str):
                raise ConfigError(f"config keys are strings such as 'model.d_model', got {show(key)}")
            holder, tp = _locate(type(self), data, key)
            name = key.rpartition(".")[2]
            holder[name] = parse(value, tp, key) if isinstance(value, str) else value
        return type(self).from_dict(data)

    @classmethod
    def keys(cls) -> list[str]:
        """Every dotted key this config accepts."""
        return list(_keys(cls, ""))

    def evaluation_seeds(self) -> dict[str, int]:
        """Each evaluation seed (a ``seed_field(evaluation=True)``: what the run is measured
        on, not what it trains on) by dotted key, with its value."""
        return dict(_evaluation_seeds(self, ""))


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = f"config section {prefix[:-1]!r}" if prefix else "a config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be an object of keys, got {show(data)}")
    types = field_types(cls)
    unknown = sorted(str(key) for key in data if key not in types)
    if unknown:
        raise ConfigError(f"unknown config key {prefix + unknown[0]!r}")
    if issubclass(cls, Config):
        parts = {name: _build(tp, data.get(name, {}), f"{prefix}{name}.") for name, tp in types.items()}
    else:
        parts = {name: from_json(value, types[name]) for name, value in data.items()}
    try:
        return cls(**parts)
    except ConfigError as err:
        if not prefix:
            raise
        message = str(err)
        own = f"{getattr(cls, 'SECTION', '')}."
        if not issubclass(cls, Config) and message.startswith(own):  # name the key where it sits
            raise ConfigError(prefix + message[len(own) :]) from None
        if issubclass(cls, Config):
            raise ConfigError(f"{prefix[:-1]}: {message}") from None
        raise


def _locate(cls: type, data: dict[str, Any], key: str) -> tuple[dict[str, Any], Any]:
    """The dict that holds ``key``'s value inside ``data`` and the key's annotated type."""
    if key not in (keys := cls.keys()):
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown config key {key!r} ({hint}every key: `induction-bigram presets NAME`)")
    *path, name = key.split(".")
    holder, tp = data, cls
    for part in path:
        holder, tp = holder[part], field_types(tp)[part]
    return holder, field_types(tp)[name]


def _evaluation_seeds(part: Any, prefix: str) -> Iterator[tuple[str, int]]:
    for field in dataclasses.fields(part):
        value = getattr(part, field.name)
        if dataclasses.is_dataclass(value):
            yield from _evaluation_seeds(value, f"{prefix}{field.name}.")
        elif field.metadata.get("evaluation"):
            yield f"{prefix}{field.name}", value


def _keys(cls: type, prefix: str) -> Iterator[str]:
    for name, tp in field_types(cls).items():
        if _is_part(tp):
            yield from _keys(tp, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"an override must look like key=value, got {item!r}")
    return key.strip(), value.strip()


class Presets(Generic[C]):
    """Named configs of one kind; ``presets[name]`` builds a fresh one, an unknown name is a
    :class:`ConfigError` listing the choices."""

    def __init__(self, kind: str, makers: dict[str, Callable[[], C]]):
        self.kind, self._makers = kind, dict(makers)

    def __getitem__(self, name: str) -> C:
        try:
            maker = self._makers[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.kind} preset {name!r}; choose one of {', '.join(self)}") from None
        return maker()

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)

    def __contains__(self, name: object) -> bool:
        return name in self._makers

    def doc(self, name: str) -> str:
        """The first line of the preset's docstring (what it is for)."""
        return ((self._makers[name].__doc__ or "").strip().splitlines() or [""])[0]
