"""The ``standard`` model: a standard TL model trained on plain text (issue 15)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from induction_bigram.anymodel import track_head_scores
from induction_bigram.cli import main as cli_main
from induction_bigram.config.standard import STANDARD_PRESETS, StandardConfig, standard_preset
from induction_bigram.data.text import TextWindows, encode_text, text_vocab
from induction_bigram.errors import ConfigError, DataError
from induction_bigram.model import Model, build_standard_model
from induction_bigram.training.checkpoint import load, load_checkpoint
from induction_bigram.training.trainer import train
from tests.conftest import shakespeare_text_path

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 40


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_config_presets_round_trip_and_overrides():
    assert list(STANDARD_PRESETS) == ["standard", "standard-test"]
    cfg = standard_preset("standard")
    assert (cfg.model.n_layers, cfg.model.n_heads, cfg.model.normalization) == (2, 8, "LN")
    assert StandardConfig.from_dict(json.loads(cfg.to_json())) == cfg
    changed = cfg.with_overrides(["model.n_heads=8", "train.lr=0.003", "data.text=a.txt"])
    assert (changed.model.n_heads, changed.train.lr, changed.data.text) == (8, 0.003, "a.txt")
    with pytest.raises(ConfigError, match="model.n_heads"):
        cfg.with_overrides(["model.n_heads=0"])
    with pytest.raises(ConfigError, match="unknown config key"):
        cfg.with_overrides(["model.n_head=2"])
    with pytest.raises(ConfigError, match="model.d_mlp=64 needs train.fused_loss=false"):
        cfg.with_overrides(["model.d_mlp=64"])  # the fused loss has no MLPs
    assert cfg.with_overrides(["model.d_mlp=64", "train.fused_loss=false"]).model.d_mlp == 64


def test_the_model_is_a_standard_tl_model_with_several_heads_and_layer_norm():
    cfg = standard_preset("standard-test").model
    model = build_standard_model(cfg, "cpu", vocab=text_vocab(TEXT))
    assert isinstance(model, Model)  # HookedTransformer on TL 3, TransformerBridge on TL 4
    assert model.cfg.n_heads > 1 and model.cfg.normalization_type == "LN" and model.cfg.attn_only
    assert model.to_str_tokens("the cat") == list("the cat")
    _, cache = model.run_with_cache(model.to_tokens("the cat sat"))
    assert cache["blocks.0.attn.hook_pattern"].shape == (1, cfg.n_heads, 11, 11)
    assert isinstance(model.generate("the", max_new_tokens=3, verbose=False), str)
    again = build_standard_model(cfg, "cpu", vocab=text_vocab(TEXT))  # seeded
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_the_state_dict_is_exactly_a_plain_hooked_transformers():
    from transformer_lens import HookedTransformer

    model = build_standard_model(standard_preset("standard-test").model, "cpu", vocab=text_vocab(TEXT))
    with pytest.warns(DeprecationWarning):  # TL 3 says HookedTransformer is deprecated
        plain = HookedTransformer(model.cfg)
    plain.load_state_dict(model.state_dict())


@pytest.mark.parametrize("positional", ["rotary", "shortformer"])
def test_other_positional_encodings_are_plain_tl_models_too(positional):
    cfg = replace(standard_preset("standard-test").model, positional=positional)
    model = build_standard_model(cfg, "cpu", vocab=text_vocab(TEXT))
    assert model.cfg.positional_embedding_type == positional
    from transformer_lens import HookedTransformer

    with pytest.warns(DeprecationWarning):
        plain = HookedTransformer(model.cfg)
    plain.load_state_dict(model.state_dict())  # the same parameters, by TL's names
    tokens = model.to_tokens("the cat sat")
    assert torch.equal(model(tokens), plain(tokens))


@pytest.mark.parametrize("positional", ["standard", "rotary", "shortformer"])
def test_a_prompt_longer_than_the_context_is_a_clear_error(positional):
    cfg = replace(standard_preset("standard-test").model, positional=positional)
    model = build_standard_model(cfg, "cpu", vocab=text_vocab(TEXT))
    with pytest.raises(DataError, match="exceeds the context n_ctx = 16"):
        model(model.to_tokens("the cat sat on the mat", truncate=False))  # TL truncates by default
    with pytest.raises(DataError, match="exceeds the context n_ctx = 16"):  # KV-cached positions count
        model.generate("the cat", max_new_tokens=12, verbose=False)


def test_unknown_characters_are_a_data_error_naming_them(text_file):
    with pytest.raises(DataError, match=r"\['Q', 'Z'\]"):
        encode_text("the Zoo Qat", text_vocab(TEXT))
    cfg = standard_preset("standard-test").with_overrides({"data.text": str(text_file), "model.vocab": "the ca"})
    with pytest.raises(DataError, match="outside the model's vocabulary"):
        train(cfg, None, progress=False)


def test_windows_are_seeded_and_held_out_is_fixed():
    ids = encode_text(TEXT, text_vocab(TEXT))
    windows = TextWindows(ids, 16, 0.1)
    a = windows.sample(4, torch.Generator().manual_seed(0))
    b = windows.sample(4, torch.Generator().manual_seed(0))
    assert a.shape == (4, 17) and torch.equal(a, b)
    assert torch.equal(windows.held_out(3), windows.held_out(3))
    with pytest.raises(DataError, match="n_ctx"):
        TextWindows(ids[:40], 16, 0.1)


def test_the_test_preset_trains_end_to_end_writes_and_loads_its_folder(text_file, tmp_path):
    cfg = standard_preset("standard-test").with_overrides({"data.text": str(text_file)})
    out = tmp_path / "run"
    result = train(cfg, out, progress=False, track=[track_head_scores])
    assert {"config.json", "metrics.jsonl", "checkpoint.pt"} <= {p.name for p in out.iterdir()}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 3, 6]
    assert all(0 <= r["induction_score"] <= 1 and r["held_out_loss"] > 0 for r in records)
    assert StandardConfig.from_dict(json.loads((out / "config.json").read_text())).model.vocab == text_vocab(TEXT)
    loaded = load(out, "cpu")
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor.cpu()), name
    longer = train(cfg.with_overrides({"train.steps": 9}), out, resume=True, progress=False)
    assert longer.final["step"] == 9 and load_checkpoint(out, "cpu").step == 9


def test_the_command_trains_on_shakespeare(tmp_path, capsys):
    text = shakespeare_text_path()
    if text is None:
        pytest.skip("tiny Shakespeare is not on this machine")
    out = tmp_path / "standard"
    code = cli_main(
        ["standard", "--text", str(text), "--out", str(out), "--preset", "standard-test", "--no-progress", "--json"]
    )
    assert code == 0
    final = json.loads(capsys.readouterr().out)
    assert final["step"] == 6 and "induction_score" in final and "held_out_loss" in final
    assert len(load(out, "cpu").tokenizer.get_vocab()) == 65 + 4


def test_the_command_resumes_a_run_from_its_own_config(text_file, tmp_path, monkeypatch, capsys):
    """As ``train --resume``: the run's config.json is the base, --set applies on top, and
    --text may be left out or given by another path to the same file."""
    out = tmp_path / "standard"
    start = ["standard", "--text", str(text_file), "--out", str(out), "--preset", "standard-test", "--no-progress"]
    assert cli_main([*start, "--set", "model.n_heads=4", "--json"]) == 0
    capsys.readouterr()
    resume = ["standard", "--out", str(out), "--resume", "--no-progress", "--json"]
    assert cli_main([*resume, "--set", "train.steps=8"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 8
    monkeypatch.chdir(text_file.parent)
    assert cli_main([*resume, "--text", text_file.name, "--set", "train.steps=10"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 10
    assert load(out, "cpu").cfg.n_heads == 4
    assert cli_main([*resume, "--preset", "standard-test"]) == 2  # the run's own config, not a preset
    assert "drop --preset" in capsys.readouterr().err
    assert cli_main(["standard", "--out", str(tmp_path / "fresh"), "--no-progress"]) == 2
    assert "--text is required" in capsys.readouterr().err


# -- the shipped standard model --------------------------------------------------------------------


def test_a_standard_run_exports_to_the_shipped_form_and_loads_back(text_file, tmp_path):
    from safetensors.torch import load_file

    from induction_bigram.model import load_weights
    from induction_bigram.pretrained import export_run

    cfg = standard_preset("standard-test").with_overrides({"data.text": str(text_file)})
    result = train(cfg, tmp_path / "run", progress=False)
    export_run(tmp_path / "run", tmp_path / "shipped", command="induction-bigram standard ...")
    files = {p.name for p in (tmp_path / "shipped").iterdir()}
    assert files == {"config.json", "metrics.jsonl", "source.json", "model.safetensors"}
    config = StandardConfig.from_dict(json.loads((tmp_path / "shipped" / "config.json").read_text()))
    model = load_weights(
        build_standard_model(config.model, "cpu"), load_file(tmp_path / "shipped" / "model.safetensors")
    )
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor.cpu()), name


def test_a_diverged_run_names_its_settings_and_keeps_its_last_good_checkpoint(text_file, tmp_path):
    from induction_bigram.errors import TrainingDivergedError
    from induction_bigram.training.checkpoint import load_checkpoint

    cfg = standard_preset("standard-test").with_overrides(
        {"data.text": str(text_file), "train.lr": 1e30, "train.checkpoint_every": 1}
    )
    with pytest.raises(TrainingDivergedError, match=r"at step 2: .*train\.lr=1e\+30.*last good checkpoint \(step 1\)"):
        train(cfg, tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run", "cpu").step == 1
