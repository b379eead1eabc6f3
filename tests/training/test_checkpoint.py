import json

import pytest
import torch

import induction_bigram.training.checkpoint as checkpoint_module
from induction_bigram import load, train
from induction_bigram.errors import CheckpointError, ConfigError
from induction_bigram.model import Model, trainable_parameters
from induction_bigram.training.checkpoint import CHECKPOINT, load_checkpoint
from tests.conftest import tiny_config


@pytest.fixture
def run_dir(tmp_path):
    train(tiny_config(), tmp_path, progress=False)
    return tmp_path


def test_load_gives_back_the_tl_model(run_dir):
    model = load(run_dir)
    assert isinstance(model, Model)  # HookedTransformer on TL 3, TransformerBridge on TL 4
    assert {n for n, _ in trainable_parameters(model)} == {
        "blocks.0.attn.W_K",
        "blocks.1.attn.W_K",
        "blocks.1.attn.W_O",
    }
    _, cache = model.run_with_cache(torch.zeros(1, 16, dtype=torch.long))
    assert cache["blocks.1.attn.hook_pattern"].shape == (1, 1, 16, 16)


def test_truncated_checkpoint_is_a_clear_error(run_dir):
    path = run_dir / CHECKPOINT
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or not a checkpoint"):
        load(run_dir)


def test_foreign_file_is_a_clear_error(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an induction-bigram checkpoint"):
        load(tmp_path / "other.pt")


def test_another_format_version_is_a_clear_error(run_dir):
    path = run_dir / CHECKPOINT
    torch.save({**torch.load(path, weights_only=True), "version": 1}, path)
    with pytest.raises(CheckpointError, match="has format version 1, expected 2"):
        load(run_dir)


def test_weights_that_do_not_match_the_config_are_named(run_dir):
    path = run_dir / CHECKPOINT
    payload = torch.load(path, weights_only=True)
    config = json.loads(payload["config"])
    config["model"]["d_model"] = 32
    payload["config"] = json.dumps(config)
    torch.save(payload, path)
    (run_dir / "config.json").unlink()  # else the disagreement with config.json is named first
    with pytest.raises(CheckpointError, match=r"does not match its config: wrong shape: embed.W_E \(65, 16\)"):
        load(run_dir)


def test_interrupted_write_keeps_the_previous_checkpoint(run_dir, monkeypatch):
    before = (run_dir / CHECKPOINT).read_bytes()

    def save_half_then_die(obj, handle):
        handle.write(b"PK\x03\x04 half a zip archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.torch, "save", save_half_then_die)
    ckpt = load_checkpoint(run_dir)
    with pytest.raises(KeyboardInterrupt):
        checkpoint_module.save_checkpoint(
            run_dir / CHECKPOINT,
            model=ckpt.model,
            config=ckpt.config,
            stats=ckpt.stats,
            step=99,
            elapsed_seconds=0.0,
            optimizer=torch.optim.SGD(ckpt.model.parameters(), lr=0.1),
            data_generator=torch.Generator(),
        )
    assert (run_dir / CHECKPOINT).read_bytes() == before
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".induction-bigram",  # the folder's marker: a training run of ours
        ".induction-bigram.lock",  # the writer's lock (flock; released when it exits)
        "checkpoint.pt",
        "config.json",
        "metrics.jsonl",
    ]


def test_the_next_write_removes_the_temporary_file_of_a_killed_save(run_dir):
    stale = run_dir / ".checkpoint.pt.k1ll3d_x.tmp"  # what atomic_open leaves when killed
    stale.write_bytes(b"PK\x03\x04 half a zip archive")
    users = run_dir / ".my-notes.tmp"
    users.write_text("not ours")
    train(tiny_config(**{"train.steps": 16}), run_dir, resume=True, progress=False)
    assert not stale.exists() and users.read_text() == "not ours"
    assert load_checkpoint(run_dir).step == 16


def test_a_bad_device_is_blamed_on_the_device_not_the_checkpoint(run_dir):
    with pytest.raises(ConfigError, match="'banana' is not a torch device") as err:
        load_checkpoint(run_dir, "banana")
    assert not isinstance(err.value, CheckpointError)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load(tmp_path)


def test_a_model_trained_on_another_corpus_refuses_shakespeare(tmp_path):
    from induction_bigram import BigramStats, TriggerTask, evaluate
    from induction_bigram.errors import DataError

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abcab cabba acbca bbacc " * 40)
    train(tiny_config(**{"task.corpus": str(corpus)}), tmp_path / "run", progress=False)
    model = load(tmp_path / "run", "cpu")
    assert model.to_str_tokens("cab") == ["c", "a", "b"]  # its own characters
    shakespeare = BigramStats.default()
    with pytest.raises(DataError, match="not the model's"):
        evaluate(model, TriggerTask(shakespeare, tiny_config().task))
    with pytest.raises(DataError, match="token id"):
        model(shakespeare.encode("First Citizen")[None])  # ids past its 4 characters
    with pytest.raises(DataError, match="outside the vocabulary"):
        model("First Citizen")  # characters it never saw


def test_config_json_that_disagrees_with_the_checkpoint_is_an_error_naming_both(run_dir):
    path = run_dir / "config.json"
    data = json.loads(path.read_text())
    data["model"]["d_model"] = 2 * data["model"]["d_model"]
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"config\.json does not match .*checkpoint\.pt \(model\.d_model"):
        load(run_dir)


def test_garbage_config_json_is_an_error_naming_it(run_dir):
    (run_dir / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: not valid JSON"):
        load_checkpoint(run_dir)


def test_config_json_may_ask_for_more_steps_than_the_checkpoint_ran(run_dir):
    path = run_dir / "config.json"
    data = json.loads(path.read_text())
    data["train"]["steps"] += 8  # a resumed run writes its new target before its next checkpoint
    path.write_text(json.dumps(data))
    assert load_checkpoint(run_dir).config.train.steps == data["train"]["steps"] - 8
