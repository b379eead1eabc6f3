"""The ``standard`` config: a standard TransformerLens model trained on plain text.

- :class:`TextConfig` owns the data: the text file and its held-out slice.
- :class:`StandardModelConfig` owns the architecture: a TL model with several heads per layer,
  LayerNorm and learned token and positional embeddings, attention-only unless ``d_mlp`` is set.
- :class:`StandardTrainConfig` owns the optimisation (AdamW, :class:`AdamWTrainConfig`) and the
  evaluation.
- :class:`StandardConfig` bundles the three; a standard run folder's ``config.json`` holds it,
  with ``model.vocab`` filled in from the text.

Overrides use the same dotted keys as every config (``--set model.n_heads=8``).
"""

import dataclasses
from dataclasses import dataclass
from typing import Literal, Optional

from induction_bigram.config.base import Config, Presets
from induction_bigram.config.checks import at_least, section, seed_field, show
from induction_bigram.errors import ConfigError


@section("data")
class TextConfig:
    """Next-character prediction on a text file.

    Attributes:
        text: path to a UTF-8 text file (``--text`` on the command line); empty in the presets.
            A run stores it absolute.
        held_out_fraction: the last fraction of the text, never trained on, for the held-out loss.
        held_out_windows: how many fixed windows of that slice the held-out loss averages over.
        sha256: the text's content hash, filled in when a run reads it (``""``: not read yet); a
            resumed run must read the same text, by whatever path.
    """

    text: str = ""
    held_out_fraction: float = at_least(0.0, 0.1)
    held_out_windows: int = at_least(1, 64)
    sha256: str = ""

    def check(self) -> None:
        if not 0 < self.held_out_fraction < 1:
            raise ConfigError(f"data.held_out_fraction must be in (0, 1), got {self.held_out_fraction}")


@section("model")
class StandardModelConfig:
    """A standard TL model (TL's own initialisation), attention-only by default.

    Attributes:
        n_layers / n_heads / d_model / d_head: the shape; an induction circuit needs 2 layers.
        n_ctx: the context length; training windows hold n_ctx + 1 characters.
        normalization: TL's ``normalization_type``: ``"LN"``, ``"LNPre"`` or ``"none"``.
        positional: TL's ``positional_embedding_type``: ``"standard"`` (learned absolute
            positions added to the stream), ``"rotary"`` (rotary on the whole head, no positions
            in the stream) or ``"shortformer"`` (learned absolute positions added to the
            queries' and keys' input only).
        d_mlp: the hidden width of an MLP after each attention layer (TL's standard block,
            GELU); ``None``: attention only.
        vocab: the characters, token id i = ``vocab[i]``; ``None`` means "every character of
            the text, sorted" (a trained model's config holds them).
        seed: seeds TL's initialisation.
    """

    n_layers: int = at_least(1, 2)
    n_heads: int = at_least(1, 4)
    d_model: int = at_least(2, 64)
    d_head: int = at_least(1, 16)
    n_ctx: int = at_least(2, 128)
    normalization: Literal["LN", "LNPre", "none"] = "LN"
    positional: Literal["standard", "rotary", "shortformer"] = "standard"
    d_mlp: Optional[int] = at_least(1, None)
    vocab: Optional[str] = None
    seed: int = seed_field()

    def check(self) -> None:
        if self.vocab is not None and (len(self.vocab) < 2 or len(set(self.vocab)) != len(self.vocab)):
            raise ConfigError(f"model.vocab must hold at least 2 distinct characters, got {show(self.vocab)}")

    @property
    def d_vocab(self) -> Optional[int]:
        return None if self.vocab is None else len(self.vocab)


@section("train")
class AdamWTrainConfig:
    """AdamW on the next-token cross-entropy at every position: the ``train`` section the standard
    model's families share (each family's section subclasses it, with its own defaults and fields).

    Attributes:
        steps / batch_size / lr / weight_decay / beta1 / beta2: the optimiser (beta1 and beta2
            below 1).
        eval_every: steps between metrics records (also at steps 0 and the last).
        score_prompts: how many repeated random sequences the induction score averages over.
        checkpoint_every: steps between checkpoints (the last step is always saved).
        seed: seeds the training data (the model has its own ``model.seed``).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    """

    steps: int = at_least(0, 3000)
    batch_size: int = at_least(1, 32)
    lr: float = at_least(0.0, 1e-3)
    weight_decay: float = at_least(0.0, 0.01)
    beta1: float = at_least(0.0, 0.9)
    beta2: float = at_least(0.0, 0.99)
    eval_every: int = at_least(1, 100)
    score_prompts: int = at_least(1, 32)
    checkpoint_every: int = at_least(1, 500)
    seed: int = seed_field()
    device: str = "auto"

    def check(self) -> None:
        for name in ("beta1", "beta2"):
            if getattr(self, name) >= 1:
                raise ConfigError(f"train.{name} must be < 1, got {getattr(self, name)}")


@section("train")
class StandardTrainConfig(AdamWTrainConfig):
    """:class:`AdamWTrainConfig` on next-character prediction of a text; each metrics record holds
    the train loss, the held-out loss and the induction score on repeated random tokens.

    Attributes:
        fused_loss: compute the training loss with one fused attention kernel per layer
            (:class:`~induction_bigram.training.standard_loss.StandardFusedLoss`, the same loss
            and gradients within float rounding, several times faster at long contexts);
            ``False`` runs the model's forward. A run resumes under either setting.
    """

    fused_loss: bool = True


