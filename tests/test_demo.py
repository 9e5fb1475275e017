"""`harness demo`, the README's first command, on a tiny preset: export, repeated runs on real text, the report."""

from __future__ import annotations

import os
import subprocess
import sys

from harness.results.markdown import SINGLE_RUN_NOTE
from harness.store.db import ResultsStore


def test_demo_exports_runs_repeatedly_and_reports_an_interval_across_runs(tmp_path, bundle):
    env = dict(os.environ, HARNESS_RESULTS=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "demo", "--model", "test-tiny", "--seq-len", "32",
                           "--quant", "fp32", "--repeat", "2", "--samples", "6"],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = ResultsStore(tmp_path).runs()
    assert len(runs) == 2 and all(r.status != "failed" for r in runs)
    assert all(r.accuracy["n"] == 6 and r.accuracy["task"] == "rotten_tomatoes" for r in runs)
    assert "# harness report: 2 runs, 1 group" in proc.stdout
    assert SINGLE_RUN_NOTE.split(":")[0] not in proc.stdout  # the row pools both runs: its CI is across runs
    assert "untrained" in proc.stdout  # random weights say so wherever they are shown


def test_demo_refuses_zero_repeats(tmp_path):
    env = dict(os.environ, HARNESS_RESULTS=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "demo", "--repeat", "0"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0 and "--repeat" in proc.stderr and "Traceback" not in proc.stderr
