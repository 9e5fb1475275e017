"""Options that do what they say: `--results` after the verb is the same as before it, and an option that takes one
value given twice is refused in one line instead of silently keeping the last."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_results_after_the_verb_is_the_results_folder(tiny, tmp_path):
    res = _cli("run", "--results", tmp_path / "after", "--program", tiny[0], "--timing", "quick", "--min-seconds",
               "0", "--warmup-seconds", "0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "after" / "runs.sqlite").is_file() and not (tmp_path / "results").exists()
    listed = _cli("runs", "list", f"--results={tmp_path / 'after'}", cwd=tmp_path)
    assert listed.returncode == 0 and "1 run" in listed.stdout, listed.stderr


@pytest.mark.parametrize("args, flag", [
    (["run", "--iterations", "3", "--iterations", "5", "--program", "p.pte"], "--iterations"),
    (["run", "--device", "host", "--device=pixel7", "--program", "p.pte"], "--device"),
    (["report", "--format", "md", "--format", "csv"], "--format"),
    (["runs", "list", "--campaign", "a", "--campaign", "b"], "--campaign"),
])
def test_a_single_value_option_given_twice_is_refused(tmp_path, args, flag):
    res = _cli("--results", tmp_path, *args)
    assert res.returncode == 2 and f"error: {flag} is given 2 times but takes one value" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_options_that_repeat_still_repeat(tmp_path):
    res = _cli("--results", tmp_path, "report", "--tag", "a=1", "--tag", "b=2")
    assert "given 2 times" not in res.stderr
