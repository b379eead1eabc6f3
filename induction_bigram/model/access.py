"""What both TransformerLens backends share: the device, the trained parameters' names, the
config a model carries, its embeddings and vocabulary, and the checks on what is fed to it.

TL 3's ``HookedTransformer`` and TL 4's ``TransformerBridge`` (:mod:`.circuit`, :mod:`.tl4`)
expose the same ``embed.W_E``, ``unembed.W_U``, ``pos_embed.W_pos``, ``cfg`` and tokenizer, so
these are written once.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from induction_bigram.config import ModelConfig, RunConfig
from induction_bigram.config.standard import StandardModelConfig
from induction_bigram.data.stats import BigramStats
from induction_bigram.errors import CheckpointError, ConfigError, DataError, InductionBigramError, ModelShapeError
from induction_bigram.hooks.circuit import LOADER_MARKER
from induction_bigram.model.backend import TL4, TL_VERSION, Model
from induction_bigram.model.components import LINEAR_ACT_FN
from induction_bigram.model.components.checks import check_token_tensor
from induction_bigram.model.encodings import encoding

CONFIG_ATTR = "_induction_bigram_config"

# TL recomputes rotary tables with the real frequencies past this many positions, which would
# undo the layer-1-only rotary of a rotary encoding
ROTARY_CACHE = 2048
PAPER_NAME = re.compile(r"(W_[QKVO])(\d+)|W_F")
"""A paper matrix's name: ``W_K2`` (kind, 1-based layer) or ``W_F``."""
MARKER_KEY = f"circuit.{LOADER_MARKER}"
"""The buffer that makes a plain ``HookedTransformer``'s strict load of our weights name our loader."""
CONFIG_BUFFERS = re.compile(r"blocks\.\d+\.attn\.(mask|IGNORE|rotary_sin|rotary_cos)")
"""TL 3's buffers that the config alone determines (the causal mask, the rotary tables): our
files leave them out, and the loaders keep the model's own (TL 4 has none)."""


def check_buildable(cfg: ModelConfig, vocab: Sequence[str]) -> None:
    """Raise :class:`ConfigError` for a model config that cannot be built with ``vocab``."""
    if cfg.d_vocab is None:
        raise ConfigError("model.d_vocab is None: resolve it from the corpus first")
    if len(vocab) != cfg.d_vocab:
        raise ConfigError(f"model.d_vocab = {cfg.d_vocab} but the vocabulary has {len(vocab)} characters")
    if encoding(cfg).rotary and cfg.n_ctx > ROTARY_CACHE:
        raise ConfigError(f"model.n_ctx must be <= {ROTARY_CACHE} for {cfg.positional}, got {cfg.n_ctx}")


def model_bytes(cfg: ModelConfig) -> int:
    """A lower bound on the bytes a model of ``cfg`` holds: float32 W_E, W_U, positions and each
    layer's W_Q, W_K, W_V, W_O and feed-forward, and TL's causal mask (one byte per entry)."""
    d, n = cfg.d_model, cfg.n_ctx
    per_layer = 4 * (4 * d * d + 2 * d * (hidden_width(cfg) or 0)) + n * n
    return 4 * (2 * (cfg.d_vocab or 0) * d + n * d) + cfg.n_layers * per_layer


def training_bytes(cfg: ModelConfig, seq_len: int, batch_size: int, micro_batch_size: int | None) -> int:
    """A lower bound on the bytes one training step needs: the model with its gradients and two
    Adam moments, the batch's int64 tokens, targets and labels, and the forward pass's float32
    logits and attention patterns of a micro-batch (kept for the backward pass)."""
    micro = min(micro_batch_size or batch_size, batch_size)
    activations = 4 * micro * seq_len * ((cfg.d_vocab or 0) + cfg.n_layers * (4 * cfg.d_model + seq_len))
    return 4 * model_bytes(cfg) + 3 * 8 * batch_size * seq_len + activations


def check_fits_in_memory(need: int, what: str, device: torch.device) -> None:
    """Raise :class:`ConfigError` when ``need`` bytes exceed all the memory of ``device`` (the
    GPU's, or this machine's RAM): an allocation that cannot succeed is refused before it is
    tried, with both numbers."""
    if device.type == "cuda":
        have, where = torch.cuda.get_device_properties(device).total_memory, f"the GPU {device}"
    else:
        have, where = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine"
    if need > have:
        raise ConfigError(
            f"{what} needs at least {need / 2**30:,.1f} GiB of memory; {where} has {have / 2**30:,.1f} GiB"
        )


