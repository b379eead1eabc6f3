"""Designed prompts through a trained model: the counts and logits docs/THEORY.md section 5 predicts.

:func:`measure` runs each chunk of designed prompts (:class:`~induction_bigram.data.prompts.DesignedPrompts`)
through the model once and keeps, at the last position, the counts n_j and m_j of the output o,
the rival b and the global favourite g, the logit parts xi^IC (the last attention layer,
:func:`~induction_bigram.incontext.decompose.decompose_cache`) and xi^G (everything else), the
probabilities, and the last layer's attention on S and on the positions holding o; beside them,
the prediction from the weights alone and its cause decomposition (:mod:`.weights_only`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.anymodel.heads import head_name
from induction_bigram.anymodel.paths import TOKEN, paths_from_cache
from induction_bigram.data.prompts import DesignedPrompts, check_prompts
from induction_bigram.incontext.decompose import run_for_decomposition
from induction_bigram.incontext.weights_only import weight_memories, weights_only_columns
from induction_bigram.model import Model
from induction_bigram.serialise import Record


@dataclass(frozen=True)
class Measurements(Record):
    """Per-prompt counts and measured logits at the last position (prompts concatenated).

    ``ic_*`` are the last attention layer's contributions (xi^IC), ``global_*`` everything
    else (direct path, layer 1 and FFN: xi^G), ``logit_*``/``prob_*`` the model's output.
    ``attention_on_S`` and ``attention_on_output`` are the last layer's attention mass at the
    last position on S and on the positions holding o, ``attention_on_S_output`` on the positions
    of S holding o.

    The columns are read from the path decomposition (:mod:`induction_bigram.anymodel.paths`,
    docs/THEORY.md section 4.1) with layer 2's head as the induction head: ``ic_*`` is that
    head's *direct* path (the component view), ``ffn_ic_*`` its path through W_F (zero without
    an FFN); the in-context term at path level is their sum (:meth:`path_view`). ``token_*`` are
    the current token's paths (direct and through W_F: xi^G at path level), ``global_*`` every
    path but the head's direct one (logits minus ``ic_*``), and ``path_difference`` each
    (source, route) path's contribution to xi_o - xi_g, the sources in the order
    :func:`~induction_bigram.anymodel.paths.path_sources` gives.

    ``weights_*`` are predicted from the weights alone (:mod:`.weights_only`; NaN without
    absolute positions): xi^IC of o, b, g, xi^G of o, g, the attention on S and on the
    positions of S holding o, and xi_o^IC with the layer-2 scores times each of ``SCORE_SCALES``.
    ``measured_layer1_*``, ``measured_layer2_*`` and ``measured_values_*`` put back the measured
    layer-1 attention, then also layer 2's, then also the whole value read-out (equal to
    ``ic_output``): docs/THEORY.md section 5.7's cause decomposition. Each read-out column has
    an ``ffn_*`` twin, the same read through W_F.
    """

    length: Int[Tensor, " n"]
    n: Int[Tensor, " n"]
    trigger: Int[Tensor, " n"]
    output: Int[Tensor, " n"]
    rival: Int[Tensor, " n"]
    favourite: Int[Tensor, " n"]
    n_output: Int[Tensor, " n"]
    m_output: Int[Tensor, " n"]
    n_rival: Int[Tensor, " n"]
    m_rival: Int[Tensor, " n"]
    n_favourite: Int[Tensor, " n"]
    m_favourite: Int[Tensor, " n"]
    ic_output: Float[Tensor, " n"]
    ic_rival: Float[Tensor, " n"]
    ic_favourite: Float[Tensor, " n"]
    global_output: Float[Tensor, " n"]
    global_favourite: Float[Tensor, " n"]
    prob_output: Float[Tensor, " n"]
    prob_favourite: Float[Tensor, " n"]
    top1: Int[Tensor, " n"]
    attention_on_S: Float[Tensor, " n"]
    attention_on_output: Float[Tensor, " n"]
    attention_on_S_output: Float[Tensor, " n"]
    weights_ic_output: Float[Tensor, " n"]
    weights_ic_rival: Float[Tensor, " n"]
    weights_ic_favourite: Float[Tensor, " n"]
    weights_ic_output_by_score_scale: Float[Tensor, "n scales"]
    weights_global_output: Float[Tensor, " n"]
    weights_global_favourite: Float[Tensor, " n"]
    ffn_ic_output: Float[Tensor, " n"]
    ffn_ic_rival: Float[Tensor, " n"]
    ffn_ic_favourite: Float[Tensor, " n"]
    token_output: Float[Tensor, " n"]
    token_favourite: Float[Tensor, " n"]
    path_difference: Float[Tensor, "n source route"]
    weights_attention_on_S: Float[Tensor, " n"]
    weights_attention_on_S_output: Float[Tensor, " n"]
    measured_layer1_ic_output: Float[Tensor, " n"]
    measured_layer1_ic_rival: Float[Tensor, " n"]
    measured_layer2_ic_output: Float[Tensor, " n"]
    measured_layer2_ic_rival: Float[Tensor, " n"]
    measured_values_ic_output: Float[Tensor, " n"]
    ffn_weights_ic_output: Float[Tensor, " n"]
    ffn_weights_ic_rival: Float[Tensor, " n"]
    ffn_weights_ic_favourite: Float[Tensor, " n"]
    ffn_weights_ic_output_by_score_scale: Float[Tensor, "n scales"]
    ffn_measured_layer1_ic_output: Float[Tensor, " n"]
    ffn_measured_layer1_ic_rival: Float[Tensor, " n"]
    ffn_measured_layer2_ic_output: Float[Tensor, " n"]
    ffn_measured_layer2_ic_rival: Float[Tensor, " n"]

    @property
    def logit_difference(self) -> Float[Tensor, " n"]:
        """xi_o - xi_g, the model's own."""
        return self.ic_output + self.global_output - self.ic_favourite - self.global_favourite

    @property
    def weights_logit_difference(self) -> Float[Tensor, " n"]:
        """xi_o - xi_g predicted from the weights alone, layer 2's path through W_F included."""
        prefixes = ("weights_ic", "ffn_weights_ic", "weights_global")
        return sum(getattr(self, f"{p}_output") - getattr(self, f"{p}_favourite") for p in prefixes)

    def path_view(self) -> "Measurements":
        """The same prompts with xi^IC at path level: every column of layer 2's contribution
        (measured or predicted) plus its ``ffn_*`` twin, the path through W_F; ``global_*`` is
        then every other path. The theory check read on this view judges the in-context term
        that the model really uses (docs/THEORY.md section 4.1)."""
        columns = asdict(self)
        columns["measured_values_ic_output"] = self.measured_values_ic_output + self.ffn_ic_output
        for which in ("output", "favourite"):
            columns[f"global_{which}"] = getattr(self, f"global_{which}") - getattr(self, f"ffn_ic_{which}")
        for name in [n for n in columns if n.startswith("ffn_")]:
            base = name.removeprefix("ffn_")
            # folded into its base column, the twin is zero: the view's sums (the logit
            # difference, the weights-only one) count the path through W_F once
            columns[base] = columns[base] + columns[name]
            columns[name] = torch.zeros_like(columns[name])
        return Measurements(**columns)

    def select(self, mask: Tensor) -> "Measurements":
        return Measurements(**{k: v[mask] for k, v in asdict(self).items()})


