"""One input check at the model's door (issue 32, item 2): every form of bad input to the model,
on either TransformerLens backend (the whole suite runs on both), and to the public analyses'
arguments, is a DataError that names what is wrong, never a foreign error or a silent answer."""

from __future__ import annotations

import re

import pytest
import torch

from induction_bigram.config import ModelConfig, TaskConfig
from induction_bigram.config.standard import StandardModelConfig
from induction_bigram.data.task import TriggerTask
from induction_bigram.errors import DataError
from induction_bigram.memories.projections import memory_report
from induction_bigram.model import build_standard_model
from induction_bigram.model.components.checks import check_trigger_ids
from induction_bigram.training.metrics import in_context_accuracy, in_context_loss
from tests.conftest import model_of

N_CTX = 16


@pytest.fixture(scope="module")
def model():
    return model_of(ModelConfig(d_model=16, n_ctx=N_CTX, d_vocab=65))


LONG = "a" * (N_CTX + 5)
BAD_INPUTS = {
    "empty prompt": ("", "empty string"),
    "empty list": ([], "empty list of prompts"),
    "list of ids": ([1, 2], "must hold strings"),
    "list of empty prompts": (["", ""], "empty string"),
    "prompt longer than n_ctx": (LONG, f"length {N_CTX + 5} exceeds the context n_ctx = {N_CTX}"),
    "batch of prompts, one too long": (["ab", LONG], f"exceeds the context n_ctx = {N_CTX}"),
    "zero batch": (torch.zeros(0, 5, dtype=torch.long), "a batch of size 0"),
    "sequence of length 0": (torch.zeros(2, 0, dtype=torch.long), "a sequence of length 0"),
    "1-D of length 0": (torch.zeros(0, dtype=torch.long), "a sequence of length 0"),
    "float tokens": (torch.zeros(2, 5), "dtype torch.float32"),
    "bool tokens": (torch.zeros(2, 5, dtype=torch.bool), "dtype torch.bool"),
    "uint8 tokens (a mask to torch)": (torch.zeros(2, 5, dtype=torch.uint8), "dtype torch.uint8"),
    "int16 tokens (torch cannot index with them)": (torch.zeros(2, 5, dtype=torch.int16), "dtype torch.int16"),
    "meta device": (torch.zeros(2, 5, dtype=torch.long, device="meta"), "meta device"),
    "3-D tokens": (torch.zeros(2, 3, 5, dtype=torch.long), "shape [pos] or [batch, pos], got (2, 3, 5)"),
    "0-D tokens": (torch.tensor(3), "got ()"),
    "token tensor longer than n_ctx": (torch.zeros(1, N_CTX + 1, dtype=torch.long), "exceeds the context"),
    "id past the vocabulary": (torch.tensor([[1, 65]]), "token id 65 is outside"),
    "negative id": (torch.tensor([[1, -1]]), "token id -1 is outside"),
    "an int": (3, "got int"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_every_bad_input_at_the_models_door_is_a_data_error_naming_it(model, case):
    given, message = BAD_INPUTS[case]
    with pytest.raises(DataError, match=_escaped(message)):
        model(given)


@pytest.mark.parametrize("tool", ["to_tokens", "to_str_tokens"])
def test_string_tools_refuse_a_prompt_longer_than_n_ctx_instead_of_cutting_it(model, tool):
    model("abc")  # a call that cut before must not leave the cut on for the next (the tokenizer keeps state)
    with pytest.raises(DataError, match=f"length {N_CTX + 5} exceeds the context n_ctx = {N_CTX}"):
        getattr(model, tool)(LONG)
    assert getattr(model, tool)("a" * N_CTX) is not None  # exactly n_ctx is fine
    assert model.to_tokens(LONG, truncate=False).shape == (1, N_CTX + 5)  # nothing cut: the caller asked for all


def test_good_inputs_still_run(model):
    assert model("abc").shape == (1, 3, 65)
    assert model(["ab", "cd"]).shape == (2, 2, 65)
    assert model(torch.zeros(5, dtype=torch.long)).shape == (1, 5, 65)
    assert model(torch.zeros(2, 5, dtype=torch.int32)).shape == (2, 5, 65)


def test_a_standard_model_has_the_same_door():
    standard = build_standard_model(StandardModelConfig(d_model=8, d_head=4, n_heads=2, n_ctx=8), "cpu", vocab="abcd")
    with pytest.raises(DataError, match="empty"):
        standard(torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(DataError, match="dtype torch.float32"):
        standard(torch.zeros(1, 3))
    with pytest.raises(DataError, match="exceeds the context n_ctx = 8"):
        standard.to_tokens("abcd" * 3)


@pytest.mark.parametrize(
    "triggers, message",
    [
        (torch.tensor([], dtype=torch.long), "at least one; got []"),
        (torch.tensor([3, 3, 3]), "distinct token ids in [0, 65), at least one; got [3, 3, 3]"),
        (torch.tensor([3, 65]), "in [0, 65)"),
        (torch.tensor([-1]), "in [0, 65)"),
    ],
)
def test_memory_report_refuses_triggers_that_would_score_a_made_up_recall(model, triggers, message):
    with pytest.raises(DataError, match=_escaped(message)):
        memory_report(model, triggers, N_CTX)


@pytest.mark.parametrize(
    "triggers, message",
    [([3, 4], "got list"), (torch.tensor([1.0, 2.0]), "dtype torch.float32"), (torch.tensor([[1, 2]]), "shape (1, 2)")],
)
def test_memory_reports_trigger_check_names_the_wrong_type(triggers, message):
    # memory_report's first line; called directly because the tests' jaxtyping checks would
    # refuse a list or floats at the annotation before the body runs (users have no such check)
    with pytest.raises(DataError, match=_escaped(message)):
        check_trigger_ids(triggers, 65)


def test_memory_report_refuses_n_positions_outside_the_context(model):
    with pytest.raises(DataError, match="n_positions must be an integer in"):
        memory_report(model, torch.tensor([3]), N_CTX + 1)


@pytest.fixture(scope="module")
def batch(stats):
    return TriggerTask(stats, TaskConfig(seq_len=N_CTX, n_triggers=3)).sample(4, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("score", [in_context_loss, in_context_accuracy])
@pytest.mark.parametrize("shape", [(3, N_CTX, 65), (4, N_CTX - 1, 65), (4, N_CTX, 10)])
def test_in_context_scores_refuse_logits_that_do_not_fit_the_batch(batch, score, shape):
    with pytest.raises(DataError, match="do not fit the batch's targets"):
        score(torch.zeros(shape), batch)


def test_in_context_accuracy_refuses_nan_logits(batch):
    logits = torch.zeros(4, N_CTX, 65)
    logits[0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN or infinite"):
        in_context_accuracy(logits, batch)
    assert 0.0 <= float(in_context_accuracy(torch.zeros(4, N_CTX, 65), batch)) <= 1.0


def _escaped(text: str) -> str:
    return re.escape(text)
