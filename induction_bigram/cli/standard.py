"""The standard TL model's commands: ``standard`` trains it on a text file (scoring its heads),
``markov`` on in-context Markov chains, recording its training dynamics
(:func:`~induction_bigram.dynamics.track_dynamics`) at every evaluation."""

from __future__ import annotations

import argparse
from pathlib import Path

from induction_bigram.errors import InductionBigramError


def markov_command(args: argparse.Namespace) -> int:
    """``induction-bigram markov``: as ``standard``, with the Markov task in place of a text."""
    import torch

    from induction_bigram.cli.commands import _config, _existing, _resumed_config, _trained
    from induction_bigram.config.markov import MARKOV_PRESETS, MarkovConfig
    from induction_bigram.dynamics import track_dynamics
    from induction_bigram.files import check_folder
    from induction_bigram.training.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    check_folder(args.out, "run", existing=_existing(args), label="--out")
    config = _config(MARKOV_PRESETS, args, _resumed_config(args, MarkovConfig))
    return _trained(train, config, args, [track_dynamics])


def standard_command(args: argparse.Namespace) -> int:
    """``induction-bigram standard``: the standard TL model on a text file."""
    import torch

    from induction_bigram.anymodel import track_head_scores
    from induction_bigram.cli.commands import _config, _existing, _resumed_config, _trained
    from induction_bigram.config.standard import STANDARD_PRESETS, StandardConfig
    from induction_bigram.files import check_folder
    from induction_bigram.training.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    check_folder(args.out, "run", existing=_existing(args), label="--out")
    base = _resumed_config(args, StandardConfig)
    config = _config(STANDARD_PRESETS, args, base)
    if args.text is None and base is None:
        raise InductionBigramError("--text is required: the text file to train on (--resume reuses the run's)")
    if args.text is not None and not (base is not None and Path(base.data.text).resolve() == args.text.resolve()):
        config = config.with_overrides({"data.text": str(args.text)})
    return _trained(train, config, args, [track_head_scores])
