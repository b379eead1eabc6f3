"""The predicted in-context logits of docs/THEORY.md section 5, tested against trained models.

For a prompt of length T ending in trigger q, with S the positions right after an earlier q,
n = |S|, n_j = #{t in S : z_t = j} and m_j = #{t not in S : z_t = j}, if layer 2 gives score
alpha to S and 0 elsewhere and reads token j out with strength lambda:

    xi_j^IC = lambda (n_j e^alpha + m_j) / (n e^alpha + T - n)

The measured counterpart is the last attention layer's contribution to the logit of j at the
last position (:func:`~induction_bigram.incontext.measure.measure`). The test is a ladder of
models for xi_o^IC (section 5.7): 1. ``counts``, one lambda and alpha fitted; 2. ``projections``,
lambda_o = C_O2[o, o] and alpha_q = C_K2[q, q] / sqrt(d), nothing fitted; 3. ``projections_fitted``,
up to a lambda scale and an alpha offset; 4. ``measured_attention``, lambda_o times layer 2's
measured attention on the positions holding o (the read-out alone); 5. ``weights_only``
(:mod:`.weights_only`), nothing fitted; 6. ``weights_only_fitted``, up to a layer-2 score scale
and a read-out scale. Every rung, and the cause decomposition of rung 5, is scored on four
splits (:class:`Split`): fitted on a random half, the best formula rung picked on a quarter
(``validation``, not held out) and scored on the other (``test``: in no fit, no selection); the
long prompts (T > T_train / 2, all within T_train) and large counts (n > n_max / 2), held-out
cells fitted on the other prompts. The splits are fixed before anything is fitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from induction_bigram.incontext.measure import Measurements, pearson, r_squared, spearman
from induction_bigram.incontext.weights_only import SCORE_SCALES, ProjectionDiagonals
from induction_bigram.serialise import Record

ALPHA_GRID = torch.linspace(-4.0, 16.0, 401)


# -- the formula ------------------------------------------------------------------------------------


def predicted_in_context(
    strength: Tensor | float, alpha: Tensor | float, n_j: Tensor, m_j: Tensor, n: Tensor, length: Tensor
) -> Tensor:
    """xi_j^IC = lambda (n_j e^alpha + m_j) / (n e^alpha + T - n), elementwise."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    weight = alpha.exp()
    return strength * (n_j * weight + m_j) / (n * weight + length - n)


def _alpha(meas: Measurements, diagonals: ProjectionDiagonals, name: str, fitted: dict[str, float]) -> Tensor:
    """alpha per prompt under a formula rung: the fitted one (``counts``), else alpha_q plus the
    fitted offset."""
    if name == "counts":
        return torch.full(meas.n.shape, fitted["alpha"], dtype=torch.float64)
    return diagonals.alpha[meas.trigger] + fitted.get("alpha_offset", 0.0)


def _formula(
    meas: Measurements, diagonals: ProjectionDiagonals, name: str, fitted: dict[str, float], which: str = "output"
) -> Tensor:
    """Formula rung ``name``'s xi^IC, with its ``fitted`` values, for the ``which`` token of each prompt."""
    if name == "counts":
        lam: Tensor | float = fitted["lambda"]
    else:
        lam = diagonals.read_out[getattr(meas, which).clamp_min(0)] * fitted.get("lambda_scale", 1.0)
    n_j, m_j = getattr(meas, f"n_{which}").double(), getattr(meas, f"m_{which}").double()
    return predicted_in_context(
        lam, _alpha(meas, diagonals, name, fitted), n_j, m_j, meas.n.double(), meas.length.double()
    )


# -- the ladder ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rung(Record):
    """One model of the ladder, scored on one split's prompts (:class:`Split`): ``r2`` per prompt,
    ``r2_cells`` of the means per design cell (length, n_o, n_b), averaging out single prompts."""

    name: str
    description: str
    r2: float
    r2_cells: float
    spearman: float
    fitted: dict[str, float]


