"""The logits as a sum over paths, for any TransformerLens model (docs/THEORY.md section 4.1).

A path starts at a *source*, something that writes into the residual stream at the position
read: the current token's embedding (``token``), the position embedding (``position``), each
head's output (``L{l}H{h}``, whatever that head read to make it) and the constant terms
(``biases``: attention output biases, MLP constants, LayerNorm's bias and b_U). From its source a
path reaches the unembedding by one of two *routes*:

- ``direct``: straight to the unembedding (TL's direct logit attribution);
- ``mlp``: through the MLP layers after the source (our associative memory transformer's
  feed-forward layer W_F), through one or several of them in turn.

Two named totals answer the question the package exists for (section 4):

- **in-context** = every path that starts at the induction head's output, direct and through
  the MLPs (xi^IC at path level);
- **global** = every path that starts at the current token's embedding, direct and through the
  MLPs (xi^G: the bigram memory read from the current token).

The rest keep their names (the previous-token head, the positions, the biases, other heads).

An MLP that reads only the current token's embedding (the idealised model of section 4.2,
:func:`~induction_bigram.model.ffn_reads_token`) is given the token's vector alone: every other
source's route through it is zero.

**Exact or estimated.** Where every MLP is affine and reads the stream without a LayerNorm (our
linear W_F: FFN(sum of parts) = sum of W_F parts), each source's share of an MLP's output is
exact and the parts sum to the logits. Where an MLP is not affine (ReLU, GELU) or reads through a
LayerNorm, a source's share is *estimated* by path patching with a zero ablation (Wang et al.
2022; Goldowsky-Dill et al. 2023): the MLP's output minus its output with that source's share of
its input removed, the LayerNorm recomputed. Those shares do not add up to the MLP's output; what
is left is the ``interaction`` source, so the parts still sum to the logits. A final LayerNorm is
applied with the scale the run cached (linear once the scale is fixed, as in TL's
``apply_ln_to_stack``): those parts are exact given that scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache

from induction_bigram.anymodel.heads import Head, head_name
from induction_bigram.errors import DataError, ModelShapeError
from induction_bigram.model import Model, check_tokens, ffn_reads_token, norm_parameters

ROUTES = ("direct", "mlp")
TOKEN, POSITION, BIASES, INTERACTION = "token", "position", "biases", "interaction"
AFFINE_ACTIVATIONS = ("linear",)  # our W_F (induction_bigram.model.components.LINEAR_ACT_FN)


@dataclass(frozen=True)
class PathDecomposition:
    """The logits at one position per prompt as a sum over (source, route) paths (module doc).

    Attributes:
        sources: the source names: ``token``, ``position`` (absent without position
            embeddings), each head ``L{l}H{h}``, ``biases``, and ``interaction`` where a part is
            estimated.
        parts: each path's contribution to the logits; ``parts.sum((0, 1))`` is ``logits``.
        logits: the model's logits at the chosen positions.
        exact: whether the ``mlp`` route is computed exactly (affine MLPs without a LayerNorm
            before them) or estimated by path patching; ``direct`` parts are always exact (given
            the final LayerNorm's cached scale, where there is one).
        induction_head: the head whose paths form the in-context total (``None``: not named).
    """

    sources: tuple[str, ...]
    parts: Float[Tensor, "source route batch vocab"]
    logits: Float[Tensor, "batch vocab"]
    exact: bool
    induction_head: Head | None = None

    def __getitem__(self, source: str) -> Float[Tensor, "route batch vocab"]:
        if source not in self.sources:
            raise KeyError(f"no source {source!r}; the sources are {', '.join(self.sources)}")
        return self.parts[self.sources.index(source)]

    def route(self, source: str, route: str) -> Float[Tensor, "batch vocab"]:
        """One path: ``source`` by ``route`` (``direct`` or ``mlp``)."""
        return self[source][ROUTES.index(route)]

    def total(self, source: str) -> Float[Tensor, "batch vocab"]:
        """Every path from ``source``."""
        return self[source].sum(0)

    @property
    def in_context(self) -> Float[Tensor, "batch vocab"]:
        """xi^IC: every path from the induction head's output."""
        if self.induction_head is None:
            raise ModelShapeError("no induction head was named: pass induction_head= to path_decomposition")
        return self.total(head_name(self.induction_head))

    @property
    def global_(self) -> Float[Tensor, "batch vocab"]:
        """xi^G: every path from the current token's embedding."""
        return self.total(TOKEN)

    def difference(self, a: Int[Tensor, " batch"], b: Int[Tensor, " batch"]) -> Float[Tensor, "source route batch"]:
        """Each path's contribution to xi_a - xi_b, per prompt."""
        rows = torch.arange(self.logits.shape[0], device=self.logits.device)
        return self.parts[:, :, rows, a] - self.parts[:, :, rows, b]

    def table(self, a: Int[Tensor, " batch"], b: Int[Tensor, " batch"]) -> list[dict[str, Any]]:
        """A row per path: its mean contribution to xi_a - xi_b over the prompts, and whether it
        is exact."""
        mean = self.difference(a, b).double().mean(-1)
        return [
            {"source": s, "route": r, "exact": r == "direct" or self.exact, "mean_difference": float(mean[i, j])}
            for i, s in enumerate(self.sources)
            for j, r in enumerate(ROUTES)
        ]


def _normalise(model: Model, norm: torch.nn.Module | None, x: Tensor, scale: Tensor | None = None) -> Tensor:
    """The model's LayerNorm / RMSNorm of ``x`` (``scale`` given: that scale, fixed, without
    the bias; else recomputed, with the bias), or ``x`` without one."""
    kind = model.cfg.normalization_type
    if kind is None:
        return x
    if kind.startswith("LN"):
        x = x - x.mean(-1, keepdim=True)
    fixed = scale is not None
    if scale is None:
        scale = (x.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt()
    x = x / scale
    w, b = norm_parameters(norm)
    x = x if w is None else x * w
    return x if fixed or b is None else x + b


def path_sources(model: Model) -> tuple[str, ...]:
    """The sources of ``model``'s path decomposition, in order: the token, the position where
    the stream holds p_t (not under rotary or shortformer positions), each head, the biases,
    and the interaction where MLP parts are estimated."""
    position = (POSITION,) if model.cfg.positional_embedding_type == "standard" else ()
    heads = tuple(head_name((layer, h)) for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads))
    return (TOKEN, *position, *heads, BIASES, *(() if _affine(model) else (INTERACTION,)))


def _pick(activation: Tensor, positions: Tensor) -> Tensor:
    return activation[torch.arange(len(positions), device=positions.device), positions]


def _affine(model: Model) -> bool:
    """Whether every MLP's output is an affine function of the stream it reads."""
    return model.cfg.attn_only or (model.cfg.act_fn in AFFINE_ACTIVATIONS and model.cfg.normalization_type is None)


PATH_HOOKS = ("hook_embed", "hook_pos_embed", "attn.hook_z", "hook_mlp_out", "ln_final.hook_scale")
"""The hook points :func:`paths_from_cache` reads (a ``names_filter`` keeps a cache to them)."""


@torch.no_grad()
def path_decomposition(
    model: Model,
    tokens: Int[Tensor, "batch pos"],
    positions: Int[Tensor, " batch"] | None = None,
    induction_head: Head | None = None,
) -> PathDecomposition:
    """Split the logits of ``tokens`` at ``positions`` (default: the last) into paths (module doc).

    One forward pass with a cache (:func:`paths_from_cache` on it); each MLP is then called once
    per source on the cached stream, batched over the prompts.
    """
    check_tokens(model, tokens)
    model.eval()
    logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith(PATH_HOOKS))
    return paths_from_cache(model, logits, cache, positions, induction_head)


