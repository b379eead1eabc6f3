"""The whole study: train (or load) each variant, evaluate it, write ``result.json``; and the
claims of docs/THEORY.md sections 4 and 5.6 that it tests."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from induction_bigram.claims import Claim
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.files import Existing, run_in_study_folder
from induction_bigram.lengths.config import LengthsConfig, variant_config
from induction_bigram.lengths.evaluate import evaluate_lengths
from induction_bigram.lengths.results import LengthsResult, VariantResult
from induction_bigram.model import Model, relative_position_bias
from induction_bigram.training.trainer import train_or_load

RECIPES = {  # how each variant is built and trained, in words (result.json carries it beside the numbers)
    "ape": "random frozen p_t for all n_ctx = k_max T_train positions; trained on T_train only",
    "rpe": "learned b_(t-s) added to layer 1's scores (zero init); stream without positions; "
    "offsets >= T_train never get a gradient and stay at 0 (see rpe-clipped)",
    "rope": "rotary in layer 1 only with trainable query/key biases (random init N(0, 1/d)); "
    "without them no previous-token head forms (variant rope-nobias)",
    "rope-nobias": "rotary in layer 1 only, W_Q = I, no biases (the prototype's recipe)",
    "nope": "three attention layers, no positions; trained: W_K of every layer and W_O of the last",
    "rpe-clipped": "the trained rpe model evaluated with b_o := b_(T_train - 1) for o >= T_train "
    "(T5's shared last bucket; training is unchanged, those offsets never get a gradient)",
    "rpe-logn": "the trained rpe model evaluated with b_o := mean(b_2..b_(T_train - 1)) for o >= T_train "
    "and layer 1's scores at query t times max(1, ln(t + 1) / ln T_train) (log-length scaling); "
    "training is unchanged",
}


@contextmanager
def clipped_relative_bias(model: Model, max_offset: int):
    """Within the block, offsets o > ``max_offset`` use b_(max_offset) (T5-style: far offsets
    share the last bucket) instead of their untrained value 0."""
    bias = relative_position_bias(model)
    with _restored(bias):
        with torch.no_grad():
            bias[max_offset + 1 :] = bias[max_offset]
        yield model


@contextmanager
def length_scaled_layer1(model: Model, train_length: int, *, far_bias: bool = True, log_scaling: bool = True):
    """Within the block, layer 1 of an rpe model keeps its previous-token mass at any length
    (docs/THEORY.md section 5.6, the ``rpe-logn`` variant); outside it the model is as trained.

    Two changes, each against one measured cause of the fall beyond T_train: (i) every offset
    o >= T_train, never trained (b_o = 0), takes the mean trained far bias
    mean(b_2..b_(T_train - 1)); (ii) the score at query t, bias included, is multiplied by
    c_t = max(1, ln(t + 1) / ln T_train) (log-length scaling, Chiang & Cholak 2022). With a gap
    g between offset 1 and the far offsets, t far keys leave a mass of about
    1 / (1 + t e^(-c_t g)) = 1 / (1 + t^(1 - g / ln T_train)) on t - 1: it no longer dilutes as
    keys are added once g > ln T_train, which training at T_train already needs. At t < T_train
    nothing changes. ``far_bias`` / ``log_scaling`` = False leave out (i) / (ii), to measure each
    alone (scripts/lengths_rpe.py).
    """
    bias = relative_position_bias(model)

    def scale(scores: torch.Tensor, hook) -> torch.Tensor:
        n_query, n_key = scores.shape[-2:]
        keys = torch.arange(n_key - n_query + 1, n_key + 1, device=scores.device, dtype=scores.dtype)
        return scores * (keys.log() / math.log(train_length)).clamp_min(1.0)[:, None]

    with _restored(bias) as saved:
        if far_bias:
            with torch.no_grad():
                bias[train_length:] = saved[2:train_length].mean()
        with model.hooks(fwd_hooks=[("blocks.0.attn.hook_attn_scores", scale)] if log_scaling else []):
            yield model


@contextmanager
def _restored(bias: torch.nn.Parameter) -> Iterator[torch.Tensor]:
    """Yields a copy of ``bias`` and puts it back on leaving, whatever the block wrote into it."""
    saved = bias.detach().clone()
    try:
        yield saved
    finally:
        with torch.no_grad():
            bias.copy_(saved)


def run(
    config: LengthsConfig, out_dir: str | Path | None = None, *, progress: bool = True, existing: Existing = "resume"
) -> LengthsResult:
    """Train (or load from ``out_dir/<variant>``) each variant, evaluate it, and when
    ``out_dir`` is given write ``result.json`` there (its figures and attention view:
    :func:`induction_bigram.lengths.figures.figures`). Progress goes to stderr.

    ``out_dir`` is a lengths study folder (:func:`~induction_bigram.files.claim_folder`): it
    must be missing, empty or a study of ours, never a training run. ``existing`` says what to
    do with an earlier study there: ``"resume"`` (reuse its finished runs), ``"overwrite"``
    (retrain everything) or ``"refuse"``.
    """
    threads = torch.get_num_threads()
    if config.lengths.threads is not None:
        torch.set_num_threads(config.lengths.threads)
    try:
        return run_in_study_folder(out_dir, "lengths", existing, lambda out: _run(config, out, progress))
    finally:
        torch.set_num_threads(threads)


def _run(config: LengthsConfig, out_dir: Path | None, progress: bool) -> LengthsResult:
    began = time.perf_counter()
    settings, train_length = config.lengths, config.task.seq_len
    stats = BigramStats.from_corpus(config.task.corpus)
    results: dict[str, VariantResult] = {}
    for variant in settings.variants:
        trained = train_or_load(
            variant_config(variant, config), out_dir / variant if out_dir else None, progress=progress
        )
        model, run_config = trained.model, trained.config
        seconds, accuracy = trained.final["elapsed_seconds"], trained.final["in_context_accuracy"]
        task = TriggerTask(stats, run_config.task, next(model.parameters()).device)
        evaluation = dict(
            model=model,
            task=task,
            train_length=train_length,
            multiples=settings.multiples,
            batch_size=settings.eval_batch_size,
            chunk_size=settings.chunk_size,
            seed=settings.eval_seed,
        )
        evaluated = {variant: evaluate_lengths(**evaluation, variant=variant)}
        if variant == "rpe" and settings.rpe_clipped:
            with clipped_relative_bias(model, train_length - 1):
                evaluated["rpe-clipped"] = evaluate_lengths(**evaluation, variant="rpe-clipped")
        if variant == "rpe" and settings.rpe_logn:
            with length_scaled_layer1(model, train_length):
                evaluated["rpe-logn"] = evaluate_lengths(**evaluation, variant="rpe-logn")
        for name, result in evaluated.items():
            results[name] = replace(
                result,
                config=run_config.to_dict(),
                train_seconds=seconds,
                train_accuracy=accuracy,
                recipe=RECIPES[name],
            )
            if progress:
                tqdm.write(
                    f"{name}: oversight {_fmt(result.oversight.accuracy_by_length)}; "
                    f"ordinary {_fmt(result.ordinary.accuracy_by_length)}",
                    file=sys.stderr,
                )
    return LengthsResult(config, results, time.perf_counter() - began, stats.vocab)


def _fmt(accuracies: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in accuracies.items())


# -- claims (docs/THEORY.md sections 4 and 5.6) -------------------------------------------------

RPE_BEYOND_MIN = 0.9  # RPE's oversight accuracy at 2 T_train
APE_DROP_MIN = 0.3  # how far APE's oversight accuracy falls from 1x to 2x
APE_ORDINARY_MIN = 0.9  # APE's ordinary-protocol accuracy at 2 T_train
REPORTED = ("rope", "nope")  # measured and reported, no threshold
# Wang & Sato's "RPE works at any length", judged where it can fail (issue 28 item 3). Registered
# on 2026-12-07 in the commit that added these lines, before their first run: claim id -> k. The
# statistic is the one of the 2x claim (rpe in-context accuracy on the last window of oversight
# prompts of length k T_train), the threshold its 0.9; over seeds the whole 95% t-interval of the
# per-seed values must clear it (induction_bigram.claims.aggregate_claims).
RPE_ANY_LENGTH = {"lengths.rpe-any-length.4x": 4, "lengths.rpe-any-length.8x": 8}
RPE_ANY_LENGTH_MIN = 0.9
ACCURACY = (0.0, 1.0)  # an accuracy's range: its interval over seeds is clipped to it
# The variant built from the measurements of docs/THEORY.md section 5.6 (rpe-logn), judged at
# 4x and 8x on the same statistic and threshold. Registered on 2026-12-07 in the commit that
# added these lines, after exploring it on seed 0 only (128 prompts per k) and before any run
# on other seeds: claim id -> k.
RPE_LOGN = {"lengths.rpe-logn.4x": 4, "lengths.rpe-logn.8x": 8}


def claims(result: LengthsResult) -> list[Claim]:
    """The claims this study tests, each with the statistic it is judged on and its threshold
    (docs/THEORY.md sections 4, 5.6, 8); a claim whose variant (or the 2x length) was not run is
    left out."""
    oversight = {name: r.oversight.accuracy_by_length for name, r in result.variants.items()}
    ordinary = {name: r.ordinary.accuracy_by_length for name, r in result.variants.items()}
    out = []
    if "2x" in oversight.get("rpe", {}):
        rpe = oversight["rpe"]
        out.append(
            Claim(
                "4, 5.6",
                "with RPE the previous-token head works beyond T_train",
                f"rpe 2x {rpe['2x']:.3f}",
                value=rpe["2x"],
                threshold=RPE_BEYOND_MIN,
                direction=">=",
                statistic="rpe in-context accuracy at 2x, oversight prompts",
                bounds=ACCURACY,
            )
        )
    if "2x" in oversight.get("ape", {}):
        ape = oversight["ape"]
        out += [
            Claim(
                "4, 5.6",
                "with APE evidence beyond T_train is overlooked",
                f"ape 1x {ape['1x']:.3f}, 2x {ape['2x']:.3f}",
                value=ape["1x"] - ape["2x"],
                threshold=APE_DROP_MIN,
                direction=">=",
                statistic="ape accuracy drop from 1x to 2x, oversight prompts",
                bounds=(-1.0, 1.0),
            ),
            Claim(
                "5.6",
                "on ordinary long prompts APE still looks fine",
                f"ape ordinary 2x {ordinary['ape']['2x']:.3f}",
                value=ordinary["ape"]["2x"],
                threshold=APE_ORDINARY_MIN,
                direction=">=",
                statistic="ape in-context accuracy at 2x, ordinary prompts",
                bounds=ACCURACY,
            ),
        ]
    reported = [name for name in REPORTED if name in oversight]
    if reported:
        out.append(
            Claim(
                "5.6",
                "rotary in layer 1 / NoPE: oversight accuracy at each multiple of T_train",
                "; ".join(f"{name} " + " / ".join(f"{v:.2f}" for v in oversight[name].values()) for name in reported),
                reported=True,
            )
        )
    # the claims registered later come last, so the earlier ones keep their place (and number)
    registered_later = (
        (
            RPE_ANY_LENGTH,
            "rpe",
            "with RPE in-context evidence is used at {k}x T_train (Wang & Sato: RPE works at any length)",
        ),
        (
            RPE_LOGN,
            "rpe-logn",
            "RPE with trained far offsets and log-length scaling in layer 1 uses in-context evidence at {k}x T_train",
        ),
    )
    for ids, name, sentence in registered_later:
        for claim_id, k in ids.items():
            if f"{k}x" in oversight.get(name, {}):
                value = oversight[name][f"{k}x"]
                out.append(
                    Claim(
                        "5.6",
                        f"[{claim_id}] {sentence.format(k=k)}",
                        f"{name} {k}x {value:.3f}",
                        value=value,
                        threshold=RPE_ANY_LENGTH_MIN,
                        direction=">=",
                        statistic=f"{name} in-context accuracy at {k}x, oversight prompts",
                        bounds=ACCURACY,
                    )
                )
    return out
