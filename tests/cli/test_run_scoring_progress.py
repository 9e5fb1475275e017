"""The accuracy pass says where it is: 'scoring example k/N, about m:ss left', from the runner's own progress lines,
so every transport that forwards the runner's stderr shows it (issue #28: under emulation, 50 examples took two
minutes with the status line frozen on 'writing outputs')."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys

import pytest

from device_runners.base import PROGRESS_MARK
from harness.run.measure import _progress_lines


def test_runner_lines_become_scoring_example_k_of_n_with_an_estimate():
    shown = []
    on_line = _progress_lines(shown.append, "host")
    for done, elapsed in ((0, 0.0), (10, 20.0), (50, 100.0)):
        on_line(f"{PROGRESS_MARK} " + json.dumps({"stage": "scoring examples", "done": done, "target": 50,
                                                  "elapsed_s": elapsed, "min_seconds": 0}))
    assert shown == ["host: scoring example 1/50", "host: scoring example 11/50, about 1:20 left",
                     "host: scored 50/50 examples"]


def _run(tmp_path, program, *extra):
    return subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "r"), "run",
                           "--program", str(program), "--task", "rotten_tomatoes", "--samples", "12", *extra], capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    out = tmp_path_factory.mktemp("prog")
    res = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(out), "export", "--model",
                          "test-tiny", "--seq-len", "16", "--numerics-task", "none"], capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr
    return glob.glob(str(out / "programs" / "*.pte"))[0]


@pytest.mark.parametrize("runner", ["native", "python"])
def test_a_host_run_reports_each_example_it_scores(program, tmp_path, runner):
    res = _run(tmp_path, program, "--runner", runner, "--timing", "quick")
    assert res.returncode == 0, res.stderr
    assert "scoring example 1/12" in res.stderr and "scored 12/12 examples" in res.stderr


@pytest.mark.skipif(shutil.which("qemu-aarch64") is None or shutil.which("aarch64-linux-gnu-g++") is None,
                    reason="needs qemu-user and the aarch64 cross compiler")
def test_an_emulated_run_reports_each_example_it_scores(program, tmp_path):
    res = _run(tmp_path, program, "--device", "emu-arm64")  # its own timing preset: 1 warmup, 3 timed, and valid
    assert res.returncode == 0, res.stderr
    assert "scoring example 1/12" in res.stderr and "scored 12/12 examples" in res.stderr
    assert "[emulated: timings are functional only]" in res.stdout  # rich took it for markup and printed nothing
    from harness.store.db import ResultsStore

    (rec,) = ResultsStore(tmp_path / "r").runs()
    assert (rec.timing, rec.status, rec.latency.n) == ("emulated", "ok", 3)
    assert "emulated" in rec.flags and "too_few_samples" not in rec.flags  # warnings (high_cv) may come with it
