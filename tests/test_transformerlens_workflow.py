"""The standard TransformerLens workflow, written from TL's documentation, on every shipped model.

Each test asserts a value, not only that the call ran: what a TL user would check by eye.
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest
import torch
from transformer_lens import FactoredMatrix, patching
from transformer_lens.head_detector import detect_head
from transformer_lens.utilities import test_prompt as tl_test_prompt

from induction_bigram import build_model, describe, get_paper_matrix, in_context_loss, repeated_sequence_report
from induction_bigram.anymodel import repeated_random_tokens
from induction_bigram.anymodel.logits import logit_difference, patching_gap, restoration_metric
from induction_bigram.config import ModelConfig
from induction_bigram.data.prompts import PromptDesigner
from induction_bigram.errors import DataError
from induction_bigram.figures.views import attention_view, save_view
from induction_bigram.incontext.patching import corrupt
from induction_bigram.model import load_weights, model_config, model_vocab
from induction_bigram.pretrained import (
    available,
    induction_head_kind,
    load_pretrained,
    pretrained_config,
    pretrained_task,
)
from induction_bigram.training.metrics import in_context_patching_metric
from tests.conftest import REPO, model_of, randomise_trainables

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak."


@pytest.fixture(scope="module", params=available())
def shipped(request):
    name = request.param
    return name, load_pretrained(name, "cpu"), pretrained_task(name)


def designed(task, n: int, length: int, seed: int = 0):
    """n prompts ending in a trigger q seen once before, all with q's output at one position."""
    designer = PromptDesigner(task.stats, task.shared_triggers, "cpu")
    g = torch.Generator().manual_seed(seed)
    start = torch.tensor([length // 2])
    return designer.sample(length=length, n_output=1, batch_size=n, generator=g, pair_starts=start)


def in_context_batch(task, n: int = 64, seed: int = 0):
    return task.sample(n, torch.Generator().manual_seed(seed))


def test_strings_round_trip_through_the_tokenizer(shipped):
    _, model, task = shipped
    tokens = model.to_tokens(TEXT)
    assert torch.equal(tokens[0], task.stats.encode(TEXT))  # the model's ids are the statistics' ids
    assert model.to_str_tokens(TEXT) == list(TEXT)
    assert model.to_string(tokens[0]) == TEXT
    assert model.to_single_token("e") == int(task.stats.encode("e")[0])
    assert model_vocab(model) == task.stats.vocab


def test_run_with_cache_with_and_without_the_batch_dimension(shipped):
    _, model, _ = shipped
    tokens = model.to_tokens(TEXT)
    logits, cache = model.run_with_cache(tokens)
    _, single = model.run_with_cache(tokens, remove_batch_dim=True)
    T = tokens.shape[1]
    assert logits.shape == (1, T, model.cfg.d_vocab)
    assert cache["pattern", 0].shape == (1, 1, T, T) and single["pattern", 0].shape == (1, T, T)
    assert torch.equal(cache["pattern", 0][0], single["pattern", 0])
    last = model.cfg.n_layers - 1
    assert torch.equal(cache["circuit.hook_induction"], cache[f"blocks.{last}.hook_attn_out"])
    # layer 1 is a previous-token head: the sub-diagonal holds most of the attention
    pattern = single["pattern", 0][0]
    assert pattern.diagonal(-1).mean() > 0.4 and pattern.diagonal(-1).mean() > 2 * pattern.diagonal()[1:].mean()
    if model_config(model).positional == "rpe":
        assert single["blocks.0.attn.rel_pos.hook_bias"].shape == (1, T, T)


def test_test_prompt_ranks_the_in_context_answer_first(shipped):
    _, model, task = shipped
    prompts = designed(task, 16, model_config(model).n_ctx // 2)
    predicted = model(prompts.tokens)[:, -1].argmax(-1)
    assert (predicted == prompts.output).float().mean() >= 0.5
    row = int((predicted == prompts.output).nonzero()[0])
    prompt = model.to_string(prompts.tokens[row])
    answer = model.to_string(prompts.output[row : row + 1])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        tl_test_prompt(prompt, answer, model, prepend_space_to_answer=False, prepend_bos=False)
    assert "Rank: 0" in printed.getvalue()


def test_detect_head_finds_the_previous_token_head(shipped):
    _, model, _ = shipped
    scores = detect_head(model, TEXT, "previous_token_head")
    assert scores.shape == (model.cfg.n_layers, 1)
    assert scores[0, 0] >= 0.4 and scores[0, 0] > scores[1:].max()


def test_activation_patching_with_a_logit_difference(shipped):
    _, model, task = shipped
    prompts = designed(task, 8, 32)
    corrupted = corrupt(prompts, task.stats.bigram, torch.Generator().manual_seed(1))
    clean_logits, clean_cache = model.run_with_cache(prompts.tokens)
    o, g = prompts.output, prompts.favourite
    metric = restoration_metric(
        patching_gap(logit_difference(clean_logits, o, g), logit_difference(model(corrupted), o, g)), o, g
    )
    site = int(prompts.after_trigger[0].nonzero()[0])  # where the earlier output sits
    with contextlib.redirect_stderr(io.StringIO()):
        resid = patching.get_act_patch_resid_pre(model, corrupted, clean_cache, metric)
        heads = patching.get_act_patch_attn_head_out_by_pos(model, corrupted, clean_cache, metric)
    assert resid.shape == (model.cfg.n_layers, 32)
    assert resid[0, site] > 0.8  # the corrupted token itself carries the whole difference
    assert resid[0, -1].abs() < 0.1  # the final trigger is the same in both runs
    assert heads.shape == (model.cfg.n_layers, 32, 1)
    assert heads[-1, -1, 0] > 0.9  # the induction head's output at the last position
    assert metric(clean_logits).item() == pytest.approx(1.0)  # clean into clean changes nothing


def test_OV_and_QK_are_factored_matrices_in_the_papers_terms(shipped):
    _, model, _ = shipped
    assert isinstance(model.OV, FactoredMatrix) and isinstance(model.QK, FactoredMatrix)
    W_K2 = get_paper_matrix(model, "W_K2")
    torch.testing.assert_close(model.QK[1, 0].AB, W_K2)  # W_Q = I, so QK is the paper's W_K
    Phi_1 = get_paper_matrix(model, "W_O1") @ get_paper_matrix(model, "W_V1")
    torch.testing.assert_close(model.OV[0, 0].AB.T, Phi_1)


def test_hooks_ablate_the_induction_head_and_are_removed_after(shipped):
    _, model, task = shipped
    batch = in_context_batch(task)
    metric = in_context_patching_metric(batch, "accuracy")
    before = metric(model(batch.tokens)).item()
    ablate = (f"blocks.{model.cfg.n_layers - 1}.attn.hook_z", lambda z, hook: torch.zeros_like(z))
    with model.hooks(fwd_hooks=[ablate]):
        ablated = metric(model(batch.tokens)).item()
        tl_loss_ablated = model(batch.tokens, return_type="loss").item()
        icl_loss_ablated = in_context_loss(model(batch.tokens), batch).item()
    assert before >= 0.9 and ablated < 0.3
    assert metric(model(batch.tokens)).item() == before
    # TL's default loss averages every position and barely sees the circuit; ours does
    tl_loss, icl_loss = (
        model(batch.tokens, return_type="loss").item(),
        in_context_loss(model(batch.tokens), batch).item(),
    )
    assert icl_loss_ablated / icl_loss > 10 * (tl_loss_ablated / tl_loss)


def test_reset_hooks_including_permanent_keeps_the_model_whole(shipped):
    _, model, task = shipped
    batch = in_context_batch(task)
    before = model(batch.tokens)
    model.reset_hooks(including_permanent=True)
    torch.testing.assert_close(model(batch.tokens), before, rtol=0, atol=0)
    _, cache = model.run_with_cache(batch.tokens[:1])
    assert "circuit.hook_induction" in cache.keys()


def test_generate_with_and_without_the_kv_cache(shipped):
    _, model, _ = shipped
    tokens = model.to_tokens(TEXT)[:, :20]
    kwargs = dict(max_new_tokens=12, do_sample=False, verbose=False)
    cached = model.generate(tokens, use_past_kv_cache=True, **kwargs)
    uncached = model.generate(tokens, use_past_kv_cache=False, **kwargs)
    assert torch.equal(cached, uncached) and cached.shape == (1, 32)
    assert model.generate(TEXT[:20], **kwargs).startswith(TEXT[:20])


@pytest.mark.parametrize("positional", ["ape", "rpe", "rope"])
def test_kv_cached_logits_equal_the_uncached_forward_pass(positional):
    model = randomise_trainables(model_of(ModelConfig(d_model=32, n_ctx=40, d_vocab=65, positional=positional)), 0)
    tokens = model.to_tokens(TEXT, truncate=False)[:, :40]
    full = model(tokens)
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache  # TL 3 only

    cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, 1)
    steps = [model(tokens[:, :7], past_kv_cache=cache)]
    steps += [model(tokens[:, t : t + 1], past_kv_cache=cache) for t in range(7, tokens.shape[1])]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=0, atol=1e-4)
    kwargs = dict(max_new_tokens=20, do_sample=False, verbose=False)
    cached = model.generate(tokens[:, :10], use_past_kv_cache=True, **kwargs)
    assert torch.equal(cached, model.generate(tokens[:, :10], use_past_kv_cache=False, **kwargs))
    kwargs["max_new_tokens"] = 31  # the last forward pass reads 40 positions: the whole context
    assert model.generate(tokens[:, :10], use_past_kv_cache=True, **kwargs).shape == (1, 41)
    kwargs["max_new_tokens"] = 32
    with pytest.raises(DataError, match="exceeds the context n_ctx = 40"):
        model.generate(tokens[:, :10], use_past_kv_cache=True, **kwargs)


def test_state_dict_round_trip_is_bitwise_and_a_plain_model_names_our_loader(shipped):
    name, model, task = shipped
    state = model.state_dict()
    twin = load_weights(build_model(model_config(model), "cpu", vocab=task.stats.vocab), state)
    for key, tensor in twin.state_dict().items():
        assert torch.equal(tensor, state[key]), key
    tokens = model.to_tokens(TEXT)
    assert torch.equal(twin(tokens), model(tokens))
    from transformer_lens import HookedTransformer  # TL 3 only

    with pytest.warns(DeprecationWarning):
        plain = HookedTransformer(model.cfg)
    with pytest.raises(RuntimeError, match="induction_bigram_load_weights"):
        plain.load_state_dict(state)


def test_circuitsvis_view_is_saved_for_offline_use(shipped, tmp_path):
    _, model, task = shipped
    save_view(attention_view(model, model.to_tokens(TEXT)[0], task.stats), tmp_path / "view.html")
    page = (tmp_path / "view.html").read_text()
    assert "induction head" in page and "unpkg.com" not in page and "cdn." not in page


def test_the_config_and_repr_tell_the_truth(shipped):
    _, model, _ = shipped
    cfg = model_config(model)
    assert (model.cfg.d_mlp is None) == (cfg.ffn == "none")
    assert describe(model) in repr(model)
    if cfg.positional == "rpe":
        assert "TL cannot express it" in describe(model)


def test_each_model_has_the_induction_head_its_docs_say(shipped):
    name, model, _ = shipped
    general = induction_head_kind(pretrained_config(name)) == "general"
    report = repeated_sequence_report(model)
    assert report.passed == general, str(report)
    # TL's detector averages over every query, the first half's too, where nothing repeats:
    # a perfect head scores about 0.5 on a sequence repeated twice
    repeated = [model.to_string(seq) for seq in repeated_random_tokens(model, 8, 30, seed=1)]
    induction = detect_head(model, repeated, "induction_head")[-1, 0]
    assert induction > 0.4 if general else induction < 0.1


def test_the_guide_quotes_the_general_models_report():
    guide = (REPO / "docs" / "guide.md").read_text()
    quoted = guide.split("<!-- general-report -->")[1].split("<!-- /general-report -->")[0]
    numbers = [float(x) for x in re.findall(r"\d+\.\d+", quoted)]
    report = repeated_sequence_report(load_pretrained("general", "cpu"))
    measured = [report.previous_token_attention, report.induction_attention_min, report.induction_attention_mean]
    assert numbers == [round(x, 3) for x in [*measured, report.loss_ratio]]
