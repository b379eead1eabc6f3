"""Property-based fuzz of the model's door and the command line (issue 32, item 6): random
tensors of every dtype, shape and device, random prompts, and random argument lists. Each gives
a DataError / ConfigError (exit 2 on the command line) or a correct result; never another
exception, never exit 1, never a file touched outside the sandbox the command runs in.

Bounded (``max_examples``, small models, a few training steps at most) so that it runs in CI.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from induction_bigram.cli import main
from induction_bigram.config import ModelConfig
from induction_bigram.errors import DataError
from tests.conftest import model_of, vocab
from tests.test_cli import TINY

N_CTX, D_VOCAB = 12, 65
DTYPES = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool, torch.float32, torch.float64]
MODEL = model_of(ModelConfig(d_model=8, n_ctx=N_CTX, d_vocab=D_VOCAB))


@st.composite
def token_tensors(draw):
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, N_CTX + 3), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from(DTYPES))
    device = draw(st.sampled_from(["cpu", "cpu", "cpu", "meta"]))
    low, high = draw(st.sampled_from([(0, D_VOCAB), (0, D_VOCAB), (-3, D_VOCAB + 5)]))
    values = torch.randint(low, high, shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 99))))
    return values.to(dtype).to(device)


def _valid(tokens: torch.Tensor) -> bool:
    return (
        tokens.device.type != "meta"
        and tokens.dtype in (torch.int64, torch.int32)
        and tokens.ndim in (1, 2)
        and tokens.numel() > 0
        and tokens.shape[-1] <= N_CTX
        and bool(((tokens >= 0) & (tokens < D_VOCAB)).all())
    )


@settings(max_examples=150, deadline=None, derandomize=True)
@given(token_tensors())
def test_any_tensor_at_the_models_door_is_a_data_error_or_the_right_logits(tokens):
    valid = _valid(tokens)
    try:
        logits = MODEL(tokens)
    except DataError:
        assert not valid, f"a valid input {tokens.dtype} {tuple(tokens.shape)} was refused"
        return
    assert valid, f"an invalid input {tokens.dtype} {tuple(tokens.shape)} {tokens.device} ran"
    batch = 1 if tokens.ndim == 1 else tokens.shape[0]
    assert logits.shape == (batch, tokens.shape[-1], D_VOCAB) and torch.isfinite(logits).all()


CHARACTERS = st.sampled_from([*vocab(D_VOCAB)[:20], "\u20ac", "\t", "<|bos|>", "\u00e9"])


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.lists(CHARACTERS, max_size=N_CTX + 4).map("".join), st.lists(st.lists(CHARACTERS, max_size=4).map("".join))
    )
)
def test_any_prompt_is_a_data_error_or_the_right_logits(prompt):
    prompts = [prompt] if isinstance(prompt, str) else prompt
    known = set(vocab(D_VOCAB))
    lengths = [len(p) for p in prompts]
    valid = (
        bool(prompts)
        and all(set(p) <= known for p in prompts)
        and len(set(lengths)) == 1  # padding fills a shorter prompt with an id the model lacks
        and 0 < lengths[0] <= N_CTX
    )
    try:
        logits = MODEL(prompt)
    except DataError:
        assert not valid, f"a valid prompt {prompt!r} was refused"
        return
    assert valid, f"an invalid prompt {prompt!r} ran"
    assert logits.shape == (len(prompts), lengths[0], D_VOCAB)


# -- the command line -----------------------------------------------------------------------

VALUES = ["", "x", "-1", "0", "2", "nan", "inf", "1e10", "[1]", "true", "none", "cpu", "\u00e9"]
KEYS = ["train.steps", "train.batch_size", "model.d_model", "model.n_ctx", "task.seq_len", "train.lr", "train.device"]
KEYS += ["model.positional", "task.n_triggers", "memories.prompt", "incontext.per_cell", "nonsense", "train"]


@st.composite
def argument_lists(draw):
    command = draw(
        st.sampled_from(
            ["train", "standard", "evaluate", "memories", "presets", "sweep-plot", "capacity-law", "lengths"]
        )
    )
    outs = ["out", "a_file", "users_folder", "", "run/figures", "run"]
    argv = [command]
    if command in ("evaluate", "memories", "sweep-plot", "capacity-law"):
        argv.append(draw(st.sampled_from(["run", "a_file", "nowhere", "", "users_folder"])))
    if command in ("train", "standard", "lengths") or (command == "memories" and draw(st.booleans())):
        # a study that ran would take minutes: its --out is always one the folder rule refuses
        argv += [
            "--out",
            draw(st.sampled_from(outs if command != "lengths" else ["a_file", "users_folder", "", "run"])),
        ]
    if command in ("train", "standard"):
        argv += [*TINY, "--no-progress"]
        if command == "standard":
            argv += [
                "--preset",
                "standard-test",
                "--text",
                draw(st.sampled_from(["text.txt", "a_file", "", "nowhere"])),
            ]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["set", "set", "set", "flag", "value", "grid"]))  # mostly past the parser
        if kind == "set":
            argv += ["--set", f"{draw(st.sampled_from(KEYS))}={draw(st.sampled_from(VALUES))}"]
        elif kind == "flag":
            argv.append(draw(st.sampled_from(["--resume", "--overwrite", "--json", "--preset", "--seed", "-h"])))
        elif kind == "grid":
            argv += ["--grid", f"model.d_model={draw(st.sampled_from(VALUES))}"]
        else:
            argv.append(draw(st.sampled_from(VALUES)))
    if "train.steps" in " ".join(argv) and command == "standard":
        argv += ["--set", "train.steps=2"]  # the standard preset's own steps stay small
    return argv


def _snapshot(root: Path, outside: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` but ``outside`` (what a command may write), with size and mtime."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if not path.is_relative_to(outside):
                stat = path.stat()
                found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    assert main(["train", "--out", str(root / "run"), "--no-progress", *TINY]) == 0
    (root / "a_file").write_text("a user's file")
    (root / "users_folder").mkdir()
    (root / "users_folder" / "notes.txt").write_text("mine")
    (root / "text.txt").write_text("the cat sat on the mat. " * 30)
    return root


def test_any_argument_list_exits_0_or_2_and_writes_only_into_its_out_folder(sandbox):
    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(argument_lists())
    def check(argv):
        before = _snapshot(sandbox, sandbox / "out")
        err = io.StringIO()
        old = os.getcwd()
        os.chdir(sandbox)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except SystemExit as exit_:  # -h prints help and exits 0
                    code = exit_.code
        finally:
            os.chdir(old)
        assert code in (0, 2), f"{argv}: exit {code}: {err.getvalue()}"
        assert "internal error" not in err.getvalue() and "Traceback" not in err.getvalue(), argv
        after = _snapshot(sandbox, sandbox / "out")
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        allowed = {k for k in changed if out and out.startswith("run") and k.startswith("run/")}
        if argv[0] == "memories" and "--out" not in argv:
            allowed |= {k for k in changed if k.startswith("run/figures/") or k.startswith("run/.induction")}
        assert changed <= allowed, f"{argv} touched {sorted(changed - allowed)}"

    check()
