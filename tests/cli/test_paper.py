"""`harness paper`: the paper's table through the real export + interleaved campaign, at test size (--quick), and
its verdicts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.commands import paper
from tests.support.paths import REPO


def _harness(results: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})


def test_quick_table_runs_the_rows_then_reuses_the_programs(tmp_path):
    args = ("paper", "--quick", "--rows", "bert-base", "--timing", "quick", "--repeat", "1", "--target-ci", "0")
    p = _harness(tmp_path, *args)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "# The MobileBERT paper on host (--quick: test-size models" in out
    assert "untrained random weights" in out and "seq_len 32" in out and "2 threads" in out
    table = [ln for ln in out.splitlines() if ln.startswith("| BERT-base") or ln.startswith("| MobileBERT |")]
    assert len(table) == 2, out
    bert = table[0].split(" | ")
    assert "(109.0M)" in bert[1] and "(22.5G)" in bert[2] and "(5.52x)" in bert[5]
    assert "MobileBERT is 5.5x faster than BERT-base: " in out and "measured (paper 5.52x" in out
    assert "MobileBERT is 4.3x smaller than BERT-base" in out
    assert len(list((tmp_path / "paper").glob("paper-*.md"))) == 1
    # a second run exports nothing: every program comes from the cache
    again = _harness(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert "from cache" in again.stdout and "lowering" not in again.stdout + again.stderr


def test_bad_input_is_refused_before_any_export(tmp_path):
    p = _harness(tmp_path, "paper", "--rows", "gpt2")
    assert p.returncode == 2 and p.stderr.count("error:") == 1
    assert "gpt2 is not a row" in p.stderr and "bert-base" in p.stderr
    p = _harness(tmp_path, "paper", "--device", "no-such-phone", "--quick")
    assert p.returncode == 2 and "no-such-phone" in p.stderr
    assert not (tmp_path / "programs").exists()


@pytest.mark.parametrize("key,ratio,holds", [
    ("bert-base", 5.0, True), ("bert-base", 3.0, False), ("noopt", 2.6, True), ("noopt", 1.2, False),
    ("mobilebert-tiny", 0.7, True), ("mobilebert-tiny", 0.95, False)])
def test_verdict_names_the_measured_and_claimed_ratio(key, ratio, holds):
    row = next(r for r in paper.ROWS if r.key == key)
    v = paper.verdict(row, ratio)
    assert v.startswith("holds" if holds else "does not hold here")
    assert "measured" in v and "paper" in v


def test_verdict_is_unclear_when_the_intervals_straddle_the_threshold():
    row = next(r for r in paper.ROWS if r.key == "bert-base")
    assert paper.verdict(row, 5.0, (4.6, 5.4)).startswith("holds: MobileBERT faster by 5.00x [4.60-5.40]")
    assert paper.verdict(row, 5.0, (2.9, 8.8)).startswith("unclear here")
    assert paper.verdict(row, 3.0, (2.5, 3.5)).startswith("does not hold here")
    tiny = next(r for r in paper.ROWS if r.key == "mobilebert-tiny")
    assert paper.verdict(tiny, 0.5, (0.4, 0.6)).startswith("holds: MobileBERT-TINY faster by 2.00x [1.67-2.50]")


def test_a_row_that_cannot_run_says_why_and_the_others_still_show():
    from types import SimpleNamespace

    from harness.store.record import Latency, Memory

    rows = [r for r in paper.ROWS if r.key in ("bert-base", "mobilebert")]
    rec = SimpleNamespace(tags={"paper": "mobilebert"}, recipe="fp32", status="ok", threads=2, emulated=False,
                          latency=Latency(median=10.0), memory=Memory(peak_rss_mb=40.0), error=None)
    text = paper.paper_table(rows, ["fp32"], {"bert-base": (109e6, 22e9), "mobilebert": (25e6, 5e9)}, [rec],
                             {("mobilebert", "fp32"): 100_000_000},
                             {("bert-base", "fp32"): "not exported: out of memory"},
                             profile=SimpleNamespace(name="pixel7", threads=4), threads=None, seq_len=128,
                             quick=False, timing="default", campaign="c1")
    assert "not measured: not exported: out of memory" in text
    assert "| MobileBERT | 25.0M (25.3M) | 5.0G (5.7G) | 10.00 | 62 | 1.00x (1.00x) | 100.0 | 40.0 | 1 |" in text
    assert "MobileBERT is 5.5x faster than BERT-base: not measured (not exported: out of memory)" in text