def _fit_alpha(make_features, target: Tensor, grid: Tensor = ALPHA_GRID) -> tuple[float, float]:
    """Grid search over an alpha (or alpha offset, or score scale), with the least-squares scale
    of target ~ scale * features (through the origin) for each; best R^2."""
    best = (-math.inf, 0.0, 0.0)
    for alpha in grid.tolist():
        features = make_features(alpha)
        denom = (features * features).sum()
        scale = float((features * target).sum() / denom) if denom > 0 else 0.0
        if (score := r_squared(scale * features, target)) > best[0]:
            best = (score, alpha, scale)
    return best[1], best[2]


Prediction = tuple[str, str, Tensor, dict[str, float]]  # name, description, xi_o^IC, fitted values


def _score(meas: Measurements, scored: Tensor, prediction: Prediction) -> Rung:
    """R^2 per prompt and per design cell (length, n_o, n_b), and rank agreement, on ``scored``."""
    name, description, predicted, fitted = prediction
    target, predicted = meas.ic_output[scored].double(), predicted[scored].double()
    keys = (meas.length * 10_000 + meas.n_output * 100 + meas.n_rival)[scored]
    means = lambda v: torch.stack([v[keys == c].mean() for c in keys.unique()]) if len(v) else v  # noqa: E731
    scores = r_squared(predicted, target), r_squared(means(predicted), means(target)), spearman(predicted, target)
    return Rung(name, description, *scores, fitted)


def _formula_rungs(meas: Measurements, diagonals: ProjectionDiagonals, fit: Tensor) -> list[Prediction]:
    """Rungs 1-4, their constants fitted on the ``fit`` prompts."""
    half, target = meas.select(fit), meas.ic_output[fit].double()
    alpha, lam = _fit_alpha(lambda a: _formula(half, diagonals, "counts", {"lambda": 1.0, "alpha": a}), target)
    offset, scale = _fit_alpha(lambda a: _formula(half, diagonals, "projections", {"alpha_offset": a}), target)
    formulas = {
        "counts": ("one lambda and alpha for the model, fitted", {"lambda": lam, "alpha": alpha}),
        "projections": ("lambda_o = C_O2[o,o], alpha_q = C_K2[q,q]/sqrt(d), nothing fitted", {}),
        "projections_fitted": ("up to a lambda scale, alpha offset", {"lambda_scale": scale, "alpha_offset": offset}),
    }
    attention = diagonals.read_out[meas.output] * meas.attention_on_output.double()
    return [
        *[(name, text, _formula(meas, diagonals, name, f), f) for name, (text, f) in formulas.items()],
        ("measured_attention", "lambda_o times the measured attention on positions holding o", attention, {}),
    ]


def _weights_rungs(meas: Measurements, fit: Tensor) -> list[Prediction]:
    """Rungs 5-6: the weights-only prediction, then up to a score scale and a read-out scale
    fitted on the ``fit`` prompts."""
    by_scale, target = meas.weights_ic_output_by_score_scale.double(), meas.ic_output[fit].double()
    index, scale = _fit_alpha(lambda i: by_scale[fit, int(i)], target, torch.arange(len(SCORE_SCALES)).double())
    fitted = {"score_scale": float(SCORE_SCALES[int(index)]), "read_out_scale": scale}
    predicted = scale * by_scale[:, int(index)]
    return [
        ("weights_only", "C_K1, C_K2, C_O2 and the tokens, nothing fitted", meas.weights_ic_output.double(), {}),
        ("weights_only_fitted", "weights only up to a layer-2 score scale and a read-out scale", predicted, fitted),
    ]


CAUSES = {  # name: (Measurements column of xi_o^IC, what is measured rather than predicted)
    "weights_only": ("weights_ic_output", "nothing: every piece from the weights"),
    "measured_layer1": ("measured_layer1_ic_output", "layer 1's attention"),
    "measured_layer2": ("measured_layer2_ic_output", "both layers' attention"),
    "measured_values": ("measured_values_ic_output", "both attentions and the whole value read-out (exact)"),
}