def memory_error(err: BaseException) -> InductionBigramError | None:
    """The user's error for ``err`` when it is running out of memory (the sizes asked for do not
    fit, where :func:`check_fits_in_memory` could not tell before), else None."""
    text = " ".join(str(err).split())
    if not (isinstance(err, MemoryError) or "can't allocate memory" in text or "out of memory" in text):
        return None
    return InductionBigramError(
        f"out of memory ({text[:160] or type(err).__name__}): ask for a smaller model, batch or context "
        "(--set model.d_model=..., train.batch_size=..., train.micro_batch_size=...)"
    )


def check_training_memory(config: RunConfig) -> None:
    """:func:`check_fits_in_memory` for training ``config`` on its device: the larger of its
    training and evaluation batches."""
    batch = max(config.train.batch_size, config.train.eval_batch_size)
    need = training_bytes(config.model, config.task.seq_len, batch, config.train.micro_batch_size)
    what = (
        f"training a model of d_model = {config.model.d_model}, n_ctx = {config.model.n_ctx} on batches of {batch} "
        f"sequences of length {config.task.seq_len}"
    )
    check_fits_in_memory(need, what, resolve_device(config.train.device))


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/``None`` picks CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"train.device {device!r} is not a torch device") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device {device!r} asks for CUDA, which is not available")
    return resolved


def hidden_width(cfg: ModelConfig) -> int | None:
    if cfg.ffn == "linear":
        return cfg.d_model  # W_in is the frozen identity, W_out is W_F^T
    if cfg.ffn == "relu":
        return cfg.d_mlp or 4 * cfg.d_model
    return None


def trainable_names(cfg: ModelConfig) -> list[str]:
    """TL names of the trained parameters (docs/THEORY.md section 2; table in the module doc)."""
    last = cfg.n_layers - 1
    names = [f"blocks.{layer}.attn.W_K" for layer in range(cfg.n_layers)]
    names.append(f"blocks.{last}.attn.W_O")
    if cfg.ffn == "linear":
        names.append(f"blocks.{last}.mlp.W_out")
    if cfg.ffn == "relu":
        names += [f"blocks.{last}.mlp.W_in", f"blocks.{last}.mlp.W_out"]
    return names + encoding(cfg).trained(cfg)


def model_config(model: Model) -> ModelConfig:
    """The :class:`ModelConfig` a model was built from (raises for foreign models)."""
    cfg = getattr(model, CONFIG_ATTR, None)
    if cfg is None:
        raise ModelShapeError(
            "this Model was not built by induction_bigram.build_model; pass it through build_model or load()"
        )
    return cfg


def ffn_reads_token(model: Model) -> bool:
    """Whether the model's FFN reads only the current token's embedding w_E(z_t) (the idealised
    model, ``model.ffn_reads="token"``; docs/THEORY.md section 4.2) instead of the stream; false
    for any model not built by this package."""
    cfg = getattr(model, CONFIG_ATTR, None)
    return getattr(cfg, "ffn_reads", "stream") == "token"


def seeded_normal(seed: int, name: str, shape: tuple[int, ...], std: float) -> Tensor:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    g = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return torch.randn(shape, generator=g) * std


def token_embeddings(model: Model) -> Float[Tensor, "d_vocab d_model"]:
    """Rows w_E(i)."""
    return model.embed.W_E.detach()


def unembeddings(model: Model) -> Float[Tensor, "d_vocab d_model"]:
    """Rows w_U(i) (TL stores W_U as [d_model, d_vocab])."""
    return model.unembed.W_U.detach().T


def positional_embeddings(model: Model) -> Float[Tensor, "n_ctx d_model"] | None:
    """Rows p_t, or ``None`` when the stream carries no positions (rope, rpe, nope)."""
    if model.cfg.positional_embedding_type != "standard":
        return None
    W_pos = model.pos_embed.W_pos.detach()
    return None if not W_pos.any() else W_pos


def norm_parameters(norm: torch.nn.Module | None) -> tuple[Tensor | None, Tensor | None]:
    """A LayerNorm's or RMSNorm's weight and bias (``None`` where it has none, or for no norm).
    TL 4.3's ``w`` / ``b`` aliases keep the tensors from before ``process_weights`` (which
    ``enable_compatibility_mode`` runs), so there the live ``weight`` / ``bias`` are read."""
    names = ("weight", "bias") if TL4 else ("w", "b")
    return getattr(norm, names[0], None), getattr(norm, names[1], None)