@torch.no_grad()
def paths_from_cache(
    model: Model,
    logits: Float[Tensor, "batch pos vocab"],
    cache: ActivationCache,
    positions: Int[Tensor, " batch"] | None = None,
    induction_head: Head | None = None,
) -> PathDecomposition:
    """:func:`path_decomposition` of a run already made: its ``logits`` and a ``cache`` that
    holds at least the :data:`PATH_HOOKS`."""
    batch, length = logits.shape[:2]
    device = logits.device
    positions = torch.full((batch,), length - 1, device=device) if positions is None else positions.to(device)
    if positions.shape != (batch,) or ((positions < 0) | (positions >= length)).any():
        raise DataError(f"positions must be one index in [0, {length}) per prompt, got {positions.tolist()}")
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    if induction_head is not None and not (0 <= induction_head[0] < n_layers and 0 <= induction_head[1] < n_heads):
        raise ModelShapeError(f"no head {induction_head}: the model has {n_layers} layers of {n_heads} heads")

    def at(name: str) -> Tensor:
        return _pick(cache[name], positions)

    # each source's vector in the stream at the chosen positions: its own output ("direct") and
    # what the MLPs after it wrote because of it ("mlp")
    direct: dict[str, Tensor] = {TOKEN: at("hook_embed")}
    if model.cfg.positional_embedding_type == "standard":  # shortformer and rotary add no p_t
        direct[POSITION] = at("hook_pos_embed")
    zeros = torch.zeros_like(direct[TOKEN])
    biases = zeros.clone()
    through: dict[str, Tensor] = {}
    exact = _affine(model)
    for layer in range(n_layers):
        z = at(f"blocks.{layer}.attn.hook_z")  # [batch, head, d_head]
        attn = model.blocks[layer].attn
        for h in range(n_heads):
            direct[head_name((layer, h))] = z[:, h] @ attn.W_O[h]
        if getattr(attn, "b_O", None) is not None:
            biases = biases + attn.b_O
        if model.cfg.attn_only:
            continue
        stream = {s: direct[s] + through.get(s, zeros) for s in direct} | {BIASES: biases + through.get(BIASES, zeros)}
        if ffn_reads_token(model) and layer == n_layers - 1:
            stream = {s: direct[TOKEN] if s == TOKEN else zeros for s in stream}
        written = _mlp_shares(model, layer, stream, at(f"blocks.{layer}.hook_mlp_out"), exact)
        for s, v in written.items():
            through[s] = through.get(s, zeros) + v
    direct[BIASES] = biases
    sources = path_sources(model)
    routes = torch.stack([torch.stack([direct.get(s, zeros), through.get(s, zeros)]) for s in sources])
    ln_final = getattr(model, "ln_final", None)
    if model.cfg.normalization_type is not None:
        routes = _normalise(model, ln_final, routes, at("ln_final.hook_scale"))
    parts = routes @ model.unembed.W_U
    constant = model.unembed.b_U
    _, b = norm_parameters(ln_final)
    if model.cfg.normalization_type is not None and b is not None:
        constant = constant + b @ model.unembed.W_U
    parts[sources.index(BIASES), 0] += constant
    return PathDecomposition(sources, parts, _pick(logits, positions), exact, induction_head)


