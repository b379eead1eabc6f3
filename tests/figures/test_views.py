import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import matplotlib.pyplot as plt
import pytest
import torch
from circuitsvis.attention import attention_heads
from circuitsvis.utils.render import RenderedHTML

from induction_bigram.config import ModelConfig
from induction_bigram.figures.views import attention_view, offline, save_view, token_labels
from induction_bigram.pretrained import load_pretrained, pretrained_task
from tests.conftest import REPO, model_of


def test_attention_view_shows_both_heads_with_characters(stats, tmp_path):
    model = model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65))
    tokens = stats.encode("First Citizen:\nSpeak")
    assert token_labels(stats, tokens)[5] == "\u2423" and token_labels(stats, tokens)[14] == "\u23ce"
    view = attention_view(model, tokens, stats)
    assert isinstance(view, RenderedHTML)
    assert "previous-token head" in view.local_src and "induction head" in view.local_src
    assert "Citizen" not in view.local_src  # tokens are single characters, not words
    assert '"F"' in view.local_src
    save_view(view, tmp_path / "view.html")
    page = (tmp_path / "view.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" in page and "unpkg.com" not in page


def test_every_form_of_a_view_we_hand_back_is_the_offline_one(stats, monkeypatch):
    """circuitsvis's own view gives Jupyter (and ``str``) a page that loads its script from a CDN
    whenever the kernel is online; ours never asks and always inlines it."""
    import circuitsvis.utils.render as render

    model = model_of(ModelConfig(d_model=16, n_ctx=32, d_vocab=65))
    monkeypatch.setattr(render, "internet_on", lambda: True)  # as on a machine with a network
    theirs = attention_heads(attention=torch.ones(1, 3, 3), tokens=["a", "b", "c"])
    assert "unpkg.com" in theirs._repr_html_() and "unpkg.com" in str(theirs)
    for view in (attention_view(model, stats.encode("First"), stats), offline(theirs)):
        for form in (view._repr_html_(), view.__html__(), str(view), view.show_code()):
            assert form == view.local_src and "unpkg.com" not in form and "CircuitsVis.render" in form


def test_only_the_views_module_calls_circuitsvis():
    """So that every view the package hands back or writes is an offline one."""
    callers = [
        str(p.relative_to(REPO))
        for p in (REPO / "induction_bigram").rglob("*.py")
        if "circuitsvis.attention" in p.read_text()
    ]
    assert callers == ["induction_bigram/figures/views.py"]


def test_view_rejects_out_of_vocabulary_tokens(stats):
    from induction_bigram.errors import DataError

    model = model_of(ModelConfig(d_model=16, n_ctx=8, d_vocab=65))
    with pytest.raises(DataError, match="token id 70"):
        attention_view(model, torch.tensor([1, 70]), stats)


BROWSER_SERVICE_HOSTS = ("google.com", "googleapis.com", "gstatic.com")  # Chromium's own background calls


def _page_requests(net_log: Path) -> list[str]:
    """URLs Chromium requested over the network, less its own background services."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = {
        event["params"]["url"] for event in log["events"] if event["type"] == start and "url" in event.get("params", {})
    }
    remote = [u for u in urls if not u.startswith(("file:", "data:", "blob:", "chrome"))]
    return [u for u in remote if not any(urlsplit(u).hostname.endswith(h) for h in BROWSER_SERVICE_HOSTS)]


@pytest.mark.browser
def test_saved_view_renders_offline_in_headless_chromium(tmp_path):
    """The saved page, opened in a real browser with name resolution cut off, draws the head
    selector and a pattern, and asks the network for nothing."""
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("no chromium on this machine (make test installs Debian's chromium where apt-get can)")
    model = load_pretrained("reference", "cpu")
    page = tmp_path / "view.html"
    save_view(
        attention_view(
            model, model.to_tokens("First Citizen:\nBefore we proceed")[0], pretrained_task("reference").stats
        ),
        page,
    )
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,900", "--virtual-time-budget=5000",
    ]  # fmt: skip
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert "Head Selector" in dom.stdout and "layer 2: induction head" in dom.stdout
    shot, net_log = tmp_path / "shot.png", tmp_path / "net.json"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", f"--log-net-log={net_log}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    pixels = plt.imread(shot)[..., :3]
    blue = (pixels[..., 2] > 0.8) & (pixels[..., 0] < 0.4) & (pixels[..., 1] < 0.4)
    assert blue.sum() > 2000  # the zoomed pattern's sub-diagonal, drawn in saturated blue
    assert _page_requests(net_log) == []
