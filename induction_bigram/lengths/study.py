"""The whole study: train (or load) each variant, evaluate it, write ``lengths.json``."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from transformer_lens import HookedTransformer

from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.files import Existing, atomic_write_text, claim_folder
from induction_bigram.lengths.config import LengthsStudyConfig, variant_config
from induction_bigram.lengths.evaluate import evaluate_lengths
from induction_bigram.lengths.results import LengthsResult, VariantResult
from induction_bigram.training.loop import train_or_load

WHAT_WAS_TRIED = {
    "ape": "random frozen p_t for all n_ctx = k_max T_train positions; trained on T_train only",
    "rpe": "learned b_(t-s) added to layer 1's scores (zero init); stream without positions; "
    "offsets >= T_train never get a gradient and stay at 0 (see rpe-clipped)",
    "rope": "rotary in layer 1 only with trainable query/key biases (random init N(0, 1/d)); "
    "without them no previous-token head forms (variant rope-nobias)",
    "rope-nobias": "rotary in layer 1 only, W_Q = I, no biases (the prototype's recipe)",
    "nope": "three attention layers, no positions; trained: W_K of every layer and W_O of the "
    "last. Also training W_V, W_O of layers 1-2 diverged at lr 0.03 and was worse at "
    "lr 0.005 (0.75 in range against 0.89), so it is not used",
    "rpe-clipped": "the trained rpe model evaluated with b_o := b_(T_train - 1) for o >= T_train "
    "(T5's shared last bucket; training is unchanged, those offsets never get a gradient)",
}


@contextmanager
def clipped_relative_bias(model: HookedTransformer, max_offset: int):
    """Within the block, offsets o > ``max_offset`` use b_(max_offset) (T5-style: far offsets
    share the last bucket) instead of their untrained value 0."""
    bias = model.blocks[0].attn.rel_pos.bias
    saved = bias.detach().clone()
    with torch.no_grad():
        bias[max_offset + 1 :] = bias[max_offset]
    try:
        yield model
    finally:
        with torch.no_grad():
            bias.copy_(saved)


def run_lengths_study(
    study: LengthsStudyConfig | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    *,
    existing: Existing = "resume",
) -> LengthsResult:
    """Train (or load from ``out_dir/<variant>``) each variant, evaluate it, and when
    ``out_dir`` is given write ``lengths.json`` there (figures: ``viz.lengths_figures``; the
    circuitsvis view: ``views.lengths_attention_view``).

    ``out_dir`` is a lengths study folder (:func:`~induction_bigram.files.claim_folder`): it
    must be missing, empty or a study of ours, never a training run. ``existing`` says what to
    do with an earlier study there: ``"resume"`` (reuse its finished runs), ``"overwrite"``
    (retrain everything) or ``"refuse"``.
    """
    study = study or LengthsStudyConfig()
    threads = torch.get_num_threads()
    if study.threads is not None:
        torch.set_num_threads(study.threads)
    try:
        if out_dir is None:
            return _run_study(study, None, progress)
        with claim_folder(out_dir, "lengths", existing=existing) as folder:
            return _run_study(study, folder, progress)
    finally:
        torch.set_num_threads(threads)


def _run_study(study: LengthsStudyConfig, out_dir: Path | None, progress: bool) -> LengthsResult:
    began = time.perf_counter()
    results: dict[str, VariantResult] = {}
    stats = None
    for variant in study.variants:
        config = variant_config(variant, study)
        stats = stats or BigramStats.from_corpus(config.task.corpus)
        config = config.with_vocab(stats.n_tokens)
        trained = train_or_load(config, out_dir / variant if out_dir else None, progress=progress)
        model = trained.model
        seconds, accuracy = trained.final["elapsed_seconds"], trained.final["in_context_accuracy"]
        task = TriggerTask(stats, config.task, next(model.parameters()).device)
        evaluation = dict(
            model=model,
            task=task,
            train_length=study.train_length,
            multiples=study.multiples,
            batch_size=study.eval_batch_size,
            chunk_size=study.chunk_size,
            seed=study.eval_seed,
        )
        result = evaluate_lengths(**evaluation, variant=variant)
        evaluated = {variant: result}
        if variant == "rpe" and study.rpe_clipped:
            with clipped_relative_bias(model, study.train_length - 1):
                evaluated["rpe-clipped"] = evaluate_lengths(**evaluation, variant="rpe-clipped")
        for name, result in evaluated.items():
            results[name] = replace(
                result,
                config=config.to_dict(),
                train_seconds=seconds,
                train_accuracy=accuracy,
                what_was_tried=WHAT_WAS_TRIED[name],
            )
            if progress:
                print(
                    f"{name}: oversight {_fmt(result.oversight.accuracy_by_length)}; "
                    f"ordinary {_fmt(result.ordinary.accuracy_by_length)}",
                    flush=True,
                )
    lengths = LengthsResult(study, results, time.perf_counter() - began, stats.vocab if stats else ())
    if out_dir is not None:
        write_lengths_json(lengths, out_dir)
    return lengths


def _fmt(accuracies: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in accuracies.items())


def write_lengths_json(result: LengthsResult, out_dir: str | Path) -> Path:
    """``out_dir/lengths.json``: the numbers of the study."""
    path = Path(out_dir) / "lengths.json"
    atomic_write_text(path, json.dumps(result.to_dict(), indent=1, allow_nan=False) + "\n")
    return path
