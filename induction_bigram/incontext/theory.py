"""The predicted in-context logits of docs/THEORY.md section 5, tested against trained models.

For a prompt of length T ending in trigger q, with S the positions right after an earlier q,
n = |S|, n_j = #{t in S : z_t = j} and m_j = #{t not in S : z_t = j}, if layer 2 gives score
alpha to S and 0 elsewhere and reads token j out with strength lambda:

    xi_j^IC = lambda (n_j e^alpha + m_j) / (n e^alpha + T - n)

The measured counterpart is the last attention layer's contribution to the logit of j at the
last position (:func:`~induction_bigram.incontext.measure.measure`). The test is a ladder of
models for xi_o^IC, each scored on the same held-out half of the prompts:

1. ``counts``: one lambda and one alpha for the whole model, fitted on the other half;
2. ``projections``: lambda_o = C_O2[o, o] and alpha_q = C_K2[q, q] / sqrt(d) read off the
   memory projections, nothing fitted;
3. ``projections_fitted``: the projections up to one scale for lambda and one offset for
   alpha, fitted on the other half;
4. ``measured_attention``: lambda_o times the attention layer 2 actually puts on the positions
   holding o (tests the read-out alone; not a prediction from counts).

A fit is a test, never a knob: the halves are fixed by a seed and the held-out R^2 is reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from induction_bigram.incontext.measure import Measurements, nan_if_null
from induction_bigram.memories.projections import project_W_K2, project_W_O2

ALPHA_GRID = torch.linspace(-4.0, 16.0, 401)


# -- the formula and the projection diagonals ------------------------------------------------------


def predicted_in_context(
    strength: Tensor | float, alpha: Tensor | float, n_j: Tensor, m_j: Tensor, n: Tensor, length: Tensor
) -> Tensor:
    """xi_j^IC = lambda (n_j e^alpha + m_j) / (n e^alpha + T - n), elementwise."""
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    weight = alpha.exp()
    return strength * (n_j * weight + m_j) / (n * weight + length - n)


@dataclass(frozen=True)
class ProjectionDiagonals:
    """What a trained model's weights say lambda and alpha are, token by token: the read-out
    strength lambda_j = C_O2[j, j] and the score alpha_q = C_K2[q, q] / sqrt(d), the diagonals
    of its memory projections (docs/THEORY.md section 5). Not the strengths a theory-built model
    is written with (:class:`~induction_bigram.memories.projections.MemoryStrengths`)."""

    read_out: Float[Tensor, " vocab"]
    alpha: Float[Tensor, " vocab"]


@torch.no_grad()
def read_projection_diagonals(model: HookedTransformer) -> ProjectionDiagonals:
    """lambda_j and alpha_q of every token, read off ``model``'s W_O^2 and W_K^2."""
    read_out = project_W_O2(model).coefficients.diagonal()
    keys = project_W_K2(model, None).coefficients.diagonal()  # every token as a query
    return ProjectionDiagonals(read_out.double().cpu(), (keys / math.sqrt(model.cfg.d_model)).double().cpu())


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


def r_squared(prediction: Tensor, target: Tensor) -> float:
    target, prediction = target.double(), prediction.double()
    total = ((target - target.mean()) ** 2).sum()
    return float(1 - ((target - prediction) ** 2).sum() / total) if total > 0 else float("nan")


def spearman(a: Tensor, b: Tensor) -> float:
    """Rank correlation (ties broken by order, which is fine for continuous values)."""
    ranks = lambda x: x.double().argsort().argsort().double()  # noqa: E731
    return pearson(ranks(a), ranks(b))


@dataclass(frozen=True)
class Rung:
    """One model of the ladder, scored on the held-out prompts.

    ``r2`` is per prompt; ``r2_cells`` compares the means over the prompts of each design
    cell (length, n_o, n_b), which averages out the read-out noise of single prompts.
    """

    name: str
    description: str
    r2: float
    r2_cells: float
    spearman: float
    fitted: dict[str, float]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Rung":
        scores = (nan_if_null(data[k]) for k in ("r2", "r2_cells", "spearman"))
        return cls(data["name"], data["description"], *scores, {k: nan_if_null(v) for k, v in data["fitted"].items()})


