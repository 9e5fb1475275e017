"""--seq-len of train and distill is bounded by the models: the default is cut to their max_position_embeddings
and says so, a larger value is one line naming the limit, before anything trains (issue #28's repro: a user's own
text file and the tiny presets, whose max_position_embeddings is 64)."""

from __future__ import annotations

import subprocess
import sys


def _harness(*args, cwd):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_distill_cuts_its_default_to_the_models_and_says_so(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("a short line\n" + " ".join(["word"] * 90) + "\n")  # tokenizes past 64
    res = _harness("--results", tmp_path / "r", "distill", "--teacher", "test-tiny-teacher", "--student", "test-tiny",
                   "--strategy", "progressive", "--corpus", notes, "--steps", "2", "--batch-size", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "--seq-len 64: the teacher's and student's max_position_embeddings (the default 128 would not fit)" \
        in res.stderr


def test_a_seq_len_past_the_model_is_refused_first(tmp_path):
    res = _harness("--results", tmp_path / "r", "train", "--task", "rotten_tomatoes", "--model", "test-tiny",
                   "--steps", "2", "--seq-len", "100", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == ("error: --seq-len 100 exceeds the model's max_position_embeddings (64): use "
                                  "--seq-len 64 or less")
    assert not (tmp_path / "r" / "checkpoints").exists()  # nothing trained, nothing written


def test_export_cuts_its_default_to_the_model_and_says_so(tmp_path):
    res = _harness("--results", tmp_path / "r", "export", "--model", "test-tiny", "--numerics-task", "none",
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "note: --seq-len 64: the model's max_position_embeddings (the default 128 would not fit)" in res.stdout
    assert "recipe fp32, seq_len 64" in res.stdout


def test_an_export_seq_len_past_the_model_names_the_way_forward(tmp_path):
    res = _harness("--results", tmp_path / "r", "export", "--model", "test-tiny", "--seq-len", "100",
                   "--numerics-task", "none", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == ("error: --seq-len 100 exceeds the model's max_position_embeddings "
                                                   "(64): use --seq-len 64 or less")