def _causes(meas: Measurements) -> list[Prediction]:
    """The cause decomposition: the weights-only rung with the model's pieces put back one at a time."""
    return [(name, f"measured: {text}", getattr(meas, column), {}) for name, (column, text) in CAUSES.items()]


@dataclass(frozen=True)
class Split(Record):
    """Every rung fitted on some prompts and scored on others (docs/THEORY.md section 5.7): ``name``
    (module doc), the ``scored`` prompts in words, ``n_fit`` and ``n_scored``, ``held_out`` (used in
    no fit and no selection; not ``validation``'s), rungs 1-6 and the ``causes`` (:data:`CAUSES`)."""

    name: str
    scored: str
    n_fit: int
    n_scored: int
    held_out: bool
    rungs: list[Rung]
    causes: list[Rung]

    def rung(self, name: str) -> Rung:
        return next(r for r in self.rungs + self.causes if r.name == name)


def splits(
    meas: Measurements, diagonals: ProjectionDiagonals, seed: int, train_length: int, max_count: int
) -> dict[str, Split]:
    """Score every rung and the cause decomposition on each of the four splits (module doc)."""
    draw = torch.rand(len(meas.n), generator=torch.Generator().manual_seed(seed))
    half, long, large = draw < 0.5, meas.length > train_length / 2, meas.n > max_count / 2
    plans = {  # name: (scored prompts in words, fitted on, scored, held out)
        "validation": ("a random quarter (picks the formula rung)", half, (draw >= 0.5) & (draw < 0.75), False),
        "test": ("another random quarter", half, draw >= 0.75, True),
        "long_prompts": (f"T > {train_length / 2:g} = T_train / 2", ~long, long, True),
        "large_counts": (f"n > {max_count / 2:g} = n_max / 2", ~large, large, True),
    }
    result = {}
    for name, (text, fit, scored, held_out) in plans.items():
        rungs = [*_formula_rungs(meas, diagonals, fit), *_weights_rungs(meas, fit)]
        rungs, causes = ([_score(meas, scored, p) for p in predictions] for predictions in (rungs, _causes(meas)))
        result[name] = Split(name, text, int(fit.sum()), int(scored.sum()), held_out, rungs, causes)
    return result


# -- the consequences ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TheoryCheck(Record):
    """docs/THEORY.md section 5's consequences, measured against the best formula rung.

    Attributes:
        rungs: rungs 1-4 on the test quarter (R^2 and rank agreement of xi_o^IC).
        best: the formula rung (1-3) with the highest R^2 on the validation quarter; its
            prediction is used below (its test R^2: :attr:`test_r2`).
        splits: :func:`splits`, every rung and the cause decomposition on each split.
        growth: at each T, the mean measured xi_o^IC per count n: its rank correlation with n
            (``rank_with_variable``), the predicted means' rank agreement with it
            (``rank_with_prediction``), and at how many of the ``groups`` T it strictly grows
            (``monotone_groups``).
        dilution: the same across T (correlation with -T) for each fixed n >= 1.
        split: section 5.3 on the prompts with a rival (:func:`two_outputs`).
        hijack: per T, the measured n* (smallest n whose mean xi_o - xi_g > 0), the predicted
            one (predicted xi^IC difference + measured xi^G difference) and the one from the
            weights alone (``weights_only``: xi^IC and xi^G both from the weights).
        fallback: at n = 0, the fraction of prompts whose top prediction is g, and the mean
            measured and predicted xi_o^IC (lambda m_o / T: the prediction falls back to xi^G).
        attention_correlation: correlation of the predicted and measured attention mass on S.
    """

    rungs: list[Rung]
    best: str
    splits: dict[str, Split]
    growth: dict[str, float | bool]
    dilution: dict[str, float | bool]
    split: dict[str, float | int]
    hijack: dict[str, dict[str, int | None]]
    fallback: dict[str, float | int]
    attention_correlation: float

    @property
    def test_r2(self) -> float:
        """The best formula rung's R^2 per prompt on the test quarter (used in no fit and no selection)."""
        return next(r.r2 for r in self.rungs if r.name == self.best)

    @property
    def weights_only_r2(self) -> float:
        """Section 5.7's claim: the weights-only rung's R^2 per prompt on the long prompts (<= T_train)."""
        return self.splits["long_prompts"].rung("weights_only").r2


