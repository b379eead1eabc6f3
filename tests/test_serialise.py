"""The generic JSON mechanism (induction_bigram.serialise) on hand-made dataclasses: every case
has its expected JSON and value written out."""

import json
import math
from dataclasses import dataclass, field

import pytest
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from induction_bigram.errors import DataError
from induction_bigram.files import dumps_json
from induction_bigram.serialise import Record, decode, hook


@dataclass(frozen=True)
class Inner(Record):
    head: tuple[int, int]
    score: float


@dataclass(frozen=True)
class Outer(Record):
    loss: float
    maybe: float | None
    flags: dict[str, float | bool]
    inner: Inner | None
    inners: tuple[Inner, ...] = ()
    counts: dict[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class WithDerived(Record):
    a: float
    b: float

    @property
    def total(self) -> float:
        return self.a + self.b

    def derived(self) -> dict[str, float]:
        return {"total": self.total}


@dataclass(frozen=True)
class Tensors(Record):
    grid: Float[Tensor, "rows cols"]
    ids: Int[Tensor, " n"]
    mask: Bool[Tensor, " n"]
    infinite: dict[str, float] = field(default_factory=dict, metadata=hook(lambda d: {k: math.inf for k in d}))


def _through_json(record: Record) -> object:
    return json.loads(dumps_json(record.to_dict()))


def test_nan_and_infinity_are_null_and_read_back_as_nan_where_the_hint_is_a_float():
    value = Outer(math.nan, None, {"r2": math.inf, "grows": True}, Inner((1, 2), -math.inf))
    data = _through_json(value)
    assert data == {
        "loss": None,
        "maybe": None,
        "flags": {"r2": None, "grows": True},
        "inner": {"head": [1, 2], "score": None},
        "inners": [],
        "counts": {},
    }
    back = Outer.from_dict(data)
    assert math.isnan(back.loss) and back.maybe is None and math.isnan(back.flags["r2"]) and back.flags["grows"] is True
    assert back.inner.head == (1, 2) and math.isnan(back.inner.score)


def test_tuples_come_back_as_tuples_and_nested_optional_dataclasses_as_dataclasses():
    value = Outer(1.5, 2.0, {}, None, (Inner((0, 1), 0.25), Inner((1, 0), 0.5)), {"n": 3, "none": None})
    assert Outer.from_dict(_through_json(value)) == value
    assert Outer.from_dict(_through_json(value)).inners[1].head == (1, 0)
    assert dumps_json(Outer.from_dict(_through_json(value)).to_dict()) == dumps_json(value.to_dict())


def test_derived_keys_are_written_after_the_fields_and_recomputed_on_reading():
    assert list(WithDerived(1.0, 2.0).to_dict().items()) == [("a", 1.0), ("b", 2.0), ("total", 3.0)]
    assert WithDerived.from_dict({"a": 1.0, "b": 2.0, "total": 3.0}) == WithDerived(1.0, 2.0)


def test_tensors_read_back_with_their_jaxtyping_dtype_and_a_hook_overrides_the_hint():
    value = Tensors(torch.tensor([[0.5, math.nan]]), torch.tensor([3, 4]), torch.tensor([True, False]), {"x": 1.0})
    data = _through_json(value)
    assert data == {"grid": [[0.5, None]], "ids": [3, 4], "mask": [True, False], "infinite": {"x": 1.0}}
    back = Tensors.from_dict(data)
    assert back.grid.dtype == torch.float64 and back.grid[0, 0] == 0.5 and back.grid[0, 1].isnan()
    assert back.ids.dtype == torch.long and back.ids.tolist() == [3, 4]
    assert back.mask.dtype == torch.bool and back.mask.tolist() == [True, False]
    assert back.infinite == {"x": math.inf}


def test_a_type_hint_alone_reads_too():
    grid = decode(list[list[float]], [[1.0, None]])
    assert grid[0][0] == 1.0 and math.isnan(grid[0][1])
    assert decode(dict[str, tuple[int, ...]], {"a": [1, 2]}) == {"a": (1, 2)}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"head": [1, 2], "score": 0.5, "extra": 1}, "Inner: unknown key 'extra'"),
        ({"head": [1, 2]}, "Inner: missing key 'score'"),
        ({"a": 1.0, "b": 2.0, "totl": 3.0}, "WithDerived: unknown key 'totl'"),
        ([1, 2], "Inner: expected a JSON object, got list"),
    ],
)
def test_an_unknown_or_missing_key_is_one_line_naming_the_key_and_the_class(data, message):
    cls = WithDerived if "a" in data else Inner
    with pytest.raises(DataError) as caught:
        cls.from_dict(data)
    assert str(caught.value) == message and "\n" not in str(caught.value)


def test_a_nested_bad_key_names_the_inner_class():
    with pytest.raises(DataError, match="^Inner: missing key 'head'$"):
        Outer.from_dict({"loss": 1.0, "maybe": None, "flags": {}, "inner": {"score": 1.0}})