@dataclass(frozen=True)
class StandardConfig(Config):
    """Everything needed to rebuild a standard run: ``data``, ``model`` and ``train``."""

    data: TextConfig
    model: StandardModelConfig
    train: StandardTrainConfig

    def __post_init__(self) -> None:
        if self.model.d_mlp is not None and self.train.fused_loss:
            raise ConfigError(
                f"model.d_mlp={self.model.d_mlp} needs train.fused_loss=false: the fused loss computes an "
                "attention-only model's"
            )

    def recipe(self) -> "StandardConfig":
        """This config with ``train.steps`` and ``train.fused_loss`` at their defaults and no text
        path: what a resumed run must match (it may run longer, through either loss, on the same
        text, by its hash, at another path)."""
        defaults = StandardTrainConfig()
        train = dataclasses.replace(self.train, steps=defaults.steps, fused_loss=defaults.fused_loss)
        return dataclasses.replace(self, data=dataclasses.replace(self.data, text=""), train=train)

    def with_vocab(self, vocab: str) -> "StandardConfig":
        """Fill ``model.vocab`` from the text; a different explicit vocabulary is kept (the
        text is then checked against it)."""
        if self.model.vocab is not None:
            return self
        return dataclasses.replace(self, model=dataclasses.replace(self.model, vocab=vocab))


def _preset_standard() -> StandardConfig:
    """2 layers of 8 heads (d_model 128, d_head 16), LayerNorm, n_ctx 128, AdamW lr 3e-3, batch 32, 8000 steps.

    The shape that learned tiny Shakespeare fastest of those tried (held-out loss 1.74 nats per
    character at step 3600, 1.69 at 8000; d_model 64 with 4 heads, n_ctx 256 and lr 1e-2 were
    slower). Every run below is one seed on one CPU thread. Its previous-token heads form within
    1000 steps (score 0.59 at step 8000), but no induction head formed on tiny Shakespeare: not
    by step 8000 (induction score 0.01, 33M characters, about 20 minutes), 16000 (65M
    characters, held-out loss 1.67) or 39000 (160M characters, held-out 1.65, induction 0.014,
    previous-token 0.57). Nor with the other positional encodings: rotary at this shape, 6500
    steps (27M characters; held-out 1.70, induction 0.001, previous-token 0.29); shortformer,
    2250 steps (held-out 1.83, induction 0.009); rotary with n_ctx 512 (d_model 64, 4 heads,
    batch 16), 1000 steps (8M characters at 8k characters a second; held-out 2.02, induction
    0.005), resumed to 3000 (24.6M characters; held-out 1.92, induction 0.0016, previous-token
    0.17). Through the fused loss (5x faster at n_ctx 512, ``benchmarks/bench_standard.py``), this
    shape at n_ctx 512, batch 16, for seeds 0 and 1 (``--set model.n_ctx=512 --set
    train.batch_size=16``, plus ``model.seed=1 train.seed=1``; one thread each, side by side,
    about 25,000 characters a second; seed 0 resumed on 2 threads at 46,000): previous-token
    heads at 0.81 and 0.27 (seed 0 had 0.51 by step 1000, seed 1 0.10), held-out loss 1.78 and
    1.77, but no induction head by step 23000 (188M characters) and 15000 (123M characters):
    induction scores 0.011 and 0.008, never above their step-0 values (0.029), in-context scores
    within +-0.04 of 0 from step 4000 on, and the second copy of a repeated held-out chunk no
    easier than the first (seed 0: 1.671 against 1.657). With ``train.weight_decay=0.1`` (seed 0,
    same shape): held-out loss 1.74 at step 21000 (172M characters), better than 0.01's, but
    induction 0.006 and no copying (second copy 1.680 against 1.647). The same shape on Python
    source (TransformerLens's own ASCII source lines, 3.9M characters, where two matched
    characters already beat the trigram; docs/THEORY.md 3.8), to step 18500 (152M characters):
    held-out 1.27, induction rising slowly from 0.029 to 0.055, second copy 1.370 against 1.410:
    at most the start of a head. The phase change needs more characters than a CPU gives in a
    session: train longer with ``--set train.steps=N``, on a GPU.

    Why a short context is a weak incentive (``python scripts/induction_opportunity.py
    tinyshakespeare.txt``): at n_ctx 128 only 4.9% of held-out positions have an earlier
    occurrence of their last 4 characters in the window (the copy guess is right on 56.8% of
    them, the trigram on 38.0%); at 512, 15.9%; at 1024, 23.1%. So try n_ctx >= 512 first."""
    return StandardConfig(
        data=TextConfig(),
        model=StandardModelConfig(n_layers=2, n_heads=8, d_model=128, d_head=16, n_ctx=128),
        train=StandardTrainConfig(steps=8000, batch_size=32, lr=3e-3, eval_every=200, checkpoint_every=500),
    )


def _preset_standard_test() -> StandardConfig:
    """A few steps of a tiny model, seconds on a CPU: bookkeeping checks, not learning."""
    return StandardConfig(
        data=TextConfig(held_out_windows=4),
        model=StandardModelConfig(n_layers=2, n_heads=2, d_model=16, d_head=8, n_ctx=16),
        train=StandardTrainConfig(
            steps=6, batch_size=4, eval_every=3, score_prompts=4, checkpoint_every=4, device="cpu"
        ),
    )


STANDARD_PRESETS: Presets[StandardConfig] = Presets(
    "standard", {"standard": _preset_standard, "standard-test": _preset_standard_test}
)


def standard_preset(name: str) -> StandardConfig:
    """The named standard preset."""
    return STANDARD_PRESETS[name]