def rung_prediction(meas: Measurements, diagonals: ProjectionDiagonals, rung: Rung, which: str = "output") -> Tensor:
    """A formula rung's xi^IC for the ``output``, ``rival`` or ``favourite`` of each prompt."""
    return _formula(meas, diagonals, rung.name, rung.fitted, which)


def _cell_means(meas: Measurements, values: Tensor) -> dict[tuple[int, int], float]:
    """Mean of ``values`` per (T, n) cell of the single-output prompts."""
    single = meas.rival < 0
    cells = torch.stack([meas.length, meas.n_output], -1)[single].unique(dim=0).tolist()
    return {(T, n): float(values[single & (meas.length == T) & (meas.n_output == n)].double().mean()) for T, n in cells}


def check_theory(
    meas: Measurements,
    diagonals: ProjectionDiagonals,
    seed: int = 0,
    *,
    train_length: int | None = None,
    max_count: int | None = None,
) -> TheoryCheck:
    """Run the ladder on every split and test each consequence with the formula rung picked on the
    validation quarter (``train_length``, ``max_count``: the held-out cells; default the largest)."""
    train_length = int(meas.length.max()) if train_length is None else train_length
    scored = splits(meas, diagonals, seed, train_length, int(meas.n.max()) if max_count is None else max_count)
    rungs = scored["test"].rungs[:4]
    picked = max(scored["validation"].rungs[:3], key=lambda r: r.r2 if math.isfinite(r.r2) else -math.inf)
    best = next(r for r in rungs if r.name == picked.name)  # the same fit (the fit half), scored on the test quarter
    predicted = rung_prediction(meas, diagonals, best)
    measured_cells = _cell_means(meas, meas.ic_output)
    predicted_cells = _cell_means(meas, predicted)
    keys = sorted(measured_cells)
    lengths = sorted({T for T, _ in keys})
    counts = sorted({n for _, n in keys})

    def trend(group_by_length: bool) -> dict[str, float | int]:
        """Growth (means against n at each T) or dilution (means against -T at each n >= 1):
        the measured means' rank correlation with the variable, the predicted means' rank
        agreement with the measured ones, and at how many groups the measured means are
        strictly monotone; each correlation is the mean over groups of at least 3 cells."""
        with_variable, with_prediction, monotone = [], [], 0
        groups = lengths if group_by_length else [n for n in counts if n >= 1]
        for value in groups:
            members = [k for k in keys if (k[0] if group_by_length else k[1]) == value]
            if len(members) < 3:
                continue
            m = torch.tensor([measured_cells[k] for k in members])
            p = torch.tensor([predicted_cells[k] for k in members])
            variable = torch.tensor([float(k[1]) if group_by_length else -float(k[0]) for k in members])
            with_variable.append(spearman(variable, m))
            with_prediction.append(spearman(m, p))
            monotone += bool((m.diff() > 0 if group_by_length else m.diff() < 0).all())
        mean = lambda xs: float(torch.tensor(xs).mean()) if xs else float("nan")  # noqa: E731
        return {
            "rank_with_variable": mean(with_variable),
            "rank_with_prediction": mean(with_prediction),
            "monotone_groups": monotone,
            "groups": len(with_variable),
        }

    global_difference = meas.global_output - meas.global_favourite
    differences = {
        "measured": meas.logit_difference,
        "predicted": predicted - rung_prediction(meas, diagonals, best, "favourite") + global_difference,
        "weights_only": meas.weights_logit_difference,
    }
    hijack = {}
    for T in lengths:
        single = (meas.length == T) & (meas.rival < 0)
        hijack[str(T)] = {k: hijack_threshold(meas.n_output[single], v[single]) for k, v in differences.items()}

    zero = meas.n == 0
    mean = lambda x: float(x[zero].double().mean()) if zero.any() else float("nan")  # noqa: E731
    fallback = {
        "n_prompts": int(zero.sum()),
        "top1_is_favourite": mean(meas.top1 == meas.favourite),
        "measured_ic_output": mean(meas.ic_output),
        "predicted_ic_output": mean(predicted),
    }
    weight, n = _alpha(meas, diagonals, best.name, best.fitted).exp(), meas.n.double()
    predicted_mass = n * weight / (n * weight + meas.length.double() - n)
    return TheoryCheck(
        rungs=rungs,
        best=best.name,
        splits=scored,
        growth=trend(group_by_length=True),
        dilution=trend(group_by_length=False),
        split=two_outputs(meas, diagonals, best),
        hijack=hijack,
        fallback=fallback,
        attention_correlation=pearson(predicted_mass, meas.attention_on_S.double()),
    )


