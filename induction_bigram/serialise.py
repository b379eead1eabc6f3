"""Results to JSON and back by one generic mechanism, driven by dataclass fields and their type hints.

:func:`json_safe` writes (a dataclass as the object of its fields, tuples and tensors as lists,
NaN as ``null``); :func:`decode` reads a type hint's value back: nested dataclasses, tuples,
lists, ``dict`` with string keys, ``X | None``, jaxtyping tensors (``Float`` as float64, ``Int``,
``Bool``), ``null`` as NaN where the hint is a float but not ``None``. A result class derives from
:class:`Record`; a field read otherwise names its reader with :func:`hook`; keys computed from
the fields (a verdict, a gap) come from :meth:`Record.derived`.

Why in the package (measured 2026-12-07; both install from PyPI, neither is in the venvs, and
neither writes): dacite 1.9 read our scalar hints, but its type hooks match exact types, so a
jaxtyping tensor (a class per annotation) failed (``WrongTypeError``), and it has no per-field
hook and names the field but not the class; cattrs 26.2 needed hooks for NaN as null, unions of
scalars (``float | bool``: ``StructureHandlerNotFoundError``), tensors and configs, and its
exception groups (``While structuring Out (1 sub-exception)``) flattened to one line.
"""

import dataclasses
import math
import sys
import types
from collections.abc import Callable
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from jaxtyping import AbstractArray, Bool, Int

from induction_bigram.errors import DataError

R = TypeVar("R", bound="Record")
_HOOK = "serialise"
_DTYPES = {Int: "long", Bool: "bool"}  # torch dtypes by name; any other jaxtyping dtype (Float, ...) reads as float64


def hook(read: Callable[[Any], Any]) -> dict[str, Any]:
    """Field metadata, ``field(metadata=hook(read))``: read the field's JSON with ``read``, not by its type hint."""
    return {_HOOK: read}


class Record:
    """Base of a result dataclass: :meth:`to_dict` and :meth:`from_dict` by the generic mechanism."""

    def derived(self) -> dict[str, Any]:
        """Keys computed from the fields, written after them; :meth:`from_dict` accepts them and recomputes them."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON data: every field, then :meth:`derived` (module doc)."""
        return json_safe(self)

    @classmethod
    def from_dict(cls: type[R], data: Any) -> R:
        """Rebuild from :meth:`to_dict` or its JSON; an unknown or missing key is a :class:`DataError`."""
        return decode(cls, data)


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON data: a dataclass as the object of its fields, then of
    :meth:`Record.derived`; tuples and tensors as lists; every NaN or infinity as ``None``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return json_safe(data | value.derived() if isinstance(value, Record) else data)
    # torch by sys.modules: a tensor exists only once torch is imported, and the CLI starts without it
    if (torch := sys.modules.get("torch")) is not None and isinstance(value, torch.Tensor):
        return json_safe(value.tolist())
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def decode(hint: Any, data: Any) -> Any:
    """The value of type ``hint`` that ``data`` (JSON, as :func:`json_safe` wrote it) stands for."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if data is None:
            return None if type(None) in args else math.nan
        rest = [a for a in args if a is not type(None)]
        return decode(rest[0], data) if len(rest) == 1 else data  # a union of scalars is as JSON has it
    if hint is float:
        return math.nan if data is None else data
    if origin is list:
        return [decode(args[0], v) for v in _expect(list, data, hint)]
    if origin is tuple:
        items = _expect(list, data, hint)
        return tuple(decode(h, v) for h, v in zip(tuple_hints(hint, len(items)), items, strict=True))
    if origin is dict:
        return {k: decode(args[1], v) for k, v in _expect(dict, data, hint).items()}
    if isinstance(hint, type) and issubclass(hint, AbstractArray):
        import torch

        dtype = getattr(torch, _DTYPES.get(hint.dtype, "float64"))
        return torch.tensor(_nan_for_null(data) if dtype.is_floating_point else data, dtype=dtype)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not issubclass(hint, Record) and hasattr(hint, "from_dict"):  # a config: its checks, did-you-mean errors
            return hint.from_dict(data)
        return from_fields(hint, data)
    if hint is Any or origin is Literal or hint in (int, str, bool):
        return data
    raise TypeError(f"serialise cannot read the type {hint!r}")


def from_fields(cls: type, data: Any) -> Any:
    """The dataclass ``cls`` from a JSON object of its fields, each read by its type hint or its :func:`hook`
    (what :func:`decode` does for a dataclass; a class that writes its own layout calls it too)."""
    kwargs, hints = {}, field_types(cls)
    for field in dataclasses.fields(cls):
        if field.name in _expect(dict, data, cls):
            read = field.metadata.get(_HOOK)
            kwargs[field.name] = read(data[field.name]) if read else decode(hints[field.name], data[field.name])
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise DataError(f"{cls.__name__}: missing key {field.name!r}")
    value = cls(**kwargs)
    unknown = sorted(set(data) - set(kwargs) - set(value.derived() if isinstance(value, Record) else ()))
    if unknown:
        raise DataError(f"{cls.__name__}: unknown key {unknown[0]!r}")
    return value


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Each field of the dataclass ``cls`` and its type hint as an object: the annotation, resolved where it is a
    string (``from __future__ import annotations``). Not ``typing.get_type_hints`` alone: it returns {} for a
    ``no_type_check`` class, as every config section is (:func:`~induction_bigram.config.checks.section`)."""
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    if any(isinstance(hint, str) for hint in hints.values()):
        hints = {name: hint for name, hint in get_type_hints(cls).items() if name in hints}
    return hints


def tuple_hints(hint: Any, n: int) -> tuple[Any, ...]:
    """The item hints of the tuple hint ``hint`` for ``n`` items: X n times for ``tuple[X, ...]``, else its own."""
    args = get_args(hint)
    return (args[0],) * n if args[1:] == (...,) else args


def _expect(kind: type, data: Any, hint: Any) -> Any:
    if not isinstance(data, kind):
        name = getattr(hint, "__name__", str(hint))
        raise DataError(f"{name}: expected a JSON {'object' if kind is dict else 'list'}, got {type(data).__name__}")
    return data


def _nan_for_null(data: Any) -> Any:
    """A (nested) list of floats from JSON with every null back to NaN."""
    return [_nan_for_null(v) for v in data] if isinstance(data, list) else math.nan if data is None else data
