"""The "Your own model" analyses on a Hugging Face architecture booted through TL 4 offline
(issue 31): a GPT-2 built from its ``transformers`` config, holding the hand-written induction
circuit of :func:`tests.anymodel.builders.ideal_circuit_model` (MLPs zeroed, embeddings untied),
handed to ``TransformerBridge.boot_transformers`` with the model and a character tokenizer, so
nothing is fetched from the hub. The head finder, the memories, the logit split and patching
find the circuit the weights were written with."""

from __future__ import annotations

import pytest
import torch

from induction_bigram.anymodel import (
    direct_logit_split,
    find_head_pairs,
    induction_prompts,
    pair_memory_report,
    patch_head,
)
from induction_bigram.data.tokenizer import character_tokenizer
from induction_bigram.model import model_vocab, portable_state_dict
from tests.anymodel.builders import INDUCTION, PREVIOUS_TOKEN, ideal_circuit_model
from tests.numerics import assert_float32_close
from tests.tl4.conftest import tl4_only

pytestmark = tl4_only


def _gpt2_with(state: dict[str, torch.Tensor], cfg):
    """A ``transformers`` GPT-2 holding a TL 3-layout state dict of an attention-only LN model."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=cfg.d_vocab,
        n_positions=cfg.n_ctx,
        n_embd=cfg.d_model,
        n_layer=cfg.n_layers,
        n_head=cfg.n_heads,
        layer_norm_epsilon=cfg.eps,
        tie_word_embeddings=False,
        attn_pdrop=0.0,
        embd_pdrop=0.0,
        resid_pdrop=0.0,
    )
    gpt2 = GPT2LMHeadModel(config)
    d = cfg.d_model

    def heads_in(name: str) -> torch.Tensor:  # TL [head, d_model, d_head] -> Conv1D [d_model, head * d_head]
        return state[name].permute(1, 0, 2).reshape(d, -1)

    with torch.no_grad():
        gpt2.transformer.wte.weight.copy_(state["embed.W_E"])
        gpt2.transformer.wpe.weight.copy_(state["pos_embed.W_pos"])
        for layer, block in enumerate(gpt2.transformer.h):
            tl = f"blocks.{layer}"
            block.ln_1.weight.copy_(state[f"{tl}.ln1.w"])
            block.ln_1.bias.copy_(state[f"{tl}.ln1.b"])
            block.attn.c_attn.weight.copy_(torch.cat([heads_in(f"{tl}.attn.W_{m}") for m in "QKV"], 1))
            block.attn.c_attn.bias.copy_(torch.cat([state[f"{tl}.attn.b_{m}"].flatten() for m in "QKV"]))
            block.attn.c_proj.weight.copy_(state[f"{tl}.attn.W_O"].reshape(-1, d))
            block.attn.c_proj.bias.copy_(state[f"{tl}.attn.b_O"])
            for tensor in block.mlp.parameters():  # attention only: the MLP adds nothing
                tensor.zero_()
        gpt2.transformer.ln_f.weight.copy_(state["ln_final.w"])
        gpt2.transformer.ln_f.bias.copy_(state["ln_final.b"])
        gpt2.lm_head.weight.copy_(state["unembed.W_U"].T)
    assert not state["unembed.b_U"].any()  # GPT-2's head has no bias
    return gpt2.eval()


@pytest.fixture(scope="module")
def booted():
    from transformer_lens.model_bridge import TransformerBridge

    ideal = ideal_circuit_model()
    gpt2 = _gpt2_with(portable_state_dict(ideal), ideal.cfg)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # a hub call would fail here rather than download
        bridge = TransformerBridge.boot_transformers(
            "gpt2", hf_model=gpt2, tokenizer=character_tokenizer(model_vocab(ideal)), device="cpu"
        )
    bridge.cfg.default_prepend_bos = False  # our character tokenizer's BOS is past the vocabulary
    return ideal, bridge.eval()


def test_the_booted_gpt2_is_the_hand_written_model(booted):
    ideal, bridge = booted
    assert type(bridge.original_model).__name__ == "GPT2LMHeadModel"
    tokens = torch.randint(0, 16, (4, 32), generator=torch.Generator().manual_seed(0))
    assert_float32_close(bridge(tokens), ideal(tokens), "GPT-2 logits against the native model's")


def test_the_analyses_find_and_read_the_circuit_on_the_booted_gpt2(booted):
    _, bridge = booted
    pair = find_head_pairs(bridge, n_prompts=16).best
    assert (pair.previous_token, pair.induction) == (PREVIOUS_TOKEN, INDUCTION)
    assert pair.previous_token_score > 0.9 and pair.induction_score > 0.9
    report = pair_memory_report(bridge, pair)
    for name in ("W_O2", "W_K2", "W_K1"):
        assert report[name].recall == 1.0, name
    prompts = induction_prompts(bridge, n_prompts=16, length=24)
    differences = direct_logit_split(bridge, INDUCTION, prompts.clean).differences(prompts)
    assert differences["logits"] > 5 and differences["head"] > 0.9 * differences["logits"]
    assert patch_head(bridge, INDUCTION, prompts).restored_last == pytest.approx(1.0, abs=0.05)
