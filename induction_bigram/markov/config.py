"""The study's configuration: :class:`MarkovStudyConfig` (the markov run every alpha trains with,
and the ``markov`` section of the hijack) and its presets (docs/THEORY.md section 9.4).

The module has no ``from __future__ import annotations``: a config section's annotations must be
objects (:func:`~induction_bigram.serialise.field_types`).
"""

import dataclasses
from dataclasses import dataclass

from induction_bigram.config import Config, Presets
from induction_bigram.config.checks import at_least, section, seed_field
from induction_bigram.config.markov import MarkovConfig, MarkovTaskConfig, MarkovTrainConfig, markov_preset
from induction_bigram.config.standard import StandardModelConfig
from induction_bigram.errors import ConfigError


@section("markov")
class HijackSettings:
    """The alphas the study trains at and the designed prompts it asks each model (the ``markov.*`` keys).

    Attributes:
        alphas: the prior strengths, one model each (``task.alpha`` is set from them).
        lengths: the prompt lengths T, each at most ``task.seq_len``.
        max_count: the counts n = 0..max_count of "q o" in a prompt; 2 max_count + 1 <= min(lengths).
        pairs_per_alpha: (q, o) pairs chosen per alpha, their Bayes n* spread over [1, max_count - 1].
        prompts_per_cell: designed prompts per (pair, length, n); n* reads the cell's mean.
        eval_seed: seeds the designed prompts (the same for every alpha; a sweep's seed s adds s).
        chunk_size: prompts per forward pass.
    """

    alphas: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
    lengths: tuple[int, ...] = at_least(3, (64, 128))
    max_count: int = at_least(2, 30)
    pairs_per_alpha: int = at_least(1, 8)
    prompts_per_cell: int = at_least(1, 100)
    eval_seed: int = seed_field(2029, evaluation=True)
    chunk_size: int = at_least(1, 256)

    def check(self) -> None:
        if not self.alphas or any(not a > 0 for a in self.alphas) or list(self.alphas) != sorted(set(self.alphas)):
            raise ConfigError(f"markov.alphas must be increasing and > 0, got {self.alphas!r}")
        if not self.lengths or list(self.lengths) != sorted(set(self.lengths)):
            raise ConfigError(f"markov.lengths must be increasing, got {self.lengths!r}")
        if 2 * self.max_count + 1 > self.lengths[0]:
            raise ConfigError(
                f"markov.max_count {self.max_count} needs prompts of {2 * self.max_count + 1} tokens; "
                f"the shortest length is {self.lengths[0]}"
            )


@dataclass(frozen=True)
class MarkovStudyConfig(Config):
    """The whole study: the markov run's ``task``, ``model`` and ``train`` (``task.alpha`` is
    replaced by each of ``markov.alphas``) and ``markov``."""

    task: MarkovTaskConfig
    model: StandardModelConfig
    train: MarkovTrainConfig
    markov: HijackSettings = HijackSettings()

    def __post_init__(self) -> None:
        self.run_config(self.markov.alphas[0])  # the run's own cross-section checks
        if self.markov.lengths[-1] > self.task.seq_len:
            raise ConfigError(
                f"markov.lengths go to {self.markov.lengths[-1]}, beyond task.seq_len {self.task.seq_len} "
                "(the positions the model was trained on)"
            )

    def run_config(self, alpha: float) -> MarkovConfig:
        """The run trained at ``alpha``."""
        return MarkovConfig(dataclasses.replace(self.task, alpha=alpha), self.model, self.train)


def _of(run: MarkovConfig, settings: HijackSettings, **train: object) -> MarkovStudyConfig:
    return MarkovStudyConfig(run.task, run.model, dataclasses.replace(run.train, **train), settings)


def _full() -> MarkovStudyConfig:
    """The shipped ``markov`` recipe (T = 128, d_model 64, 3000 steps: config/markov.py's
    measurements) at each alpha; prompts of 64 and 128 tokens, n up to 30, 8 pairs per alpha,
    100 prompts per cell. Evaluates every 250 steps (the dynamics record is what the excess-loss
    claims read). Run it over 3 seeds or more."""
    return _of(markov_preset("markov"), HijackSettings(), eval_every=250)


def _quick() -> MarkovStudyConfig:
    """A recipe for ``reproduce --preset quick``: T = 64, d_model 32 (4 heads of 8), 1500 steps
    at AdamW 1e-2; prompts of 32 and 64 tokens, n up to 15, 6 pairs per alpha, 100 prompts per
    cell. What it gives over 5 seeds (which alphas form a statistical induction head, the excess
    loss, n* against Bayes, the seconds of training per alpha) is the ``markov`` section of
    docs/report-quick/numbers.json and the README's ``markov-hijack`` block, generated from it;
    at AdamW 3e-3 it formed no head at alpha = 1 by step 1500 (one seed), hence 1e-2."""
    run = MarkovConfig(
        MarkovTaskConfig(seq_len=64),
        StandardModelConfig(d_model=32, d_head=8, n_ctx=64),
        MarkovTrainConfig(steps=1500, lr=1e-2, eval_every=500, device="cpu"),
    )
    settings = HijackSettings(lengths=(32, 64), max_count=15, pairs_per_alpha=6)
    return _of(run, settings)


def _test() -> MarkovStudyConfig:
    """Tiny models trained a few steps at two alphas: the bookkeeping, not the claims."""
    settings = HijackSettings(alphas=(1.0, 4.0), lengths=(8, 16), max_count=3, pairs_per_alpha=2, prompts_per_cell=2)
    return _of(markov_preset("markov-test"), settings)


PRESETS: Presets[MarkovStudyConfig] = Presets("markov", {"quick": _quick, "full": _full, "test": _test})
