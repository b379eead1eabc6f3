"""Hook functions that patch an activation, for ``model.run_with_hooks(tokens, fwd_hooks=[(name, fn)])``
on either backend (docs/THEORY.md section 6: activation patching between a clean and a corrupted run)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from jaxtyping import Bool
from torch import Tensor
from transformer_lens import ActivationCache
from transformer_lens.hook_points import HookPoint


def patch_where(
    clean_cache: ActivationCache, where: Bool[Tensor, "batch pos"], fired: list[str] | None = None
) -> Callable[[Tensor, HookPoint], Tensor]:
    """A hook function that replaces its activation by ``clean_cache``'s at the same hook point where
    ``where`` (its [batch, pos]) is true, and leaves it elsewhere; each call appends the hook's name to
    ``fired`` (when given), so a caller can tell a hook point that no layer uses."""

    def patch(activation: Tensor, hook: HookPoint) -> Tensor:
        if fired is not None:
            fired.append(hook.name)
        mask = where.view(*where.shape, *([1] * (activation.ndim - 2)))
        return torch.where(mask, clean_cache[hook.name], activation)

    return patch
