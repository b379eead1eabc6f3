"""The hook functions of :mod:`induction_bigram.hooks`, on a real model of either backend."""

import torch

from induction_bigram.config import ModelConfig
from induction_bigram.hooks import patch_where
from tests.conftest import model_of, randomise_trainables


def test_patch_where_takes_the_clean_activation_at_the_chosen_positions_only():
    model = randomise_trainables(model_of(ModelConfig(d_model=16, n_ctx=10, d_vocab=65)))
    clean, corrupted = (torch.randint(0, 65, (2, 10), generator=torch.Generator().manual_seed(s)) for s in (0, 1))
    _, clean_cache = model.run_with_cache(clean)
    _, corrupted_cache = model.run_with_cache(corrupted)
    where = torch.zeros(2, 10, dtype=torch.bool)
    where[:, 4] = True
    name, fired, seen = "blocks.1.hook_resid_pre", [], {}

    def keep(activation, hook):
        seen["patched"] = activation.clone()

    model.run_with_hooks(corrupted, fwd_hooks=[(name, patch_where(clean_cache, where, fired)), (name, keep)])
    assert len(fired) == 1  # TL 4 names it by its alias (blocks.1.hook_in)
    assert torch.equal(seen["patched"][:, 4], clean_cache[name][:, 4])
    assert torch.equal(seen["patched"][:, :4], corrupted_cache[name][:, :4])
    assert not torch.equal(clean_cache[name][:, 4], corrupted_cache[name][:, 4])