def _mlp_shares(model: Model, layer: int, stream: dict[str, Tensor], mlp_out: Tensor, exact: bool) -> dict[str, Tensor]:
    """What MLP ``layer`` writes because of each source, given each source's vector in the
    stream it reads: exact for an affine MLP without a LayerNorm before it, else estimated by
    removing one source's vector at a time, with the remainder as :data:`INTERACTION`."""
    block = model.blocks[layer]
    mlp = block.mlp
    names = list(stream)
    vectors = torch.stack([stream[s] for s in names])  # [source, batch, d_model]
    total = vectors.sum(0)
    if exact:
        empty = mlp(torch.zeros_like(total)[None])[0]
        shares = mlp(vectors) - empty
        written = dict(zip(names, shares))
        written[BIASES] = written[BIASES] + empty
        return written
    norm = getattr(block, "ln2", None)
    full = mlp(_normalise(model, norm, total)[None])[0]
    without = mlp(_normalise(model, norm, total[None] - vectors))
    written = dict(zip(names, full[None] - without))
    # what the MLP writes from an empty stream is a constant, like its biases
    empty = mlp(_normalise(model, norm, torch.zeros_like(total))[None])[0]
    written[INTERACTION] = mlp_out - sum(written.values()) - empty
    written[BIASES] = written[BIASES] + empty
    return written