def _fit_scale(features: Tensor, target: Tensor) -> float:
    """Least-squares lambda for target ~ lambda * features (through the origin)."""
    denom = (features * features).sum()
    return float((features * target).sum() / denom) if denom > 0 else 0.0


def _fit_alpha(make_features, target: Tensor) -> tuple[float, float]:
    """Grid search over an alpha (or alpha offset), closed-form scale for each; best R^2."""
    best = (-math.inf, 0.0, 0.0)
    for alpha in ALPHA_GRID.tolist():
        features = make_features(alpha)
        scale = _fit_scale(features, target)
        score = r_squared(scale * features, target)
        if score > best[0]:
            best = (score, alpha, scale)
    return best[1], best[2]


def ladder(meas: Measurements, diagonals: ProjectionDiagonals, seed: int = 0) -> list[Rung]:
    """Score each rung on a held-out half of the prompts (the half is fixed by ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    held_out = torch.rand(len(meas.n), generator=g) < 0.5
    fit = ~held_out
    target = meas.ic_output.double()
    cell = meas.length * 10_000 + meas.n_output * 100 + meas.n_rival
    cells = cell[held_out].unique()

    def cell_means(values: Tensor) -> Tensor:
        chosen, keys = values[held_out], cell[held_out]
        return torch.stack([chosen[keys == c].mean() for c in cells])

    def score(name: str, description: str, prediction: Tensor, fitted: dict[str, float]) -> Rung:
        return Rung(
            name,
            description,
            r_squared(prediction[held_out], target[held_out]),
            r_squared(cell_means(prediction), cell_means(target)),
            spearman(prediction[held_out], target[held_out]),
            fitted,
        )

    half = meas.select(fit)
    alpha, lam = _fit_alpha(lambda a: _formula(half, diagonals, "counts", {"lambda": 1.0, "alpha": a}), target[fit])
    offset, scale = _fit_alpha(lambda a: _formula(half, diagonals, "projections", {"alpha_offset": a}), target[fit])
    formulas = {
        "counts": ("one lambda and alpha for the model, fitted on the other half", {"lambda": lam, "alpha": alpha}),
        "projections": ("lambda_o = C_O2[o,o], alpha_q = C_K2[q,q]/sqrt(d), nothing fitted", {}),
        "projections_fitted": (
            "the projections up to a lambda scale and an alpha offset",
            {"lambda_scale": scale, "alpha_offset": offset},
        ),
    }
    rungs = [score(name, text, _formula(meas, diagonals, name, f), f) for name, (text, f) in formulas.items()]
    attention = diagonals.read_out[meas.output] * meas.attention_on_output.double()
    return [
        *rungs,
        score("measured_attention", "lambda_o times the measured attention on positions holding o", attention, {}),
    ]


# -- the consequences ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TheoryCheck:
    """docs/THEORY.md section 5's consequences, measured against the best formula rung.

    Attributes:
        rungs: the ladder (held-out R^2 and rank agreement of xi_o^IC).
        best: the formula rung (1-3) with the highest held-out R^2; its prediction is used below.
        growth: at each T, the mean measured xi_o^IC per count n: its rank correlation with n
            (``rank_with_variable``), the predicted means' rank agreement with it
            (``rank_with_prediction``), and at how many of the ``groups`` T it strictly grows
            (``monotone_groups``).
        dilution: the same across T (correlation with -T) for each fixed n >= 1.
        split: for prompts with a rival, R^2 of xi_a^IC / (xi_a^IC + xi_b^IC) against the
            prediction (n_a e^alpha + m_a) / (n_a e^alpha + m_a + n_b e^alpha + m_b).
        hijack: per T, the measured n* (smallest n whose mean xi_o - xi_g > 0) and the
            predicted one (predicted xi^IC difference + measured xi^G difference).
        fallback: at n = 0, the fraction of prompts whose top prediction is g, and the mean
            measured and predicted xi_o^IC (lambda m_o / T: the prediction falls back to xi^G).
        attention_correlation: correlation of the predicted and measured attention mass on S.
    """

    rungs: list[Rung]
    best: str
    growth: dict[str, float | bool]
    dilution: dict[str, float | bool]
    split: dict[str, float | int]
    hijack: dict[str, dict[str, int | None]]
    fallback: dict[str, float | int]
    attention_correlation: float

    @property
    def held_out_r2(self) -> float:
        return next(r.r2 for r in self.rungs if r.name == self.best)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TheoryCheck":
        """Rebuild from :meth:`to_dict` or its JSON (null back to NaN, except n* where it means none)."""
        numbers = lambda d: {k: nan_if_null(v) for k, v in d.items()}  # noqa: E731
        return cls(
            rungs=[Rung.from_dict(r) for r in data["rungs"]],
            best=data["best"],
            growth=numbers(data["growth"]),
            dilution=numbers(data["dilution"]),
            split=numbers(data["split"]),
            hijack={T: dict(v) for T, v in data["hijack"].items()},
            fallback=numbers(data["fallback"]),
            attention_correlation=nan_if_null(data["attention_correlation"]),
        )


def rung_prediction(meas: Measurements, diagonals: ProjectionDiagonals, rung: Rung, which: str = "output") -> Tensor:
    """A formula rung's xi^IC for the ``output``, ``rival`` or ``favourite`` of each prompt."""
    return _formula(meas, diagonals, rung.name, rung.fitted, which)


