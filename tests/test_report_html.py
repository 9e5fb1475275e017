"""The HTML report: one self-contained file whose plots really render in headless Chromium."""

import base64
import re
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread

from conftest import require_tool
from harness.results.plots import pareto_front
from harness.results.report import render
from test_report_table import run

PROFILE = {"ops": [{"name": "DELEGATE_CALL xnn_fully_connected", "ms": 3.2, "backend": "XNNPACK"},
                   {"name": "aten::embedding", "ms": 0.4, "backend": "portable"},
                   {"name": "aten::gather", "ms": 0.2, "backend": "portable"}]}


@pytest.fixture
def records():
    return [
        run("fp32", median_ms=12.0, seed=1, accuracy={"metric": "accuracy", "value": 0.90}),
        run("int8", median_ms=4.0, seed=2, accuracy={"metric": "accuracy", "value": 0.89}, profile=PROFILE,
            flags=["profiled"]),
        run("int4", median_ms=5.0, seed=3, accuracy={"metric": "accuracy", "value": 0.80}),
        run("int8", device="emu-arm64", median_ms=3000.0, seed=4, emulated=True),
        run("int4", status="failed", device="emu-arm64", error="runner crashed (signal 11)"),
    ]


def _images(html):
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)


def test_html_is_self_contained_with_every_plot(records, tmp_path):
    html = render(records, "html", tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == html
    assert not re.search(r'(src|href)="(https?:|//|file:)', html) and "<script" not in html
    titles = [t for t, _ in _images(html)]
    assert any(t.startswith("Latency distribution, hardware") for t in titles)
    assert any(t.startswith("Latency distribution, emulated") for t in titles)
    assert any(t.startswith("Accuracy vs latency on pixel8pro") for t in titles)
    assert any(t.startswith("Program size vs latency, hardware") for t in titles)
    assert any(t.startswith("Program size vs latency, emulated") for t in titles)
    assert any(t.startswith("Per-op time, mobilebert int8") for t in titles)
    assert all(t.endswith("(untrained (random) weights)") for t in titles)  # every run here has random weights
    for _, b64 in _images(html):
        png = base64.b64decode(b64)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "runner crashed (signal 11)" in html and "never ranked or compared with hardware" in html


def test_trained_weights_are_not_called_random(records, tmp_path):
    for r in records:
        r.random_weights = False
    html = render(records, "html")
    assert "untrained" not in html


def test_pareto_front():
    pts = [(4.0, 0.89), (5.0, 0.80), (12.0, 0.90), (13.0, 0.85), (4.0, 0.70)]
    assert pareto_front(pts) == [(4.0, 0.89), (12.0, 0.90)]


def _browser() -> str:
    """$HARNESS_CHROMIUM, else the first Chromium-like browser on PATH (Debian: chromium; Ubuntu runners: Chrome)."""
    import os
    import shutil

    if os.environ.get("HARNESS_CHROMIUM"):
        return os.environ["HARNESS_CHROMIUM"]
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found is None:
        require_tool("chromium")  # skips, or fails in CI, naming the package
    return found


def test_html_renders_in_headless_chromium(records, tmp_path):
    browser = _browser()
    page = tmp_path / "report.html"
    render(records, "html", page)
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'ud'}",
           f"--screenshot={shot}", "--window-size=1280,2600", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.exists(), proc.stderr[-2000:]
    img = imread(shot)[..., :3]
    assert img.shape[:2] == (2600, 1280)
    nonwhite = (img < 0.95).any(axis=2).mean()
    assert nonwhite > 0.02  # text, tables and plots, not a blank page
    # the op-breakdown bars and scatter points are #2b7bba: seen only if the inline PNGs were decoded and drawn
    blue = np.abs(img - np.array([0x2B, 0x7B, 0xBA]) / 255.0).max(axis=2) < 0.04
    assert blue.sum() > 500


def test_random_weight_runs_plot_agreement_instead_of_accuracy():
    """Random-weight programs have no task accuracy, only top-1 agreement with fp32 eager: plot that."""
    recs = [run("fp32", seed=1, accuracy={"metric": "accuracy", "agreement_fp32": 1.0}),
            run("int8", median_ms=5.0, seed=2, accuracy={"metric": "accuracy", "agreement_fp32": 0.97})]
    titles = [t for t, _ in _images(render(recs, "html"))]
    assert "Agreement vs latency on pixel8pro (untrained (random) weights)" in titles
