"""Results to JSON and back by one generic mechanism, driven by dataclass fields and their type hints.

Writing is :func:`~induction_bigram.files.json_safe` (a dataclass is an object of its fields, a
tensor or tuple a list, NaN and infinities ``null``); reading is :func:`decode`, which rebuilds a
value of a type hint from that JSON: nested dataclasses, ``tuple`` (JSON lists back to tuples),
``list``, ``dict`` with string keys, ``X | None``, jaxtyping tensors (``Float`` as float64,
``Int`` as int64, ``Bool``), and ``null`` as NaN wherever the hint is a float but not ``None``.
A result class derives from :class:`Record` for ``to_dict`` / ``from_dict``; a field that reads
back otherwise (an infinite loss, a float32 tensor) names its reader with :func:`hook`; keys a
class computes from its fields (a verdict, a gap) come from :meth:`Record.derived`.

Why in the package rather than a library (measured 2026-12-07): dacite is on no index these
machines reach; cattrs 26.2 is (with attrs), but is in neither venv, and on a probe of our hints
it needs hooks for NaN as null, for unions of scalars (``float | bool`` raises
``StructureHandlerNotFoundError``), for tensors and configs, and a flattening of its exception
groups (``While structuring Out (1 sub-exception)``) into our one-line errors: about 40 lines of
glue plus a dependency, against this module's 100.
"""

import dataclasses
import math
import types
from collections.abc import Callable
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import torch
from jaxtyping import AbstractArray, Bool, Int

from induction_bigram.errors import DataError
from induction_bigram.files import json_safe

R = TypeVar("R", bound="Record")
_HOOK = "serialise"
_DTYPES = {Int: torch.long, Bool: torch.bool}  # any other jaxtyping dtype (Float, ...) reads as float64


def hook(read: Callable[[Any], Any]) -> dict[str, Any]:
    """Field metadata (``field(metadata=hook(read))``): the field's JSON value is read with
    ``read`` instead of by its type hint (writing needs no hook: every value writes as JSON)."""
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
        hints = [args[0]] * len(items) if args[1:] == (...,) else args
        return tuple(decode(h, v) for h, v in zip(hints, items, strict=True))
    if origin is dict:
        return {k: decode(args[1], v) for k, v in _expect(dict, data, hint).items()}
    if isinstance(hint, type) and issubclass(hint, AbstractArray):
        dtype = _DTYPES.get(hint.dtype, torch.float64)
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
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in _expect(dict, data, cls):
            read = field.metadata.get(_HOOK) or (lambda v, h=_hints(cls)[field.name]: decode(h, v))
            kwargs[field.name] = read(data[field.name])
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise DataError(f"{cls.__name__}: missing key {field.name!r}")
    value = cls(**kwargs)
    unknown = sorted(set(data) - set(kwargs) - set(value.derived() if isinstance(value, Record) else ()))
    if unknown:
        raise DataError(f"{cls.__name__}: unknown key {unknown[0]!r}")
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _expect(kind: type, data: Any, hint: Any) -> Any:
    if not isinstance(data, kind):
        name = getattr(hint, "__name__", str(hint))
        raise DataError(f"{name}: expected a JSON {'object' if kind is dict else 'list'}, got {type(data).__name__}")
    return data


def _nan_for_null(data: Any) -> Any:
    """A (nested) list of floats from JSON with every null back to NaN."""
    return [_nan_for_null(v) for v in data] if isinstance(data, list) else math.nan if data is None else data
