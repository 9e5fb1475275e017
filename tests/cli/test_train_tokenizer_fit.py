"""Training's doors: the tiny presets train with a tokenizer that fits them (the `harness distill --help`
example runs as written), and a tokenizer that does not fit is one line before anything is written."""

from __future__ import annotations

import subprocess
import sys

HARNESS = [sys.executable, "-m", "harness.cli"]


def test_distill_help_example_runs_as_written(tmp_path):
    import re

    from harness.commands.train import distill_command

    example = next(ln.strip() for ln in distill_command.help.splitlines() if "test-tiny" in ln and "--nproc" not in ln)
    assert re.fullmatch(r"harness distill .*--corpus rotten_tomatoes .*", example)  # an offline corpus: no file to write
    p = subprocess.run([*HARNESS, "--results", str(tmp_path / "r"), *example.split()[1:]], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "student checkpoint (progressive)" in p.stdout
    assert list((tmp_path / "r" / "checkpoints" / "test-tiny-progressive").glob("*.safetensors"))


def test_train_on_a_tiny_preset_and_a_tokenizer_that_does_not_fit(tmp_path):
    p = subprocess.run([*HARNESS, "--results", str(tmp_path / "r"), "train", "--task", "rotten_tomatoes", "--model",
                        "test-tiny", "--steps", "5", "--seq-len", "32"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "dev accuracy" in p.stdout
    from data import default_vocab

    p = subprocess.run([*HARNESS, "--results", str(tmp_path / "r2"), "train", "--task", "rotten_tomatoes", "--model",
                        "test-tiny", "--steps", "5", "--tokenizer", str(default_vocab())],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "has 30522 words but model test-tiny's vocab_size is 128" in p.stderr
    assert not (tmp_path / "r2").exists()


def test_ctrl_c_during_training_says_how_to_resume(tmp_path):
    import signal
    import time

    proc = subprocess.Popen([*HARNESS, "--results", str(tmp_path / "r"), "train", "--task", "rotten_tomatoes",
                             "--model", "test-tiny", "--steps", "100000", "--seq-len", "32", "--save-every", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = tmp_path / "r" / "checkpoints" / "test-tiny-rotten_tomatoes"
    deadline = time.monotonic() + 600  # a guard: a loaded single core takes minutes, not the ~10 s seen here
    while not (out / "training_state.pt").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "no checkpoint was written"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert f"the last checkpoint is in {out}; run the same command again to resume from it" in err
