"""scripts/tl_loss.py: what TL's own loss says on the shipped models (issue 31), the user guide's and
``describe``'s account of it held to the measurement."""

from __future__ import annotations

import importlib.util
import math
import sys

from induction_bigram import describe, load_pretrained
from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("tl_loss", REPO / "scripts" / "tl_loss.py")
script = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = script
spec.loader.exec_module(script)


def test_ablating_the_induction_head_lowers_tl_loss_on_general_and_raises_it_on_amt():
    general = script.measure("general", batches=1, batch_size=16)
    assert general["trained_on"] == "in_context"
    assert general["task_tl_loss_ablated"]["mean"] < general["task_tl_loss"]["mean"]
    assert abs(general["task_tl_loss_ablated"]["mean"] - math.log(65)) < 0.05  # nearly uniform logits
    assert general["task_in_context_loss"]["mean"] < 0.1 < general["task_in_context_loss_ablated"]["mean"]
    amt = script.measure("amt", batches=1, batch_size=16)
    assert amt["trained_on"] == "full"
    assert amt["task_tl_loss_ablated"]["mean"] > amt["task_tl_loss"]["mean"]


def test_describe_says_what_tl_loss_means():
    assert "return_type='loss' is the mean over every position" in describe(load_pretrained("general", "cpu"))