def two_outputs(meas: Measurements, diagonals: ProjectionDiagonals, best: Rung) -> dict[str, float | int]:
    """Section 5.3 on the prompts with a rival b (a = o): R^2 per prompt of xi_a^IC - xi_b^IC
    against the cause decomposition's first three steps and the best formula rung
    (``difference_r2_*``); of the share xi_a^IC / (xi_a^IC + xi_b^IC) against the formula's and
    against n_a / (n_a + n_b) (``share_r2_*``), and how often it leaves [0, 1]; of the share of
    layer 2's attention on S that lands on a against n_a / (n_a + n_b) and the weights-only share
    (``attention_split_r2_*``); and how often C_O2[a, a] or C_O2[b, b] is negative."""
    rows = meas.rival >= 0  # with fewer than two such prompts every R^2 is NaN
    m = meas.select(rows)
    pa, pb = rung_prediction(m, diagonals, best), rung_prediction(m, diagonals, best, "rival")
    prefixes = {name: CAUSES[name][0].removesuffix("output") for name in list(CAUSES)[:3]}
    difference = m.ic_output - m.ic_rival
    counts, share = m.n_output / (m.n_output + m.n_rival), m.ic_output / (m.ic_output + m.ic_rival)
    on_a = m.attention_on_S_output / m.attention_on_S
    negative = (diagonals.read_out[m.output] < 0) | (diagonals.read_out[m.rival] < 0)
    return {
        "n_prompts": int(rows.sum()),
        **{
            f"difference_r2_{name}": r_squared(getattr(m, f"{p}output") - getattr(m, f"{p}rival"), difference)
            for name, p in prefixes.items()
        },
        "difference_r2_formula": r_squared(pa - pb, difference),
        "share_r2_formula": r_squared(pa / (pa + pb), share),
        "share_r2_counts": r_squared(counts, share),
        "share_outside_0_1": float(((share < 0) | (share > 1)).double().mean()),
        "attention_split_r2_counts": r_squared(counts, on_a),
        "attention_split_r2_weights_only": r_squared(m.weights_attention_on_S_output / m.weights_attention_on_S, on_a),
        "negative_read_out": float(negative.double().mean()),
    }


def hijack_threshold(counts: Tensor, difference: Tensor) -> int | None:
    """n* (sections 5.4, 9.4): the smallest count whose mean xi_o - xi_g is positive (None if none is)."""
    for n in sorted(counts.unique().tolist()):
        if difference[counts == n].double().mean() > 0:
            return int(n)
    return None
