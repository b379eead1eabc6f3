import json

import pytest

from induction_bigram import ConfigError, ModelConfig, RunConfig, TaskConfig, TrainConfig, preset
from induction_bigram.config import PRESETS


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
        ("model.d_model=big", "model.d_model must be a int, got 'big'"),
        ("train.steps", "key=value"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        preset("quick").with_overrides([override])


def test_unknown_preset_lists_choices():
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*quick"):
        preset("huge")


def test_vocab_from_corpus_must_agree_with_explicit_value():
    cfg = preset("quick")
    assert cfg.with_vocab(65).model.d_vocab == 65
    with pytest.raises(ConfigError, match="d_vocab = 40 but the corpus has 65"):
        cfg.with_overrides(["model.d_vocab=40"]).with_vocab(65)