def swap_convention(matrix: Float[Tensor, "... rows cols"]) -> Float[Tensor, "... cols rows"]:
    """Convert a linear map between TL's row-vector and the paper's column-vector convention.

    TL computes y = x M for a row vector x; the paper computes y = M' x for a column x, so
    M' = M^T. The conversion is its own inverse. It covers W_K (when W_Q = I: the score
    x_t^T W_K^paper x_s equals q_t . k_s with k = x W_K^TL), W_V, W_O, the OV product
    (W_O W_V)^paper = (W_V W_O)^TL^T and the FFN map.
    """
    return matrix.transpose(-1, -2)


def paper_matrix_place(model: Model, name: str) -> tuple[str, int]:
    """Where paper matrix ``name`` (``W_K2``, ``W_O1``, ``W_F``, ...) lives on either backend: its
    kind (``W_Q`` .. ``W_O``, or ``W_F``, the linear feed-forward) and its TL block (paper layer
    l is block l - 1; W_F is in the last); a matrix the model has not is a :class:`ModelShapeError`."""
    match = PAPER_NAME.fullmatch(name)
    if not match:
        raise ModelShapeError(f"unknown paper matrix {name!r}; use W_Q1, W_K2, W_V1, W_O2, W_F")
    if name == "W_F":
        if model.cfg.act_fn != LINEAR_ACT_FN:
            raise ModelShapeError("W_F exists only in models with a linear feed-forward layer")
        return name, model.cfg.n_layers - 1
    kind, layer = match.group(1), int(match.group(2))
    if not 1 <= layer <= model.cfg.n_layers:
        raise ModelShapeError(f"{name}: the model has layers 1..{model.cfg.n_layers}")
    if model.cfg.n_heads != 1:
        raise ModelShapeError(f"{name}: expected one attention head, got {model.cfg.n_heads}")
    return kind, layer - 1


def check_tokens(model: Model, tokens: Tensor) -> Int[Tensor, "batch pos"]:
    """Return ``tokens`` unchanged, or raise :class:`DataError` for ids or lengths the model lacks
    (the checks the forward pass makes, for analyses that want to fail before any work)."""
    check_token_tensor(tokens, model.cfg.d_vocab, model.cfg.n_ctx, ranks=(2,))
    return tokens


def model_vocab(model: Model) -> tuple[str, ...]:
    """The characters of the model's vocabulary, token id i = ``vocab[i]``."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ModelShapeError("this model carries no tokenizer; build it with build_model(cfg, vocab=...)")
    return tuple(tokenizer.convert_ids_to_tokens(list(range(model.cfg.d_vocab))))


def check_vocabulary(model: Model, stats: BigramStats) -> None:
    """Raise :class:`DataError` unless ``stats`` numbers the characters as the model does.

    A prompt encoded with another corpus's statistics is a valid-looking tensor of ids that
    means other characters to this model; every analysis that takes a model and statistics
    calls this first.
    """
    vocab = model_vocab(model)
    if vocab != stats.vocab:
        first = next((i for i, (a, b) in enumerate(zip(vocab, stats.vocab)) if a != b), min(len(vocab), stats.n_tokens))
        raise DataError(
            f"the statistics' vocabulary ({stats.n_tokens} characters) is not the model's ({len(vocab)}): "
            f"they first differ at id {first}; use the statistics the model was trained on "
            "(the run's checkpoint, or pretrained_task(name).stats)"
        )


def circuit_tl_fields(cfg: ModelConfig) -> dict:
    """The TL config fields of the paper's model (docs/THEORY.md section 2), the same for
    TL 3's ``HookedTransformerConfig`` and TL 4's ``TransformerBridgeConfig``."""
    return dict(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        d_head=cfg.d_model,
        n_heads=1,
        d_vocab=cfg.d_vocab,
        n_ctx=cfg.n_ctx,
        attn_only=cfg.ffn == "none",
        d_mlp=hidden_width(cfg),
        act_fn={"none": None, "linear": LINEAR_ACT_FN, "relu": "relu"}[cfg.ffn],
        normalization_type=None,
        positional_embedding_type="rotary" if encoding(cfg).rotary else "standard",
        rotary_dim=cfg.d_model if encoding(cfg).rotary else None,
        default_prepend_bos=False,
        init_weights=False,
        model_name=f"induction-bigram-{cfg.positional}",
    )


def standard_vocab(cfg: StandardModelConfig, vocab: str | None) -> str:
    """The standard model's characters: ``cfg.vocab``, or ``vocab`` when that is unset (they
    must agree when both are given); at least 2, all distinct."""
    if vocab is not None and cfg.vocab is not None and tuple(vocab) != tuple(cfg.vocab):
        raise ConfigError(f"model.vocab holds {len(cfg.vocab)} characters that differ from the vocabulary given")
    chars = cfg.vocab if cfg.vocab is not None else vocab
    if chars is None:
        raise ConfigError("model.vocab is None: resolve it from the text first (or pass vocab=)")
    if len(chars) < 2 or len(set(chars)) != len(chars):
        raise ConfigError(f"a vocabulary needs at least 2 distinct characters, got {len(chars)}")
    return chars


def standard_tl_fields(cfg: StandardModelConfig, n_vocab: int) -> dict:
    """The TL config fields of the standard model, the same for both TL versions."""
    return dict(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        n_heads=cfg.n_heads,
        d_vocab=n_vocab,
        n_ctx=cfg.n_ctx,
        attn_only=cfg.d_mlp is None,
        **({} if cfg.d_mlp is None else {"d_mlp": cfg.d_mlp, "act_fn": "gelu"}),
        normalization_type=None if cfg.normalization == "none" else cfg.normalization,
        positional_embedding_type=cfg.positional,
        rotary_dim=cfg.d_head if cfg.positional == "rotary" else None,
        default_prepend_bos=False,
        model_name="induction-bigram-standard",
    )


def bias_of(rel_pos: torch.nn.Module | None) -> torch.nn.Parameter:
    """b_(t-s) of a model's relative-position module (``None``: the model has none)."""
    if rel_pos is None:
        raise ModelShapeError("this model has no relative-position bias (model.positional is not 'rpe')")
    return rel_pos.bias


