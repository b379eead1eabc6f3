"""The study's configuration: the variants, :class:`LengthsStudyConfig`, its presets, and the
:class:`~induction_bigram.config.RunConfig` each variant trains with."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from induction_bigram.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from induction_bigram.errors import ConfigError

Protocol = Literal["oversight", "ordinary"]
PROTOCOLS: tuple[Protocol, ...] = ("oversight", "ordinary")
MAIN_VARIANTS = ("ape", "rpe", "rope", "nope")
_VARIANT_MODELS: dict[str, dict[str, Any]] = {
    "ape": {"positional": "ape"},
    "rpe": {"positional": "rpe"},
    "rope": {"positional": "rope", "rope_qk_bias": True},
    "rope-nobias": {"positional": "rope", "rope_qk_bias": False},
    "nope": {"positional": "nope"},
}
VARIANTS = tuple(_VARIANT_MODELS)


@dataclass(frozen=True)
class LengthsStudyConfig:
    """One object for the whole study (the prototype recipe of docs/THEORY.md section 5.6).

    Attributes:
        variants: names from :data:`VARIANTS`.
        train_length: T_train, the length of every training prompt.
        multiples: the k of the evaluation lengths k T_train; must start at 1.
        d_model: d.
        n_triggers: K fixed triggers (the K most frequent characters), uniform outputs.
        steps / batch_size / lr: AdamW (no weight decay) on the in-context loss.
        variant_steps: per-variant number of steps overriding ``steps``.
        eval_batch_size: prompts per (protocol, k).
        chunk_size: prompts per forward pass during evaluation (bounds the memory).
        model_seed / train_seed / eval_seed: the frozen matrices, the training batches and
            the evaluation batches.
        rpe_clipped: also evaluate the trained rpe model with its untrained far offsets set to
            the last trained one (:func:`clipped_relative_bias`), reported as ``rpe-clipped``.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        threads: ``torch.set_num_threads`` for the study's duration (restored after);
            ``None`` leaves it alone. At d = 128 one thread is as fast as two on an idle
            2-core machine and far faster on a busy one (measured: 0.05 s against 0.7 s per
            training step while another process kept one core busy).
    """

    variants: tuple[str, ...] = MAIN_VARIANTS
    train_length: int = 64
    multiples: tuple[int, ...] = (1, 2, 3, 4)
    d_model: int = 128
    n_triggers: int = 5
    steps: int = 1500
    batch_size: int = 64
    lr: float = 0.03
    variant_steps: dict[str, int] = field(default_factory=dict)
    eval_batch_size: int = 256
    chunk_size: int = 32
    model_seed: int = 0
    train_seed: int = 0
    eval_seed: int = 2024
    rpe_clipped: bool = True
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        unknown = [v for v in (*self.variants, *self.variant_steps) if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
        ks = list(self.multiples)
        if not ks or ks[0] != 1 or ks != sorted(set(ks)):
            raise ConfigError(f"multiples must be increasing and start at 1, got {self.multiples}")
        for name in ("train_length", "d_model", "n_triggers", "batch_size", "eval_batch_size", "chunk_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.train_length < 2:
            raise ConfigError(f"train_length must be >= 2, got {self.train_length}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1 or None, got {self.threads}")

    @property
    def max_length(self) -> int:
        """k_max T_train: the context of every variant and the longest evaluation prompt."""
        return self.train_length * self.multiples[-1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LengthsStudyConfig":
        names = {f.name for f in fields(cls)}
        bad = set(data) - names
        if bad:
            raise ConfigError(f"unknown lengths-study key {sorted(bad)[0]!r}")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)


LENGTHS_PRESETS: dict[str, LengthsStudyConfig] = {
    # docs/THEORY.md's prototype: d = 128, T_train = 64, evaluation up to 256, K = 5, Adam 0.03,
    # 1,500 steps; about 10 minutes for the four variants on 2 CPU cores
    "cpu": LengthsStudyConfig(threads=1),
    # a few steps of a tiny model: bookkeeping only, no learning
    "test": LengthsStudyConfig(
        train_length=8,
        d_model=16,
        n_triggers=3,
        steps=3,
        batch_size=8,
        eval_batch_size=12,
        chunk_size=5,
    ),
}


def lengths_preset(name: str) -> LengthsStudyConfig:
    """A named study configuration from :data:`LENGTHS_PRESETS`."""
    try:
        return LENGTHS_PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown lengths preset {name!r}; choose one of {', '.join(sorted(LENGTHS_PRESETS))}"
        ) from None


def variant_config(variant: str, study: LengthsStudyConfig | None = None) -> RunConfig:
    """The :class:`RunConfig` of one variant: trained at T_train, context k_max T_train.

    Under APE the positions T_train..n_ctx - 1 therefore exist (random frozen p_t) but no
    training prompt reaches them.
    """
    study = study or LengthsStudyConfig()
    if variant not in _VARIANT_MODELS:
        raise ConfigError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    steps = study.variant_steps.get(variant, study.steps)
    return RunConfig(
        task=TaskConfig(seq_len=study.train_length, n_triggers=study.n_triggers),
        model=ModelConfig(
            d_model=study.d_model,
            n_ctx=study.max_length,
            seed=study.model_seed,
            **_VARIANT_MODELS[variant],
        ),
        train=TrainConfig(
            steps=steps,
            batch_size=study.batch_size,
            optimizer="adamw",
            lr=study.lr,
            weight_decay=0.0,
            loss="in_context",
            eval_every=max(steps // 10, 1),
            eval_batch_size=min(study.eval_batch_size, 256),
            checkpoint_every=max(steps, 1),
            seed=study.train_seed,
            device=study.device,
        ),
    )
