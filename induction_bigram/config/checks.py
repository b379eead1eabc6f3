"""Field checks and override parsing shared by every config of the package.

A *section* is a frozen dataclass of plain values (:func:`section`); its fields are type- and
range-checked from their annotations when it is built, and a bad value is a
:class:`ConfigError` naming ``section.field`` and the value. The same annotations parse the
strings of ``--set key=value``.
"""

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, no_type_check

from induction_bigram.errors import ConfigError
from induction_bigram.serialise import field_types, tuple_hints

SEED_MAX = 2**64 - 1


def at_least(minimum: int | float, default: Any) -> Any:
    """A dataclass field with a default and a lower bound that validation enforces."""
    return dataclasses.field(default=default, metadata={"min": minimum})


def seed_field(default: int = 0, *, evaluation: bool = False) -> Any:
    """A seed field: an int that ``torch.Generator.manual_seed`` accepts, [0, 2**64).

    ``evaluation=True`` marks the seed of what a run is measured on (evaluation batches,
    designed prompts): a sweep's seed s adds s to it (:meth:`Config.evaluation_seed_keys`), so
    that an interval over seeds covers the prompts as well as the training."""
    metadata = {"min": 0, "max": SEED_MAX} | ({"evaluation": True} if evaluation else {})
    return dataclasses.field(default=default, metadata=metadata)


def section(name: str):
    """Class decorator for a config section: a frozen dataclass whose fields are checked on
    construction (errors name ``name.field``), before the class's own ``check`` method runs.

    Runtime type checkers are told to keep out (``no_type_check``): the checks here name the
    field and the value, which a checker's generic message would pre-empt.
    """

    def wrap(cls: type) -> type:
        own_check = getattr(cls, "check", None)

        def __post_init__(self) -> None:
            check_fields(self, name)
            if own_check is not None:
                own_check(self)

        cls.__post_init__ = __post_init__
        cls.SECTION = name
        return no_type_check(dataclasses.dataclass(frozen=True)(cls))

    return wrap


def check_fields(obj: Any, section_name: str) -> None:
    """Type- and range-check every field of a section from its annotations."""
    types_ = field_types(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{section_name}.{f.name}"
        if not matches(value, types_[f.name]):
            raise ConfigError(f"{name} must be {describe(types_[f.name])}, got {show(value)}")
        low, high = f.metadata.get("min"), f.metadata.get("max")
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(
                    f"{name} must be {'a finite number' if item is value else 'finite numbers'}, got {value!r}"
                )
            if low is not None and item is not None and item < low:
                raise ConfigError(f"{name} must be >= {low}, got {value!r}")
            if high is not None and item is not None and item > high:
                raise ConfigError(f"{name} must be <= {high}, got {value!r}")


def one_of(name: str, value: Any, choices: Iterable[str]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``, naming the closest one."""
    choices = list(choices)
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {show(value)}{hint}")


def check_context(n_ctx: int, seq_len: int) -> None:
    """Raise :class:`ConfigError` unless the model's context ``model.n_ctx`` holds a whole
    training sequence of ``task.seq_len`` tokens (every family with a task shares the check)."""
    if n_ctx < seq_len:
        raise ConfigError(
            f"model.n_ctx ({n_ctx}) is smaller than task.seq_len ({seq_len}): the model cannot read a whole sequence"
        )


def show(value: Any) -> str:
    """``repr(value)``, shortened for messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _arms(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)


def matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` has the annotated type (Literal, unions, tuples, int, float, str, bool)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, arg) for arg in typing.get_args(tp))
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        hints = tuple_hints(tp, len(value))
        return len(hints) == len(value) and all(map(matches, value, hints))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def describe(tp: Any) -> str:
    """The annotated type in words, for error messages."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of ({describe(args[0])})"
        return f"a list of {len(args)}: " + ", ".join(describe(a) for a in args)
    return "None" if tp is type(None) else ("an " if tp.__name__[0] in "aeiou" else "a ") + tp.__name__


def from_json(value: Any, tp: Any) -> Any:
    """A JSON value as the annotated type expects it: lists become tuples where a tuple is
    annotated (anything else is left for :func:`check_fields` to judge)."""
    for arm in _arms(tp):
        if typing.get_origin(arm) is tuple and isinstance(value, list):
            hints = tuple_hints(arm, len(value))
            if len(hints) == len(value):
                return tuple(map(from_json, value, hints))
    return value


def parse(text: str, tp: Any, key: str) -> Any:
    """Parse an override string by the annotated type, trying each arm of a union.

    Lists are written ``1,2,3`` or as JSON (``[[1, 2], [3, 4]]`` for a list of pairs).
    """
    arms = _arms(tp)
    if type(None) in arms and text.lower() in ("none", "null"):  # before str, which takes anything
        return None
    for arm in arms:
        if typing.get_origin(arm) is Literal and text in typing.get_args(arm):
            return text
        if arm is bool and text.lower() in ("true", "false", "1", "0"):
            return text.lower() in ("true", "1")
        if arm in (int, float):
            try:
                return arm(text)
            except ValueError:
                continue
        if arm is str:
            return text
        if typing.get_origin(arm) is tuple:
            parsed = _parse_list(text, arm, key)
            if parsed is not None:
                return parsed
    raise ConfigError(f"{key} must be {describe(tp)}, got {text!r}")


def _parse_list(text: str, tp: Any, key: str) -> tuple | None:
    if text.strip().startswith("["):
        try:
            value = from_json(json.loads(text), tp)
        except ValueError:
            return None
        return value if matches(value, tp) else None
    args = typing.get_args(tp)
    if not (len(args) == 2 and args[1] is Ellipsis):
        return None
    try:
        value = tuple(parse(item.strip(), args[0], key) for item in text.split(",") if item.strip())
    except ConfigError:
        return None
    return value
