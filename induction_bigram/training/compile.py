"""Whether training runs through ``torch.compile`` (``train.compile = "auto"``).

Compiling fuses TransformerLens's bookkeeping around the matmuls, but it costs seconds up front
and does not help small models on a CPU; this module holds the rule, measured by
``benchmarks/bench_compile.py``, that the training loop applies.
"""

from __future__ import annotations

import shutil

import torch

from induction_bigram.config import RunConfig

# Where torch.compile pays off, as benchmarks/bench_compile.py measured on the 2-core CPU
# (benchmarks/README.md): at d = T = 64 the compiled step is slower than the eager one, from
# d = T = 128 on it is 1.1-1.2x faster, and compiling costs 5 s (inductor's cache warm) to 30 s
# (cold), so a run must be long enough to earn that back.
COMPILE_MIN_TOKEN_WORK = 128 * (128 + 128)
COMPILE_WORTH_IT = 2e12  # twice the largest break-even measured (9e11 at d = T = 128, cold cache)


def training_work(config: RunConfig) -> float:
    """A run's matmul work, up to a constant: steps x tokens x d (d + T), the projections'
    d^2 and the attention's T d per token."""
    d, seq_len, cfg = config.model.d_model, config.task.seq_len, config.train
    return float(cfg.steps * cfg.batch_size * seq_len * d * (d + seq_len))


def compile_decision(config: RunConfig, device: torch.device) -> tuple[bool, str]:
    """Whether the training forward runs through ``torch.compile``, and the one-line reason
    the progress output shows.

    ``train.compile = "auto"`` compiles where it was measured to help: a model of at least
    :data:`COMPILE_MIN_TOKEN_WORK` per token (d (d + T), i.e. d = T = 128 and up) trained for
    at least :data:`COMPILE_WORTH_IT` of :func:`training_work`, on CUDA or on a CPU with a C++
    compiler (inductor needs one). ``True``/``False`` decide outright. Evaluation, analyses
    and every hook run on the eager model either way."""
    setting = config.train.compile
    if setting != "auto":
        return bool(setting), f"torch.compile {'on' if setting else 'off'} (train.compile={setting})"
    if device.type == "cpu" and not any(shutil.which(cc) for cc in ("c++", "g++", "clang++")):
        return False, "torch.compile off (auto: no C++ compiler found for inductor on this CPU)"
    d, seq_len = config.model.d_model, config.task.seq_len
    if d * (d + seq_len) < COMPILE_MIN_TOKEN_WORK:
        return False, f"torch.compile off (auto: at d = {d}, T = {seq_len} the compiled step is not faster)"
    if training_work(config) < COMPILE_WORTH_IT:
        return False, "torch.compile off (auto: too few steps to earn back the compile time)"
    return True, "torch.compile on (auto: a long run of a model large enough to gain from it)"
