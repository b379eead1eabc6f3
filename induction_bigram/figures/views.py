"""circuitsvis attention views of the heads, with the tokens shown as characters.

A view is an :class:`OfflineView`, a ``circuitsvis`` ``RenderedHTML`` that always gives its
self-contained form (the JavaScript bundle inlined, about 1.3 MB): circuitsvis's own
``RenderedHTML`` hands Jupyter a page that loads the bundle from a CDN whenever the kernel can
reach the internet (and ``str(view)`` always does), so a saved notebook or HTML file drew
nothing offline. :func:`save_view` writes the same form as an HTML page; :func:`offline` turns
any circuitsvis view into one. Every view this package hands back or writes passes through here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from circuitsvis.attention import attention_heads
from circuitsvis.utils.render import RenderedHTML
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.data.stats import BigramStats
from induction_bigram.files import atomic_write_text
from induction_bigram.model import Model, check_tokens, check_vocabulary

VISIBLE = {"\n": "\u23ce", " ": "\u2423"}  # newline and space drawn as visible glyphs


def token_labels(stats: BigramStats, tokens: Int[Tensor, " pos"]) -> list[str]:
    """One label per token: its character, with newline and space made visible."""
    return [VISIBLE.get(c, c) for c in stats.decode(tokens)]


def head_names(n_layers: int) -> list[str]:
    if n_layers == 2:
        return ["layer 1: previous-token head", "layer 2: induction head"]
    return [f"layer {layer + 1}" for layer in range(n_layers)]


@torch.no_grad()
def attention_view(model: Model, tokens: Int[Tensor, " pos"], stats: BigramStats) -> OfflineView:
    """Every layer's attention pattern on one prompt (``circuitsvis.attention.attention_heads``)."""
    check_vocabulary(model, stats)
    return patterns_view(attention_patterns(model, tokens), token_labels(stats, tokens.cpu()))


@torch.no_grad()
def attention_patterns(model: Model, tokens: Int[Tensor, " pos"]) -> Float[Tensor, "head query key"]:
    """Every layer's attention pattern on one prompt, on the CPU: [layers x heads, query, key]."""
    check_tokens(model, tokens[None])
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens[None].to(next(model.parameters()).device), names_filter=names)
    return torch.cat([cache[name][0] for name in names]).cpu()


class OfflineView(RenderedHTML):
    """A circuitsvis view whose every HTML form (Jupyter's, ``__html__``, ``str``) has the
    JavaScript inlined, so it renders without a network."""

    def _repr_html_(self) -> str:
        return self.local_src

    def __html__(self) -> str:
        return self.local_src

    def show_code(self) -> str:
        return self.local_src

    def __str__(self) -> str:
        return self.local_src


def offline(view: RenderedHTML) -> OfflineView:
    """``view`` (e.g. ``circuitsvis.attention.attention_heads(...)``) as an :class:`OfflineView`."""
    return OfflineView(view.local_src, view.cdn_src)


def heads_view(patterns: Float[Tensor, "head query key"], labels: Sequence[str], names: Sequence[str]) -> OfflineView:
    """``circuitsvis.attention.attention_heads`` of ``patterns`` over the token ``labels``, one
    name per head, as an :class:`OfflineView`."""
    return offline(attention_heads(attention=patterns, tokens=list(labels), attention_head_names=list(names)))


def patterns_view(patterns: Float[Tensor, "head query key"], labels: Sequence[str]) -> OfflineView:
    """The view of stored patterns (:func:`attention_patterns`, one head per layer) over the
    token ``labels`` (:func:`token_labels`): a study's result draws it without its model."""
    return heads_view(patterns, labels, head_names(len(patterns)))


def save_view(view: RenderedHTML, path: str | os.PathLike[str], title: str = "attention") -> None:
    """Write the view as a self-contained HTML page that needs no network."""
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
        f"<body>\n{view.local_src}\n</body></html>\n"
    )
    atomic_write_text(path, page)
