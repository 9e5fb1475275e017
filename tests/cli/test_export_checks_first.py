"""Export checks what it can before it builds or lowers anything, never lets a name choose a folder,
never casts non-float weights silently, and writes through unique temporaries (parallel exports, killed ones)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HARNESS = [sys.executable, "-m", "harness.cli"]


def export(results: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    defaults = [] if "--numerics-samples" in args else ["--numerics-samples", "8"]  # each option once
    defaults += [] if "--seq-len" in args else ["--seq-len", "16"]
    return subprocess.run([*HARNESS, "--results", str(results), "export", "--model", "test-tiny",
                           *defaults, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def one_error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stdout + p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr
    return errors[0]


@pytest.mark.parametrize("args, names", [
    (["--name", "../../escaped"], "--name '../../escaped'"),
    (["--name", "/tmp/abs-name"], "--name '/tmp/abs-name'"),
    (["--quant", "int4", "--group-size", "7"], "--group-size 7"),
    (["--quant", "int8", "--keep-fp32", "no_such_layer"], "no_such_layer"),
    (["--quant", "fp32", "--keep-fp32", "classifier"], "nothing to keep"),
    (["--min-agreement", "2"], "--min-agreement 2"),
    (["--numerics-samples", "0"], "--numerics-samples 0"),
    (["--numerics-samples", "-5"], "--numerics-samples -5"),
    # a sweep's later point: refused before its first point is exported (the fp32 program was made, then refused)
    (["--quant", "fp32,int4", "--group-size", "48"], "--group-size 48"),
    (["--seq-len", "16,5000"], "--seq-len 5000"),
])
def test_refused_before_any_lowering(tmp_path, args, names):
    results = tmp_path / "deep" / "results"
    p = export(results, *args)
    line = one_error_line(p)
    assert names in line
    assert not list((results / "programs").glob("*.pte")) if (results / "programs").exists() else True
    assert not any(tmp_path.rglob("escaped*")) and not Path("/tmp/abs-name.pte").exists()


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_non_float_weights_are_refused_not_cast(tmp_path, dtype):
    from model.config import get_preset
    from model.mobilebert import MobileBertForSequenceClassification
    from model.weights import read_weights, save_checkpoint

    ck = tmp_path / "int-weights"
    save_checkpoint(MobileBertForSequenceClassification(get_preset("test-tiny")), ck)
    sd = read_weights(ck)
    key = next(k for k in sd if k.endswith("dense.weight"))
    sd[key] = sd[key].to(dtype)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(ck / "model.safetensors"))
    p = subprocess.run([*HARNESS, "--results", str(tmp_path / "r"), "export", "--checkpoint", str(ck),
                        "--numerics-task", "none"], capture_output=True, text=True, timeout=600)
    line = one_error_line(p)
    assert key in line and str(dtype).removeprefix("torch.") in line


def test_parallel_exports_into_one_folder_and_stale_temporaries(tmp_path):
    results, out = tmp_path / "r", tmp_path / "out"
    (results / "programs").mkdir(parents=True)
    stale = results / "programs" / ".test-tiny-fp32-s16-x.pte.999999999-0123abcd.tmp"  # a pid no process has
    stale.write_bytes(b"half a program")
    first = export(results, "--numerics-task", "none")  # fill the cache: the parallel ones then only publish
    assert first.returncode == 0, first.stderr
    assert not stale.exists()  # swept: its writer is gone
    procs = [subprocess.Popen([*HARNESS, "--results", str(results), "export", "--model", "test-tiny", "--seq-len",
                               "16", "--numerics-task", "none", "--out", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for pr in procs:
        _, err = pr.communicate(timeout=600)
        assert pr.returncode == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["test-tiny-fp32-s16.json", "test-tiny-fp32-s16.pte"]