def _cell_means(meas: Measurements, values: Tensor) -> dict[tuple[int, int], float]:
    cells = {}
    for T in meas.length.unique().tolist():
        for n in meas.n_output.unique().tolist():
            mask = (meas.length == T) & (meas.n_output == n) & (meas.rival < 0)
            if mask.any():
                cells[(T, n)] = float(values[mask].double().mean())
    return cells


def check_theory(meas: Measurements, diagonals: ProjectionDiagonals, seed: int = 0) -> TheoryCheck:
    """Run the ladder and test each consequence with the best formula rung."""
    rungs = ladder(meas, diagonals, seed)
    formula = [r for r in rungs if r.name != "measured_attention"]
    best = max(formula, key=lambda r: r.r2 if math.isfinite(r.r2) else -math.inf)
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

    difference = meas.logit_difference
    global_difference = meas.global_output - meas.global_favourite
    predicted_difference = predicted - rung_prediction(meas, diagonals, best, "favourite") + global_difference
    hijack = {}
    for T in lengths:
        single = (meas.length == T) & (meas.rival < 0)
        measured_n = _threshold(meas.n_output[single], difference[single])
        predicted_n = _threshold(meas.n_output[single], predicted_difference[single])
        hijack[str(T)] = {"measured": measured_n, "predicted": predicted_n}

    with_rival = meas.rival >= 0
    split = {"r2": float("nan"), "n_prompts": int(with_rival.sum())}
    if with_rival.sum() >= 3:
        sub = meas.select(with_rival)
        share = sub.ic_output / (sub.ic_output + sub.ic_rival)
        pa, pb = rung_prediction(sub, diagonals, best), rung_prediction(sub, diagonals, best, "rival")
        split["r2"] = r_squared(pa / (pa + pb), share)
        split["spearman"] = spearman(pa / (pa + pb), share)

    zero = meas.n == 0
    mean = lambda x: float(x[zero].double().mean()) if zero.any() else float("nan")  # noqa: E731
    fallback = {
        "n_prompts": int(zero.sum()),
        "top1_is_favourite": mean(meas.top1 == meas.favourite),
        "measured_ic_output": mean(meas.ic_output),
        "predicted_ic_output": mean(predicted),
    }
    alpha = _alpha(meas, diagonals, best.name, best.fitted)
    weight = alpha.exp()
    n, T = meas.n.double(), meas.length.double()
    predicted_mass = n * weight / (n * weight + T - n)
    return TheoryCheck(
        rungs=rungs,
        best=best.name,
        growth=trend(group_by_length=True),
        dilution=trend(group_by_length=False),
        split=split,
        hijack=hijack,
        fallback=fallback,
        attention_correlation=pearson(predicted_mass, meas.attention_on_S.double()),
    )


def _threshold(counts: Tensor, difference: Tensor) -> int | None:
    """Smallest count whose mean difference is positive (None if none is)."""
    for n in sorted(counts.unique().tolist()):
        if difference[counts == n].double().mean() > 0:
            return int(n)
    return None


def pearson(a: Tensor, b: Tensor) -> float:
    """Linear correlation."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    norm = a.norm() * b.norm()
    return float(a @ b / norm) if norm > 0 else float("nan")
