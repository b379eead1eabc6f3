"""The config machinery on a toy config: nested sections, tuples, presets, errors that name the key."""

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from induction_bigram.config import Config, Presets, TrainConfig, at_least, section
from induction_bigram.errors import ConfigError

pytestmark = pytest.mark.backend_free("tl3")  # configs are parsed the same whatever TransformerLens is installed


@section("toy")
class ToySettings:
    widths: tuple[int, ...] = at_least(1, (16, 32))
    pairs: tuple[tuple[int, int], ...] = ((1, 1), (2, 1))
    fractions: tuple[float, ...] = (0.5, 1.0)
    label: str | None = None

    def check(self) -> None:
        if list(self.widths) != sorted(self.widths):
            raise ConfigError(f"toy.widths must increase, got {self.widths}")


@dataclass(frozen=True)
class ToyConfig(Config):
    train: TrainConfig = TrainConfig()
    toy: ToySettings = ToySettings()


@dataclass(frozen=True)
class OuterConfig(Config):
    inner: ToyConfig = ToyConfig()


def test_keys_are_dotted_and_nested():
    assert "toy.widths" in ToyConfig.keys() and "train.lr" in ToyConfig.keys()
    assert "inner.toy.pairs" in OuterConfig.keys()


@pytest.mark.parametrize(
    "override, expected",
    [
        ("toy.widths=8,16,64", (8, 16, 64)),
        ("toy.widths=[4]", (4,)),
        ("toy.pairs=[[3, 1], [1, 3]]", ((3, 1), (1, 3))),
        ("toy.fractions=0.25", (0.25,)),
        ("toy.label=none", None),
        ("toy.label=abc", "abc"),
    ],
)
def test_set_strings_parse_by_the_annotated_type(override, expected):
    key = override.split("=")[0]
    config = ToyConfig().with_overrides([override])
    assert getattr(config.toy, key.split(".")[1]) == expected


def test_json_round_trip_turns_lists_back_into_tuples():
    config = OuterConfig().with_overrides(["inner.toy.pairs=[[5, 6]]", "inner.train.lr=0.5"])
    assert OuterConfig.from_dict(__import__("json").loads(config.to_json())) == config


@pytest.mark.parametrize(
    "override, message",
    [
        ("toy.widths=0,4", "toy.widths must be >= 1"),
        ("toy.widths=32,16", "toy.widths must increase"),
        ("toy.widths=a,b", "toy.widths must be a list of (an int)"),
        ("toy.pairs=1,2", "toy.pairs must be a list of"),
        ("toy.widht=1", "unknown config key 'toy.widht' (did you mean toy.widths?"),
        ("toy=1", "unknown config key 'toy'"),
        ("train.lr=-1", "train.lr must be >= 0.0"),
    ],
)
def test_a_bad_key_or_value_is_one_error_naming_it(override, message):
    with pytest.raises(ConfigError) as err:
        ToyConfig().with_overrides([override])
    assert message in str(err.value)


def test_errors_inside_a_nested_config_name_the_full_key():
    with pytest.raises(ConfigError, match=r"inner\.toy\.widths must be >= 1"):
        OuterConfig().with_overrides(["inner.toy.widths=0"])
    with pytest.raises(ConfigError, match=r"unknown config key 'inner\.toy\.nope'"):
        OuterConfig.from_dict({"inner": {"toy": {"nope": 1}}})


def test_presets_build_fresh_configs_and_name_the_choices():
    presets = Presets(
        "toy", {"small": lambda: ToyConfig(), "big": lambda: ToyConfig().with_overrides(["toy.widths=64"])}
    )
    assert list(presets) == ["small", "big"] and presets["big"].toy.widths == (64,)
    with pytest.raises(ConfigError, match="unknown toy preset 'huge'; choose one of small, big"):
        presets["huge"]


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(OuterConfig.keys()), value=st.text(max_size=12))
def test_any_override_is_a_config_or_a_config_error(key, value):
    try:
        result = OuterConfig().with_overrides([f"{key}={value}"])
    except ConfigError:
        return
    assert isinstance(result, OuterConfig)
