"""Shared fixtures. jaxtyping shape checks are on for the whole package during tests
(``--jaxtyping-packages`` in pyproject.toml)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from induction_bigram import BigramStats, build_model
from induction_bigram.config import ModelConfig, RunConfig, TaskConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]


def shakespeare_text_path(root: Path = REPO) -> Path | None:
    """The corpus text, if this machine has it (it is never committed): ``INDUCTION_BIGRAM_SHAKESPEARE``,
    else ``shared/data/tinyshakespeare.txt`` beside the repository root (where CI keeps it,
    ``../shared/data``) or beside any folder above it (a git worktree nested deeper)."""
    named = os.environ.get("INDUCTION_BIGRAM_SHAKESPEARE", "")
    above = [folder / "shared" / "data" / "tinyshakespeare.txt" for folder in root.absolute().parents]
    return next((Path(c) for c in [named, *above] if c and Path(c).is_file()), None)


def run_benchmark(script: str, *args: str) -> str:
    """Run ``benchmarks/<script>`` with ``args`` in a fresh interpreter; its stdout, after
    asserting it exited 0 (with the end of its stderr in the message)."""
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def vocab(n: int) -> tuple[str, ...]:
    """n characters: tiny Shakespeare's when n = 65, else the first n letters and digits."""
    if n == BigramStats.default().n_tokens:
        return BigramStats.default().vocab
    return tuple("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[:n])


def model_of(cfg: ModelConfig, device: str = "cpu"):
    """``build_model`` with the vocabulary :func:`vocab` gives ``cfg.d_vocab`` characters."""
    return build_model(cfg, device, vocab=vocab(cfg.d_vocab))


def theory_model_of(cfg: ModelConfig, triggers: torch.Tensor | None):
    """``build_theory_model`` on the CPU, with the vocabulary :func:`vocab` gives ``cfg.d_vocab``
    characters."""
    from induction_bigram.memories.projections import build_theory_model

    return build_theory_model(cfg, triggers, device="cpu", vocab=vocab(cfg.d_vocab))


SUITES = ("tl3", "tl4")
"""The two suites of ``make test`` (tests/run_suites.sh): the suite on TL 3.9 and on TL 4.3."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a suite of ``make test`` (``INDUCTION_BIGRAM_SUITE``), a ``backend_free`` test runs only
    in the suite it names: running it on both versions would test the same code twice, and the
    two suites share the machine's two cores. Outside ``make test`` every test runs."""
    suite = os.environ.get("INDUCTION_BIGRAM_SUITE")
    if suite is None:
        return
    if suite not in SUITES:
        raise pytest.UsageError(f"INDUCTION_BIGRAM_SUITE must be one of {', '.join(SUITES)}, got {suite!r}")
    kept, elsewhere = [], []
    for item in items:
        marker = item.get_closest_marker("backend_free")
        (elsewhere if marker is not None and backend_free_suite(marker) != suite else kept).append(item)
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = kept


def backend_free_suite(marker: pytest.Mark) -> str:
    """The suite a ``backend_free(suite)`` marker names; anything else is a usage error."""
    if len(marker.args) != 1 or marker.args[0] not in SUITES:
        raise pytest.UsageError(f"backend_free takes one suite, 'tl3' or 'tl4', got {marker.args!r}")
    return marker.args[0]


@pytest.fixture(scope="session")
def stats() -> BigramStats:
    return BigramStats.default()


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray on 2 CPUs for a module's sweeps and reports, which use it as they would a
    cluster's (``sweeps.execute.ray_session``): each would otherwise start and stop its own, and
    its workers would import the package afresh."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


def ran_test_preset(tmp_path_factory: pytest.TempPathFactory, study: str) -> tuple[Path, object]:
    """A study's ``test`` preset run into a fresh folder named for it: ``(folder, result)``."""
    from induction_bigram.studies import STUDIES

    parts = STUDIES[study].parts
    out = tmp_path_factory.mktemp(study)
    return out, parts.run(parts.presets["test"], out, progress=False)


def preset_run_fixture(study: str):
    """A module fixture of :func:`ran_test_preset` for ``study``: the run is slow, so a module's
    tests share one. Bind it to the name its tests ask for (``finished = preset_run_fixture(...)``)."""

    @pytest.fixture(scope="module")
    def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
        return ran_test_preset(tmp_path_factory, study)

    return ran


def tiny_config(**overrides) -> RunConfig:
    """A model small enough to train a few steps in well under a second."""
    base = RunConfig(
        task=TaskConfig(seq_len=16, n_triggers=3),
        model=ModelConfig(d_model=16, n_ctx=16),
        train=TrainConfig(
            steps=12,
            batch_size=8,
            optimizer="sgd",
            lr=0.1,
            eval_every=4,
            eval_batch_size=8,
            checkpoint_every=5,
            device="cpu",
        ),
    )
    return base.with_overrides(overrides) if overrides else base


def randomise_trainables(model, seed: int = 0, scale: float = 0.5):
    """Fill the trained tensors with seeded N(0, scale^2) entries (in place); returns the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
