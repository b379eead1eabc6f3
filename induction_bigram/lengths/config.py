"""The study's configuration: the variants, :class:`LengthsConfig` and its presets, and the
:class:`~induction_bigram.config.RunConfig` each variant trains with (docs/THEORY.md section 5.6)."""

from dataclasses import dataclass, replace
from typing import Any, Literal

from induction_bigram.config import (
    POSITIONAL_ENCODINGS,
    Presets,
    RunConfig,
    StudyConfig,
    at_least,
    section,
    seed_field,
    tiny,
)
from induction_bigram.config import preset as run_preset
from induction_bigram.errors import ConfigError

Protocol = Literal["oversight", "ordinary"]
PROTOCOLS: tuple[Protocol, ...] = ("oversight", "ordinary")
MAIN_VARIANTS = tuple(POSITIONAL_ENCODINGS)
# the positional fields of the model section that each variant sets: every encoding as it is, but
# rotary with trained query and key biases (rope-nobias: without)
_VARIANT_MODELS: dict[str, dict[str, Any]] = {
    name: {"positional": name, "rope_qk_bias": name == "rope"} for name in POSITIONAL_ENCODINGS
} | {"rope-nobias": {"positional": "rope", "rope_qk_bias": False}}
VARIANTS = tuple(_VARIANT_MODELS)


@section("lengths")
class LengthsSettings:
    """What the study trains and how it evaluates (the ``lengths.*`` keys).

    Attributes:
        variants: names from :data:`VARIANTS`, each trained once.
        multiples: the k of the evaluation lengths k T_train; increasing, starting at 1.
        eval_batch_size: prompts per (protocol, k).
        chunk_size: prompts per forward pass during evaluation: it bounds the memory, and at 8
            T_train 16 runs faster than 32 and counts the same (benchmarks/bench_lengths_eval.py).
        eval_seed: seeds the evaluation prompts (the same for every variant).
        rpe_clipped: also evaluate the trained rpe model with its untrained far offsets set to
            the last trained one (:func:`~induction_bigram.lengths.study.clipped_relative_bias`),
            reported as ``rpe-clipped``.
        rpe_logn: also evaluate the trained rpe model with its far offsets at the mean trained
            far bias and log-length scaling of layer 1's scores
            (:func:`~induction_bigram.lengths.study.length_scaled_layer1`), reported as ``rpe-logn``.
        threads: ``torch.set_num_threads`` for the study's duration (restored after); ``None``
            leaves it alone. At d = 128 one thread is as fast as two on an idle 2-core machine
            and far faster on a busy one (measured: 0.05 s against 0.7 s per training step while
            another process kept one core busy).
    """

    variants: tuple[str, ...] = MAIN_VARIANTS
    multiples: tuple[int, ...] = at_least(1, (1, 2, 3, 4, 6, 8))
    eval_batch_size: int = at_least(1, 256)
    chunk_size: int = at_least(1, 16)
    eval_seed: int = seed_field(2024, evaluation=True)
    rpe_clipped: bool = True
    rpe_logn: bool = True
    threads: int | None = at_least(1, None)

    def check(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"lengths.variants: unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ConfigError(f"lengths.variants must name each variant once, got {self.variants!r}")
        ks = list(self.multiples)
        if not ks or ks[0] != 1 or ks != sorted(set(ks)):
            raise ConfigError(f"lengths.multiples must be increasing and start at 1, got {self.multiples!r}")


@dataclass(frozen=True)
class LengthsConfig(StudyConfig):
    """The whole study: the run sections every variant trains with, and ``lengths``.

    ``task.seq_len`` is T_train. ``model`` is the base architecture: :func:`variant_config`
    sets its ``n_ctx`` to :attr:`max_length` and its positional fields (``positional``,
    ``rope_qk_bias``) per variant, so those two must be left at ``ape`` / false here.
    """

    lengths: LengthsSettings = LengthsSettings()

    def __post_init__(self) -> None:  # not the base's check: each variant sets its own n_ctx
        if self.model.positional != "ape" or self.model.rope_qk_bias:
            raise ConfigError(
                "model.positional and model.rope_qk_bias are set per variant; choose variants "
                f"with lengths.variants (got model.positional={self.model.positional!r})"
            )
        for variant in self.lengths.variants:  # every variant's run config is valid, now
            variant_config(variant, self)

    @property
    def max_length(self) -> int:
        """k_max T_train: the context of every variant and the longest evaluation prompt."""
        return self.task.seq_len * self.lengths.multiples[-1]


def variant_config(variant: str, config: LengthsConfig) -> RunConfig:
    """The :class:`RunConfig` of one variant: trained at T_train, context k_max T_train.

    Under APE the positions T_train..n_ctx - 1 therefore exist (random frozen p_t) but no
    training prompt reaches them.
    """
    if variant not in _VARIANT_MODELS:
        raise ConfigError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    model = replace(config.model, n_ctx=config.max_length, **_VARIANT_MODELS[variant])
    return RunConfig(task=config.task, model=model, train=config.train)


def _preset_cpu() -> LengthsConfig:
    """docs/THEORY.md section 5.6's prototype: d = 128, T_train = 64, k = 1, 2, 3, 4, 6, 8, AdamW
    0.03, 1,500 steps."""
    quick = run_preset("quick")  # T_train = 64, K = 5 fixed triggers, AdamW lr 0.03 without decay
    steps = 1500
    return LengthsConfig(
        task=quick.task,
        model=replace(quick.model, d_model=128),
        train=replace(
            quick.train,
            steps=steps,
            batch_size=64,
            micro_batch_size=None,
            eval_every=steps // 10,
            eval_batch_size=256,
            checkpoint_every=steps,
            seed=0,
            device="cpu",
        ),
        lengths=LengthsSettings(threads=1),
    )


def _preset_test() -> LengthsConfig:
    """A few steps of a tiny model (d = 16, T_train = 8): bookkeeping only, no learning."""
    run = tiny(_preset_cpu().run_config(), seq_len=8, steps=3).with_overrides({"task.n_triggers": 3})
    return LengthsConfig.of_run(run, lengths=LengthsSettings(eval_batch_size=12, chunk_size=5))


PRESETS: Presets[LengthsConfig] = Presets("lengths", {"cpu": _preset_cpu, "test": _preset_test})
