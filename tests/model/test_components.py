"""Our TL 3 components (induction_bigram.model.components): the relative bias, the input checks."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip(
    "transformer_lens.components",
    reason="TL 3's components, which TL 4 removed (the TL 4 components are tested in tests/tl4)",
    exc_type=ImportError,
)

from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache  # noqa: E402

from induction_bigram import BigramStats, describe  # noqa: E402
from induction_bigram.config import ModelConfig  # noqa: E402
from induction_bigram.errors import DataError  # noqa: E402
from induction_bigram.model import check_vocabulary  # noqa: E402
from tests.conftest import model_of, randomise_trainables  # noqa: E402


def random_model(**overrides):
    cfg = ModelConfig(d_model=32, n_ctx=24, d_vocab=65, **overrides)
    return randomise_trainables(model_of(cfg), seed=0)


def test_editing_q_in_place_does_not_touch_the_residual_stream():
    model = random_model()
    tokens = torch.randint(0, 65, (2, 24), generator=torch.Generator().manual_seed(2))
    clean = model(tokens)

    def zero_in_place(q, hook):
        q[:, 3] = 0.0
        return q

    patched = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_q", zero_in_place)])
    _, cache = model.run_with_cache(tokens)
    assert cache["blocks.1.hook_resid_pre"][:, 3].abs().sum() > 0
    assert torch.equal(patched[:, :3], clean[:, :3]) and not torch.equal(patched[:, 3], clean[:, 3])


def test_relative_bias_is_offset_by_the_cached_positions():
    model = random_model(positional="rpe")
    bias = model.blocks[0].attn.rel_pos.bias.detach()
    seen = []
    model.add_hook("blocks.0.attn.rel_pos.hook_bias", lambda b, hook: seen.append(b.clone()))
    tokens = torch.randint(0, 65, (1, 10), generator=torch.Generator().manual_seed(3))
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, 1)
    model(tokens[:, :9], past_kv_cache=cache)
    model(tokens[:, 9:], past_kv_cache=cache)
    model.reset_hooks()
    last_row = seen[-1][0, 0, 0]  # the query at position 9 against keys 0..9
    assert seen[-1].shape == (1, 1, 1, 10)
    torch.testing.assert_close(last_row, bias[torch.arange(9, -1, -1)])


@pytest.mark.parametrize("bad", [-1, 65, 68])
def test_token_ids_outside_the_vocabulary_are_errors_naming_the_id(bad):
    model = random_model()
    with pytest.raises(DataError, match=f"token id {bad} is outside the model's vocabulary"):
        model(torch.tensor([[1, bad, 2]]))


def test_an_unknown_character_fails_loudly_through_the_tokenizer():
    model = random_model()
    with pytest.raises(DataError, match="<\\|unk\\|> is a character outside the vocabulary"):
        model("a\u20acb")


def test_a_model_refuses_statistics_of_another_vocabulary():
    other = model_of(ModelConfig(d_model=16, n_ctx=16, d_vocab=12))
    with pytest.raises(DataError, match="not the model's"):
        check_vocabulary(other, BigramStats.default())
    check_vocabulary(random_model(), BigramStats.default())


def test_repr_says_what_tls_config_cannot():
    rpe = random_model(positional="rpe")
    assert "TL cannot express it" in describe(rpe) and describe(rpe) in repr(rpe)
    assert rpe.cfg.d_mlp is None and random_model(ffn="linear").cfg.d_mlp == 32


def test_a_deep_copy_and_a_pickled_copy_compute_and_describe_the_same_model():
    import copy
    import io

    model = random_model(positional="rpe")
    tokens = model.to_tokens("First Citizen")
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for twin in (copy.deepcopy(model), torch.load(buffer, weights_only=False)):
        assert torch.equal(twin(tokens), model(tokens)) and repr(twin) == repr(model)
        twin.reset_hooks(including_permanent=True)
        assert torch.equal(twin(tokens), model(tokens))
