"""The run config: one section per thing that owns settings, plus the named run presets.

- :class:`TaskConfig` owns the data (docs/THEORY.md section 1): corpus, T, K, trigger/output modes.
- :class:`ModelConfig` owns the architecture (section 2): d, n_ctx, positional variant, FFN.
- :class:`TrainConfig` owns the optimisation: steps, batch, optimiser, loss, evaluation.
- :class:`RunConfig` bundles the three; it is what a run folder's ``config.json`` and
  checkpoint hold, and the ``task``/``model``/``train`` part of every study config.

Every field is validated on construction and an invalid value raises :class:`ConfigError`
naming the field and the value. Overrides use dotted keys (``model.d_model=64``), exactly as
the CLI's ``--set``.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Optional, TypeVar, Union

from induction_bigram.config.base import Config, Presets
from induction_bigram.config.checks import at_least, check_context, one_of, section, seed_field, show
from induction_bigram.errors import ConfigError

POSITIONAL_ENCODINGS: dict[str, int] = {"ape": 2, "rpe": 2, "rope": 2, "nope": 3}
"""The positional encodings (``model.positional``) and their attention layers; each name's module in
:mod:`induction_bigram.model.encodings` holds the rest (docs/extending.md, "A new positional encoding")."""
FeedForward = Literal["none", "linear", "relu"]
FeedForwardInput = Literal["stream", "token"]
S = TypeVar("S", bound="StudyConfig")


@section("task")
class TaskConfig:
    """The bigram-with-triggers data of docs/THEORY.md section 1.

    Attributes:
        corpus: ``"tinyshakespeare"`` (the shipped statistics), ``"zipf:N:ALPHA:SEED"``
            (synthetic Zipf statistics over N characters with exponent ALPHA, drawn from SEED:
            :meth:`BigramStats.synthetic`, e.g. ``"zipf:64:1.0:0"``), a path to a text file, or a
            path to a statistics JSON written by :meth:`BigramStats.save`.
        seq_len: T, the number of input tokens per sequence.
        n_triggers: K, the number of triggers q_1..q_K per sequence.
        trigger_mode: ``"fixed"`` (the K most frequent tokens) or ``"random"`` (K distinct
            tokens drawn from pi_u per sequence).
        output_mode: ``"uniform"`` over the vocabulary or ``"bigram"`` from pi_b(. | q_k).
        no_repeat: forbid o_k = q_k.
    """

    corpus: str = "tinyshakespeare"
    seq_len: int = at_least(2, 256)
    n_triggers: int = at_least(1, 5)
    trigger_mode: Literal["fixed", "random"] = "fixed"
    output_mode: Literal["uniform", "bigram"] = "uniform"
    no_repeat: bool = False


@section("model")
class ModelConfig:
    """The two-layer attention model of docs/THEORY.md section 2.

    Attributes:
        d_model: d, the width of the residual stream (also the head dimension).
        n_ctx: the longest prompt the model accepts; >= ``task.seq_len``. Under APE, positions
            beyond the training length exist (random p_t) but are never trained on.
        d_vocab: N; ``None`` means "take it from the corpus".
        positional: the positional encoding, a name of :data:`POSITIONAL_ENCODINGS` (each module of
            :mod:`induction_bigram.model.encodings` says what it is).
        ffn: feed-forward layer after the last attention layer (the associative memory
            transformer): ``"none"``, ``"linear"`` (W_F, d x d) or ``"relu"`` (an MLP).
        d_mlp: hidden width of the ReLU MLP (default 4 d); must be ``None`` otherwise.
        ffn_reads: ``"stream"`` (the stream after the last attention layer, heads' outputs
            included) or ``"token"``: w_E(z_t) alone, Bietti et al.'s and Wang & Sato's idealised
            model, whose W_F never sees the in-context signal (docs/THEORY.md section 4.2).
        rope_qk_bias: under ``rope``, train query and key biases in layer 1, so that the score
            gains b_Q^T R_(s-t) b_K, a function of the offset alone.
        seed: seeds every random (frozen) matrix.
    """

    d_model: int = at_least(2, 256)
    n_ctx: int = at_least(2, 256)
    d_vocab: Optional[int] = at_least(2, None)
    positional: str = "ape"
    ffn: FeedForward = "none"
    d_mlp: Optional[int] = at_least(1, None)
    ffn_reads: FeedForwardInput = "stream"
    rope_qk_bias: bool = False
    seed: int = seed_field()

    def check(self) -> None:
        one_of("model.positional", self.positional, POSITIONAL_ENCODINGS)
        if self.d_mlp is not None and self.ffn != "relu":
            raise ConfigError(f"model.d_mlp is only used with model.ffn='relu', got ffn={self.ffn!r}")
        if self.ffn_reads != "stream" and self.ffn == "none":
            raise ConfigError(f"model.ffn_reads={self.ffn_reads!r} needs a feed-forward layer (model.ffn), got 'none'")
        if self.rope_qk_bias and self.positional != "rope":
            raise ConfigError(f"model.rope_qk_bias needs model.positional='rope', got {self.positional!r}")
        if self.positional == "rope" and self.d_model % 2:
            raise ConfigError(f"model.d_model must be even for rotary, got {self.d_model}")

    @property
    def n_layers(self) -> int:
        """Attention layers: two, or three under NoPE (the causal mask must supply order)."""
        return POSITIONAL_ENCODINGS[self.positional]


@section("train")
class TrainConfig:
    """Optimisation, loss and evaluation.

    Attributes:
        steps: optimiser steps; each sees ``batch_size`` fresh sequences.
        micro_batch_size: run the batch through the model this many sequences at a time,
            adding up the gradients (same maths, less memory; on CPU faster for big batches).
            ``None``: the whole batch at once.
        loss: ``"in_context"`` (cross-entropy on targets with label >= 2, the reference) or
            ``"full"`` (every target; use it with an FFN so the bigrams are learned too).
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adamw"``.
        lr_scaling: ``"none"``: ``lr`` and ``weight_decay`` for every trained matrix.
            ``"reference-code"``: per-matrix learning rates that take the steps the reference
            code's optimiser takes in its parametrisation, whose embeddings have norm sqrt(d)
            (:func:`induction_bigram.training.loop.reference_code_scales`): under SGD W_K^l gets
            d^2 lr and W_O^L (and W_F) d lr, each weight decay divided by the same factor so
            the decay per step is unchanged. The reference recipe's lr 0.03 is meant this way;
            with ``"none"`` W_K moves about d^2 times slower and nothing forms in 1000 steps.
        eval_every / eval_batch_size / eval_seed: a fixed evaluation batch, drawn once from
            ``eval_seed``, scored every ``eval_every`` steps (and at steps 0 and the last).
        checkpoint_every: steps between checkpoints (the last step is always saved).
        seed: seeds the training batches.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        compile: run the training forward/backward through ``torch.compile``: ``True``,
            ``False``, or ``"auto"``: on where compiling (about 30 s on CPU, with a C++
            compiler) pays for itself, measured by ``benchmarks/bench_compile.py``
            (:func:`induction_bigram.training.compile.compile_decision`; the progress output says
            which and why). Compiling does not change what is learned beyond float rounding;
            evaluation, analyses and hooks stay eager.
        fused_loss: compute the training loss from the weights, the last layer and the
            unembedding at the readout positions only (:mod:`induction_bigram.training.fused`):
            ``"auto"`` wherever that is the model's maths and ``train.compile`` is not ``True``,
            ``True`` (an error where it cannot), ``False`` (through the model's forward). The
            same loss and gradients within float rounding; evaluation, analyses and hooks run
            the model.
    """

    steps: int = at_least(0, 1000)
    batch_size: int = at_least(1, 512)
    micro_batch_size: Optional[int] = at_least(1, None)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = at_least(0.0, 0.03)
    lr_scaling: Literal["none", "reference-code"] = "none"
    momentum: float = at_least(0.0, 0.9)
    weight_decay: float = at_least(0.0, 1e-4)
    loss: Literal["in_context", "full"] = "in_context"
    eval_every: int = at_least(1, 50)
    eval_batch_size: int = at_least(1, 512)
    eval_seed: int = seed_field(12345, evaluation=True)
    checkpoint_every: int = at_least(1, 100)
    seed: int = seed_field()
    device: str = "auto"
    compile: Union[bool, Literal["auto"]] = "auto"
    fused_loss: Union[bool, Literal["auto"]] = "auto"

    def check(self) -> None:
        if self.momentum >= 1:
            raise ConfigError(f"train.momentum must be < 1, got {self.momentum}")
        if self.device != "auto":
            import torch

            try:
                torch.device(self.device)
            except Exception:  # torch raises RuntimeError (and others) for strings it cannot parse
                raise ConfigError(
                    f"train.device must be 'auto' or a torch device such as 'cpu' or 'cuda:0', got {show(self.device)}"
                ) from None


@dataclass(frozen=True)
class RunConfig(Config):
    """Everything needed to rebuild a run: ``task``, ``model`` and ``train``."""

    task: TaskConfig
    model: ModelConfig
    train: TrainConfig

    def __post_init__(self) -> None:
        check_context(self.model.n_ctx, self.task.seq_len)
        if self.model.d_vocab is not None and self.task.n_triggers > self.model.d_vocab:
            raise ConfigError(
                f"task.n_triggers ({self.task.n_triggers}) exceeds the vocabulary "
                f"(model.d_vocab = {self.model.d_vocab})"
            )

    def with_vocab(self, d_vocab: int) -> "RunConfig":
        """Fill ``model.d_vocab`` from the corpus; a different explicit value is an error."""
        if self.model.d_vocab not in (None, d_vocab):
            raise ConfigError(f"model.d_vocab = {self.model.d_vocab} but the corpus has {d_vocab} tokens")
        return dataclasses.replace(self, model=dataclasses.replace(self.model, d_vocab=d_vocab))

    def recipe(self) -> "RunConfig":
        """This config with ``train.compile`` and ``train.fused_loss`` at their defaults: what a
        run learns, without how it executes. Resuming and the shipped-model checks compare
        recipes, so a run trained eager resumes compiled (and back), as the same run up to float
        rounding."""
        return dataclasses.replace(self, train=dataclasses.replace(self.train, compile="auto", fused_loss="auto"))


@dataclass(frozen=True)
class StudyConfig(Config):
    """Base of a study config whose ``task``, ``model`` and ``train`` sections are one run's
    (the keys mean what they mean in :class:`RunConfig`), beside the study's own section.
    Subclasses add that section, with a default."""

    task: TaskConfig
    model: ModelConfig
    train: TrainConfig

    def __post_init__(self) -> None:
        self.run_config()  # the run's own cross-section checks (n_ctx >= seq_len, ...)

    def run_config(self) -> RunConfig:
        """The run the study trains (or loads)."""
        return RunConfig(self.task, self.model, self.train)

    @classmethod
    def of_run(cls: type[S], run: RunConfig, **sections: Any) -> S:
        """The study of ``run``, with its own sections as given (else their defaults)."""
        return cls(task=run.task, model=run.model, train=run.train, **sections)

    def with_run(self: S, run: RunConfig) -> S:
        """This study on another run's config (e.g. the one a run folder holds)."""
        return dataclasses.replace(self, task=run.task, model=run.model, train=run.train)


def tiny(run: RunConfig, *, seq_len: int = 16, d_model: int = 16, steps: int = 4) -> RunConfig:
    """``run`` shrunk to a size that trains in well under a second on a CPU: the run part of
    every study's ``test`` preset (bookkeeping checks, not learning)."""
    return run.with_overrides(
        {
            "task.seq_len": seq_len,
            "model.d_model": d_model,
            "model.n_ctx": seq_len,
            "train.steps": steps,
            "train.batch_size": 8,
            "train.micro_batch_size": None,
            "train.eval_every": max(steps // 2, 1),
            "train.eval_batch_size": 8,
            "train.checkpoint_every": steps,
            "train.device": "cpu",
        }
    )


def _preset_reference() -> RunConfig:
    return RunConfig(
        task=TaskConfig(seq_len=256, n_triggers=5),
        model=ModelConfig(d_model=256, n_ctx=256),
        train=TrainConfig(
            steps=1000,
            batch_size=512,
            micro_batch_size=128,
            optimizer="sgd",
            lr=0.03,
            lr_scaling="reference-code",
            momentum=0.9,
            weight_decay=1e-4,
            eval_every=50,
            eval_batch_size=512,
            checkpoint_every=100,
        ),
    )


def _adamw(train: TrainConfig, **changes: Any) -> TrainConfig:
    """``train`` with the AdamW recipe of the non-reference presets: lr 0.03, no weight decay,
    one learning rate for every matrix."""
    return dataclasses.replace(train, optimizer="adamw", lr=0.03, lr_scaling="none", weight_decay=0.0, **changes)


def _preset_reference_adamw() -> RunConfig:
    """The reference shape trained with AdamW at lr 0.03, batch 128, one learning rate for
    every matrix: a second recipe that needs no reparametrisation."""
    ref = _preset_reference()
    return dataclasses.replace(
        ref,
        train=_adamw(ref.train, batch_size=128, micro_batch_size=None),
    )


def _preset_quick() -> RunConfig:
    ref = _preset_reference()
    return RunConfig(
        task=dataclasses.replace(ref.task, seq_len=64),
        model=dataclasses.replace(ref.model, d_model=64, n_ctx=64),
        train=_adamw(
            ref.train,
            steps=2500,
            batch_size=128,
            eval_every=250,
            eval_batch_size=512,
            checkpoint_every=500,
        ),
    )


def _preset_amt_idealised() -> RunConfig:
    """``amt`` whose FFN reads only w_E(z_t) (docs/THEORY.md section 4.2): shipped as ``amt-idealised``."""
    return _preset_amt().with_overrides({"model.ffn_reads": "token"})


def _preset_amt_reference() -> RunConfig:
    """The associative memory transformer at the reference shape (d = T = 256): a linear W_F
    after layer 2, trained on every target.

    Outputs are drawn from pi_b(. | q), so that the first occurrence of each trigger follows the
    bigram and the global memory learns pi_b(. | q) for triggers too: the prompt and the
    pretraining then disagree about q, which is the contest docs/THEORY.md section 4 is about (with
    uniform outputs the FFN learns a near-uniform prediction after a trigger).
    """
    ref = _preset_reference()
    return RunConfig(
        task=dataclasses.replace(ref.task, output_mode="bigram"),
        model=dataclasses.replace(ref.model, ffn="linear"),
        train=_adamw(ref.train, loss="full"),
    )


def _preset_amt() -> RunConfig:
    """The associative memory transformer at d = T = 128, 1,500 steps (about 2 minutes on 2 CPU
    cores): the shipped ``amt`` model and the in-context study's default."""
    amt = _preset_amt_reference()
    return RunConfig(
        task=dataclasses.replace(amt.task, seq_len=128),
        model=dataclasses.replace(amt.model, d_model=128, n_ctx=128),
        train=dataclasses.replace(
            amt.train,
            steps=1500,
            batch_size=64,
            micro_batch_size=None,
            eval_every=250,
            eval_batch_size=256,
            checkpoint_every=500,
        ),
    )


def _preset_general() -> RunConfig:
    """A general induction head: ``quick`` with random triggers, K = 40 per sequence drawn
    from pi_u, so that W_K^2 is trained for most of the vocabulary instead of 5 fixed tokens,
    d = 128 and AdamW lr 0.3. Its acceptance test is
    :func:`induction_bigram.incontext.repeated.repeated_sequence_report` (random sequences of distinct
    tokens repeated twice; docs/THEORY.md section 3.7). With few triggers only frequent
    characters are ever triggers; with 40, even capitals and punctuation are, now and then. A
    wider model learned no faster per step in the trials that chose this recipe, and the
    induction attention on unseen random text keeps sharpening long after the training loss is
    near 0, at a pace set by the size of AdamW's steps: hence the large learning rate."""
    quick = _preset_quick()
    return RunConfig(
        task=dataclasses.replace(quick.task, trigger_mode="random", n_triggers=40),
        model=dataclasses.replace(quick.model, d_model=128),
        train=dataclasses.replace(quick.train, lr=0.3, steps=5000),
    )


def _preset_general_quick() -> RunConfig:
    """``general`` shortened for a fast end-to-end check (seconds on 2 CPU cores): the
    previous-token head forms and the induction head starts to; not a passing model."""
    general = _preset_general()
    return dataclasses.replace(
        general,
        train=dataclasses.replace(
            general.train,
            steps=400,
            batch_size=64,
            micro_batch_size=None,
            eval_every=200,
            eval_batch_size=128,
            checkpoint_every=400,
        ),
    )


PRESETS: Presets[RunConfig] = Presets(
    "run",
    {
        "reference": _preset_reference,
        "reference-adamw": _preset_reference_adamw,
        "quick": _preset_quick,
        "amt": _preset_amt,
        "amt-idealised": _preset_amt_idealised,
        "amt-reference": _preset_amt_reference,
        "general": _preset_general,
        "general-quick": _preset_general_quick,
    },
)


def preset(name: str) -> RunConfig:
    """The named run preset (``induction-bigram presets`` lists them)."""
    return PRESETS[name]
