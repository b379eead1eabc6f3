"""The in-context study's config: the run it trains (``task``, ``model``, ``train``) and the
prompts it measures that run with (``incontext``), and its named presets.

The run sections come from the run preset ``amt`` (docs/THEORY.md section 4: the associative
memory transformer, whose FFN holds the global bigrams), so ``--set train.lr=0.1`` means what it
means for ``induction-bigram train``; ``incontext.*`` sizes the prompt grid of sections 5 and 6.
"""

import dataclasses
from dataclasses import dataclass

from induction_bigram.config import Presets, StudyConfig, tiny
from induction_bigram.config.checks import at_least, section, seed_field
from induction_bigram.config.run import preset
from induction_bigram.errors import ConfigError


@section("incontext")
class InContextSettings:
    """The designed prompts of the study (docs/THEORY.md sections 5 and 6).

    Attributes:
        length_fractions: prompt lengths as fractions of the training length T_train, in (0, 1].
        max_count: n runs over 0..max_count (capped so that 2n + 1 <= T).
        per_cell: prompts per (T, n) cell.
        competing: (n_a, n_b) pairs for the two-output prompts, at the middle length; pairs
            with 2 (n_a + n_b) >= T are left out.
        patch_count / patch_prompts / patch_length: n, batch size and length (capped at
            T_train) of the aligned patching prompts.
        seed: seeds every prompt and the held-out split.
        idealised: also train the run's idealised twin, whose FFN reads only w_E(z_t)
            (``model.ffn_reads="token"``, docs/THEORY.md section 4.2), and run the same analysis
            on it; only where the run's FFN reads the stream (otherwise there is no twin).
    """

    length_fractions: tuple[float, ...] = dataclasses.field(
        default=(0.25, 0.5, 0.75, 1.0), metadata={"min": 0.0, "max": 1.0}
    )
    max_count: int = at_least(0, 8)
    per_cell: int = at_least(1, 100)
    competing: tuple[tuple[int, int], ...] = ((1, 1), (2, 1), (1, 2), (3, 1), (1, 3), (2, 2), (4, 2), (2, 4))
    patch_count: int = at_least(1, 3)
    patch_prompts: int = at_least(1, 100)
    patch_length: int = at_least(2, 64)
    seed: int = seed_field(evaluation=True)
    idealised: bool = True

    def check(self) -> None:
        if not self.length_fractions or 0.0 in self.length_fractions:
            raise ConfigError(f"incontext.length_fractions must be fractions in (0, 1], got {self.length_fractions}")
        if any(a < 1 or b < 1 for a, b in self.competing):
            raise ConfigError(f"incontext.competing pairs (n_a, n_b) must both be >= 1, got {self.competing}")


@dataclass(frozen=True)
class InContextConfig(StudyConfig):
    """The in-context against bigram study: one trained run and the prompts it is measured on."""

    incontext: InContextSettings = InContextSettings()

    def __post_init__(self) -> None:
        run = self.run_config()  # the run's own checks
        if run.model.n_layers != 2:
            raise ConfigError(
                f"the in-context study needs a 2-layer model; model.positional={run.model.positional!r} has "
                f"{run.model.n_layers}"
            )
        length, n = min(self.incontext.patch_length, self.task.seq_len), self.incontext.patch_count
        if length < 2 * n + 5:
            raise ConfigError(
                f"incontext.patch_count = {n} pairs 'q o' spaced apart need prompts of at least {2 * n + 5} "
                f"tokens; incontext.patch_length and task.seq_len give {length}"
            )


def idealised_twin(config: InContextConfig) -> InContextConfig | None:
    """The same study on the run with the idealised FFN (``incontext.idealised``), or ``None``
    where it is off or the run has no FFN reading the stream."""
    if not config.incontext.idealised or config.model.ffn == "none" or config.model.ffn_reads != "stream":
        return None
    return dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, ffn_reads="token"),
        incontext=dataclasses.replace(config.incontext, idealised=False),
    )


def _full() -> InContextConfig:
    """The whole study on the ``amt`` run (d = T = 128): 100 prompts per (T, n) cell and 100 to
    patch, so that each cell's mean is over at least 100 prompts in every seed."""
    return InContextConfig.of_run(preset("amt"))


def _quick() -> InContextConfig:
    """``full`` without the idealised twin (``reproduce --preset quick``): every prompt is kept,
    at least 100 per cell, so that each cell's mean is not noise. The twin doubles the study's
    training and judges no finding (claim 44 holds by construction, 45 is reported), so only
    ``full`` trains it."""
    return _full().with_overrides({"incontext.idealised": False})


def _test() -> InContextConfig:
    """Seconds on a CPU, for tests: a 20-step amt run at d = 16, T = 32, and a few prompts."""
    settings = InContextSettings(per_cell=2, max_count=3, competing=((1, 1),), patch_prompts=4, patch_length=16)
    return InContextConfig.of_run(tiny(preset("amt"), seq_len=32, steps=20), incontext=settings)


PRESETS: Presets[InContextConfig] = Presets("incontext", {"full": _full, "quick": _quick, "test": _test})
