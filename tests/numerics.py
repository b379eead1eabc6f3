"""Tolerances for float32 results compared with values computed elsewhere: stored in a file by
another host, or by the other TransformerLens backend.

float32 carries 24 bits, so one rounding moves a value by up to eps = 2^-23 of its magnitude.
Two hosts (or two backends) that sum the same d_model products in another order (other SIMD
widths, other BLAS kernels) differ by a few such roundings of the largest term, not of the
result: the logits of the shipped ``general`` model (|logit| up to 80) differ by 3.8e-5 between
two 2-core EPYC hosts, about 4 ulps of 80. The tolerance is therefore ``ULPS`` roundings of the
largest value of the reference tensor (never less than of 1.0): 16x the largest drift seen, and
still four orders of magnitude below what a real modelling error (a wrong mask, position or
weight layout) moves a logit by. Bitwise equality is kept where the same code runs on the same
host in the same process.
"""

from __future__ import annotations

import torch

ULPS = 64
EPS32 = torch.finfo(torch.float32).eps


def float32_tolerance(reference: torch.Tensor) -> float:
    """The largest difference float32 rounding explains for values of ``reference``'s magnitude."""
    return ULPS * EPS32 * max(1.0, reference.detach().abs().max().item())


def assert_float32_close(got: torch.Tensor, reference: torch.Tensor, what: str = "") -> None:
    """``got`` equals ``reference`` up to float32 rounding at the reference's magnitude."""
    assert got.shape == reference.shape, f"{what}: shape {tuple(got.shape)} != {tuple(reference.shape)}"
    diff = (got.double() - reference.double()).abs().max().item()
    tolerance = float32_tolerance(reference)
    assert diff <= tolerance, f"{what}: max |difference| {diff:.2e} > {tolerance:.2e} (float32 at this magnitude)"
