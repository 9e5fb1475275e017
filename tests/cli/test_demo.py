"""`harness demo`, the README's first command, on tiny presets: a student trained (then cached), exports, repeated
runs on real text, task accuracy per recipe beside the untrained model's agreement, one report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harness.commands.demo import STUDENT, student_key, student_spec
from harness.reports.markdown import SINGLE_RUN_NOTE
from harness.store.db import ResultsStore


def _demo(tmp_path, *args, timeout=900):
    """The demo with a fixed number of rounds, quick timing floors and no wait for a quiet host (the suite's other
    worker is busy): the counts below are exact. Extra rounds and the quiet gate are tested in
    tests/harness/run/test_plan.py and tests/harness/run/test_device_state_quiet_gate.py."""
    env = dict(os.environ, HARNESS_RESULTS=str(tmp_path))
    return subprocess.run([sys.executable, "-m", "harness.cli", "demo", "--target-ci", "0", "--wait-for-quiet", "0",
                           "--timing", "quick", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_demo_trains_a_student_reports_its_accuracy_per_recipe_then_reuses_it(tmp_path):
    proc = _demo(tmp_path, "--model", "test-tiny", "--seq-len", "32", "--quant", "fp32,int8", "--repeat", "1",
                 "--samples", "6", "--student-model", "test-tiny", "--student-steps", "3",
                 "--accuracy-samples", "20")
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = ResultsStore(tmp_path).runs()
    assert len(runs) == 4 and all(r.status != "failed" for r in runs)
    assert len({r.campaign for r in runs}) == 1  # one job, one campaign: the report pools nothing else
    student = [r for r in runs if r.model == "checkpoint"]
    full = [r for r in runs if r.model != "checkpoint"]
    assert len(student) == len(full) == 2
    # the trained model is scored on real labels, through the program's own outputs
    assert all(r.accuracy.n == 20 and r.accuracy.value is not None for r in student)
    assert all(r.accuracy.n == 6 and r.accuracy.value is None and r.accuracy.task == "rotten_tomatoes"
               for r in full)  # untrained: agreement only, no task accuracy
    assert "# harness report: 4 runs, 4 groups" in proc.stdout
    assert "timing quick" in proc.stdout and all(r.timing == "quick" for r in runs)  # --timing reaches every run
    assert "untrained" in proc.stdout  # random weights say so wherever they are shown
    assert "weights trained here" in proc.stdout and "Δ fp32" in proc.stdout  # the student's accuracy and its delta

    ckpt = next(tmp_path.glob("checkpoints/demo-test-tiny-rt-*"))
    log = (ckpt / "train_log.jsonl").stat().st_mtime_ns
    cached = _demo(tmp_path, "--model", "test-tiny", "--seq-len", "32", "--quant", "fp32", "--repeat", "2",
                   "--samples", "4", "--student-model", "test-tiny", "--student-steps", "3",
                   "--accuracy-samples", "5")
    assert cached.returncode == 0, cached.stderr[-2000:]
    assert "trained student, from cache" in cached.stdout
    assert "# harness report: 4 runs, 2 groups" in cached.stdout  # this demo's campaign only
    # each row has 2 runs: its CI is across them, or (when one was slowed by a busy host) it says one run was kept
    assert SINGLE_RUN_NOTE not in cached.stdout
    assert (ckpt / "train_log.jsonl").stat().st_mtime_ns == log  # not trained again

    # the same job on the user's own checkpoint: only that model is measured, on the task they name, at a length
    # its positions allow (this one was trained at 64: the default 128 would not fit)
    mine = _demo(tmp_path, "--checkpoint", str(ckpt), "--quant", "fp32", "--repeat", "1", "--accuracy-samples", "7")
    assert mine.returncode == 0, mine.stderr[-2000:]
    every = ResultsStore(tmp_path).runs()
    last = [r for r in every if r.campaign == max(x.campaign for x in every)]
    assert len(last) == 1 and last[0].model == "checkpoint" and last[0].accuracy.n == 7 and last[0].seq_len == 64


def test_the_student_is_retrained_when_what_makes_it_changes():
    spec = student_spec(STUDENT["model"], STUDENT["steps"])
    assert student_key(spec) == student_key(dict(spec))
    assert student_key(spec) != student_key(dict(spec, steps=spec["steps"] + 1))
    assert student_key(spec) != student_key(dict(spec, lr=spec["lr"] / 2))
    assert json.dumps(spec)  # plain data: it is what the cache key hashes


def test_demo_refuses_zero_repeats_and_unknown_recipes(tmp_path):
    proc = _demo(tmp_path, "--repeat", "0", timeout=300)
    assert proc.returncode != 0 and "--repeat" in proc.stderr and "Traceback" not in proc.stderr
    proc = _demo(tmp_path, "--quant", "fp32,int3", timeout=300)
    assert proc.returncode == 2 and "int3" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "checkpoints").exists()  # refused before any training