def without_config_buffers(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` without the :data:`CONFIG_BUFFERS`: what a loader reads of a file."""
    return {key: value for key, value in state.items() if not CONFIG_BUFFERS.fullmatch(key)}


def with_marker(expected: dict[str, Tensor], state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` with the model's :data:`MARKER_KEY` where the model has one: the marker belongs to
    the model, not to its weights (it makes a plain ``HookedTransformer``'s strict load of our files
    name our loader), so a state without it, such as :func:`~.initial.initial_weights`, loads."""
    return {MARKER_KEY: expected[MARKER_KEY], **state} if MARKER_KEY in expected else state


def check_state(expected: dict[str, Tensor], state: dict[str, Tensor], source: str) -> None:
    """Raise :class:`CheckpointError` naming every key ``state`` lacks, has in excess, or holds
    in another shape than ``expected`` (the model's own state dict): a strict load's checks,
    with the config's shapes in the message."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{name} {tuple(state[name].shape)} (config needs {tuple(expected[name].shape)})"
        for name in expected
        if name in state and state[name].shape != expected[name].shape
    ]
    problems = (
        [f"missing {', '.join(missing)}"] * bool(missing)
        + [f"unexpected {', '.join(unexpected)}"] * bool(unexpected)
        + [f"wrong shape: {', '.join(wrong)}"] * bool(wrong)
    )
    if problems:
        raise CheckpointError(f"{source} does not match its config: {'; '.join(problems)}")


def describe(model: Model) -> str:
    """What the model is, including what TL's ``cfg`` cannot say (shown by ``repr(model)`` on
    TL 3, ``repr(model.circuit)`` on TL 4), and what TL's ``return_type="loss"`` means on it."""
    cfg = model_config(model)
    positional = encoding(cfg).summary.format(
        scores="rel_pos" if TL4 else "blocks.0.attn.rel_pos",  # TL 4: at the top of the native model
        unrotated="none" if TL4 else "zero frequencies",
    )
    ffn = {
        "none": "none (attention only)",
        "linear": "linear W_F (act_fn 'linear', W_in frozen at I)",
        "relu": "ReLU MLP",
    }[cfg.ffn]
    if cfg.ffn_reads == "token":
        ffn += " reading only w_E(z_t) (ffn_reads='token': blocks.{L-1}.ln2 hands it over; hook_mlp_in is ignored)"
    backend = f" (TransformerBridge, TL {TL_VERSION})" if TL4 else ""
    return (
        f"induction-bigram model{backend}: d = {cfg.d_model}, n_ctx = {cfg.n_ctx}, N = {cfg.d_vocab}, "
        f"{cfg.n_layers} layers of one head, W_Q = I, positions: {positional}; feed-forward: {ffn}; "
        f"trained: {', '.join(trainable_names(cfg))}. {_TL_LOSS}"
    )


# the model does not know which loss trained it, so both cases are said (scripts/tl_loss.py measures them)
_TL_LOSS = (
    "TL's return_type='loss' is the mean over every position: trained with train.loss='in_context' "
    "(the default; shipped general, reference, rpe) only the in-context targets' logits were trained and "
    "the others are unconstrained, so it can be large and an ablation can lower it; with train.loss='full' "
    "(shipped amt) it is the training loss. ib.in_context_loss(logits, batch) scores the circuit's targets."
)