INDUCTION_HEAD = (1, 0)
"""Layer 2's one head: the induction head of our two-layer models (docs/THEORY.md section 2)."""


@torch.no_grad()
def measure(model: Model, batches: Sequence[DesignedPrompts], chunk_size: int = 64) -> Measurements:
    """Run every designed prompt and collect :class:`Measurements`: one forward pass per chunk
    gives the logit parts, both layers' attention patterns and layer 2's values."""
    columns: dict[str, list[Tensor]] = {}
    memories = weight_memories(model)
    pattern_name = f"blocks.{model.cfg.n_layers - 1}.attn.hook_pattern"
    pick = lambda x, idx: x.gather(1, idx.clamp_min(0)[:, None]).squeeze(1)  # noqa: E731
    for prompts in batches:
        check_prompts(prompts.tokens, prompts.trigger)
        for start in range(0, len(prompts), chunk_size):
            part = prompts.rows(slice(start, start + chunk_size))
            logits, cache = run_for_decomposition(model, part.tokens)
            paths = paths_from_cache(model, logits, cache, induction_head=INDUCTION_HEAD)
            head = head_name(INDUCTION_HEAD)
            ic, through_ffn = paths.route(head, "direct"), paths.route(head, "mlp")
            rest = logits[:, -1] - ic
            probs = logits[:, -1].softmax(-1)
            pattern = cache[pattern_name][:, 0, -1]  # [batch, key]
            values = {
                "length": torch.full_like(part.trigger, part.length),
                "n": part.n,
                "trigger": part.trigger,
                "output": part.output,
                "rival": part.rival,
                "favourite": part.favourite,
                **{
                    f"{count}_{which}": part.count_of(getattr(part, which), in_context=count == "n")
                    for which in ("output", "rival", "favourite")
                    for count in ("n", "m")
                },
                "ic_output": pick(ic, part.output),
                "ic_rival": torch.where(part.rival >= 0, pick(ic, part.rival), torch.nan),
                "ic_favourite": pick(ic, part.favourite),
                "ffn_ic_output": pick(through_ffn, part.output),
                "ffn_ic_rival": torch.where(part.rival >= 0, pick(through_ffn, part.rival), torch.nan),
                "ffn_ic_favourite": pick(through_ffn, part.favourite),
                "token_output": pick(paths.total(TOKEN), part.output),
                "token_favourite": pick(paths.total(TOKEN), part.favourite),
                "path_difference": paths.difference(part.output, part.favourite).permute(2, 0, 1),
                "global_output": pick(rest, part.output),
                "global_favourite": pick(rest, part.favourite),
                "prob_output": pick(probs, part.output),
                "prob_favourite": pick(probs, part.favourite),
                "top1": probs.argmax(-1),
                "attention_on_S": (pattern * part.after_trigger).sum(-1),
                "attention_on_output": (pattern * (part.tokens == part.output[:, None])).sum(-1),
                **weights_only_columns(model, memories, part, cache),
            }
            for key, value in values.items():
                columns.setdefault(key, []).append(value.cpu())
    return Measurements(**{k: torch.cat(v) for k, v in columns.items()})


# -- comparing a prediction with the measurements ------------------------------------------------


def r_squared(prediction: Tensor, target: Tensor) -> float:
    """1 - residual / total sum of squares (NaN for a constant target)."""
    target, prediction = target.double(), prediction.double()
    total = ((target - target.mean()) ** 2).sum()
    return float(1 - ((target - prediction) ** 2).sum() / total) if total > 0 else float("nan")


def spearman(a: Tensor, b: Tensor) -> float:
    """Rank correlation, tied values sharing their mean rank (NaN when either side is constant)."""
    return pearson(_ranks(a), _ranks(b))


def _ranks(x: Tensor) -> Tensor:
    order = x.double().argsort()
    ranks = torch.empty(len(x), dtype=torch.float64, device=x.device)
    ranks[order] = torch.arange(len(x), dtype=torch.float64, device=x.device)
    _, group, size = x.double().unique(return_inverse=True, return_counts=True)
    return torch.zeros(len(size), dtype=torch.float64, device=x.device).index_add_(0, group, ranks)[group] / size[group]


def pearson(a: Tensor, b: Tensor) -> float:
    """Linear correlation."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    norm = a.norm() * b.norm()
    return float(a @ b / norm) if norm > 0 else float("nan")
