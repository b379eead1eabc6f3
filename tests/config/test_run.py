import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from induction_bigram import preset
from induction_bigram.config import PRESETS, ModelConfig, RunConfig, TaskConfig, TrainConfig
from induction_bigram.errors import ConfigError

pytestmark = pytest.mark.backend_free("tl3")  # configs are parsed the same whatever TransformerLens is installed


def test_presets_round_trip_through_json():
    for name in PRESETS:
        cfg = preset(name)
        assert RunConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_reference_preset_is_the_theory_recipe():
    cfg = preset("reference")
    assert (cfg.model.d_model, cfg.task.seq_len, cfg.task.n_triggers) == (256, 256, 5)
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.momentum) == ("sgd", 0.03, 0.9)
    assert (cfg.train.weight_decay, cfg.train.batch_size, cfg.train.steps) == (1e-4, 512, 1000)
    assert cfg.task.trigger_mode == "fixed" and cfg.task.output_mode == "uniform"
    assert cfg.train.loss == "in_context"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: ModelConfig(d_model=0), ["model.d_model", "0"]),
        (lambda: ModelConfig(d_model=3.5), ["model.d_model", "3.5"]),
        (lambda: ModelConfig(positional="alibi"), ["model.positional", "alibi"]),
        (lambda: ModelConfig(d_mlp=32), ["model.d_mlp"]),
        (lambda: TaskConfig(n_triggers=0), ["task.n_triggers", "0"]),
        (lambda: TaskConfig(trigger_mode="sometimes"), ["task.trigger_mode", "sometimes"]),
        (lambda: TrainConfig(steps=-1), ["train.steps", "-1"]),
        (lambda: TrainConfig(momentum=1.5), ["train.momentum", "1.5"]),
        (lambda: TrainConfig(optimizer="lion"), ["train.optimizer", "lion"]),
    ],
)
def test_invalid_fields_name_field_and_value(make, words):
    with pytest.raises(ConfigError) as err:
        make()
    for word in words:
        assert word in str(err.value)


def test_context_shorter_than_sequence_is_rejected():
    with pytest.raises(ConfigError, match=r"model.n_ctx \(32\).*task.seq_len \(64\)"):
        preset("quick").with_overrides(["model.n_ctx=32"])


def test_more_triggers_than_vocabulary_is_rejected():
    with pytest.raises(ConfigError, match="task.n_triggers"):
        preset("quick").with_overrides({"model.d_vocab": 4, "task.n_triggers": 5})


def test_overrides_parse_by_field_type():
    cfg = preset("quick").with_overrides(
        [
            "model.d_model=32",
            "train.lr=0.5",
            "task.no_repeat=true",
            "model.d_vocab=none",
            "model.ffn=relu",
            "model.d_mlp=8",
            "train.device=cpu",
        ]
    )
    assert cfg.model.d_model == 32 and cfg.train.lr == 0.5 and cfg.task.no_repeat is True
    assert cfg.model.ffn == "relu" and cfg.model.d_mlp == 8 and cfg.train.device == "cpu"


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.depth=3", "unknown config key 'model.depth'"),
        ("optim.lr=3", "unknown config key 'optim.lr'"),
        ("model.d_model=big", "model.d_model must be an int, got 'big'"),
        ("train.steps", "key=value"),
        ("train.lr=inf", "train.lr must be a finite number, got inf"),
        ("train.lr=nan", "train.lr must be a finite number, got nan"),
        ("train.momentum=nan", "train.momentum must be a finite number"),
        ("train.weight_decay=-inf", "train.weight_decay must be a finite number"),
        ("train.seed=99999999999999999999", "train.seed must be <= 18446744073709551615"),
        ("model.seed=-1", "model.seed must be >= 0"),
        ("train.device=banana", "train.device must be 'auto' or a torch device"),
    ],
)
def test_bad_overrides_are_one_clear_config_error(override, message):
    """Unknown keys, unparsable values, non-finite floats and unusable seeds or devices."""
    with pytest.raises(ConfigError, match=message):
        preset("quick").with_overrides([override])


def test_unknown_preset_lists_choices():
    with pytest.raises(ConfigError, match="unknown run preset 'huge'.*quick"):
        preset("huge")


def test_vocab_from_corpus_must_agree_with_explicit_value():
    cfg = preset("quick")
    assert cfg.with_vocab(65).model.d_vocab == 65
    with pytest.raises(ConfigError, match="d_vocab = 40 but the corpus has 65"):
        cfg.with_overrides(["model.d_vocab=40"]).with_vocab(65)


# -- property-based: every input is a RunConfig or a ConfigError, never another exception ---

_SECTIONS = {f.name: f.type for f in dataclasses.fields(RunConfig)}
KNOWN_KEYS = RunConfig.keys()
NASTY_VALUES = st.one_of(
    st.text(),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e400", "-0", "0x10", "1_000", "None", "null", "true", "ape"]),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.just("9" * 5000),
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _is_config_or_config_error(make):
    try:
        result = make()
    except ConfigError:
        return
    assert isinstance(result, RunConfig)


@FAST
@given(key=st.one_of(st.sampled_from(KNOWN_KEYS), st.text()), value=NASTY_VALUES)
def test_any_set_override_is_a_run_config_or_a_config_error(key, value):
    _is_config_or_config_error(lambda: preset("quick").with_overrides([f"{key}={value}"]))


@FAST
@given(item=st.text())
def test_any_override_string_is_a_run_config_or_a_config_error(item):
    _is_config_or_config_error(lambda: preset("quick").with_overrides([item]))


JSON_LIKE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
FIELD_VALUES = st.dictionaries(
    st.one_of(st.sampled_from([f.name for cls in _SECTIONS.values() for f in dataclasses.fields(cls)]), st.text()),
    JSON_LIKE,
    max_size=4,
)


@FAST
@given(
    data=st.one_of(
        JSON_LIKE,
        st.dictionaries(st.one_of(st.sampled_from(list(_SECTIONS)), st.text()), st.one_of(FIELD_VALUES, JSON_LIKE)),
    )
)
def test_from_dict_on_any_json_is_a_run_config_or_a_config_error(data):
    _is_config_or_config_error(lambda: RunConfig.from_dict(data))


@FAST
@given(data=st.fixed_dictionaries({}, optional={section: FIELD_VALUES for section in _SECTIONS}))
def test_from_dict_on_any_section_values_is_a_run_config_or_a_config_error(data):
    _is_config_or_config_error(lambda: RunConfig.from_dict(data))


def test_a_section_that_is_not_an_object_is_a_config_error():
    with pytest.raises(ConfigError, match="config section 'train' must be an object"):
        RunConfig.from_dict({"train": None})
