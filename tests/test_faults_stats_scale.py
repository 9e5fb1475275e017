"""Issue #18, "stats that scale": one stored run of 98,609 samples made every `harness report` take 3.4 s instead of
0.9 s, because the report bootstrapped the raw samples again. A run's summary is computed once, when it is stored,
and the report reuses it: a 100k-sample run reports about as fast as a 1k-sample one (ratios within this test)."""

from __future__ import annotations

import subprocess
import sys
import time

from harness.store.db import ResultsStore
from test_report_identity import rec


def _report_seconds(results) -> float:
    """The fastest of two `harness report` processes on this store (import time included, as a user waits)."""
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), "report"],
                           capture_output=True, text=True, timeout=120)
        best = min(best, time.perf_counter() - t0)
        assert p.returncode == 0 and "1 run" in p.stdout, p.stderr
    return best


def test_a_100k_sample_run_reports_as_fast_as_a_1k_one(tmp_path):
    small, big = tmp_path / "small", tmp_path / "big"
    ResultsStore(small).add(rec("fp32", ms=10.0, seed=1, n=1_000, campaign="c"))
    t0 = time.perf_counter()
    big_run = rec("fp32", ms=10.0, seed=2, n=100_000, campaign="c")  # summarised here, as a run is when stored
    summarize_s = time.perf_counter() - t0
    ResultsStore(big).add(big_run)
    t_small, t_big = _report_seconds(small), _report_seconds(big)
    assert t_big < 1.5 * t_small, (t_small, t_big, summarize_s)


def test_a_report_reuses_the_summary_stored_with_a_run(tmp_path, monkeypatch):
    """What makes the ratio above hold, checked without a clock: the report never bootstraps a stored run again.
    (A difference of timings cannot show it where the bootstrap of 100k samples takes 60 ms beside a 0.5 s report.)"""
    from click.testing import CliRunner

    from harness.cli import cli
    from harness.results import table

    ResultsStore(tmp_path).add(rec("fp32", ms=10.0, seed=2, n=100_000, campaign="c"))

    def again(samples, **kw):
        raise AssertionError(f"the report summarised {len(samples)} stored samples again")

    monkeypatch.setattr(table, "summarize", again)
    res = CliRunner().invoke(cli, ["--results", str(tmp_path), "report"], catch_exceptions=False,
                             standalone_mode=False)
    assert "1 run" in res.output
