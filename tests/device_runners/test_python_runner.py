"""The Python runner speaks the native runner's flags and JSON, and gives the same outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from device_runners.base import RawResult
from device_runners.build import build_bundle
from device_runners.launch import bundle_command, python_runner_command
from device_runners.python_runner import main, parse_cpu_list, RunFailed
from device_runners.tensorfile import read_tensors, write_tensors
from tests.support.fixtures_programs import cached_tiny_program, write_token_inputs


@pytest.fixture(scope="module")
def tiny():
    return cached_tiny_program(seq_len=8)


def test_same_json_and_outputs_as_the_native_runner(tiny, tmp_path):
    pte, _ = tiny
    write_token_inputs(tmp_path / "in.bin", 5)
    common = ["--program", str(pte), "--inputs", str(tmp_path / "in.bin"), "--warmup", "1", "--iterations", "4",
              "--threads", "1"]
    py = python_runner_command(common + ["--result", str(tmp_path / "py.json"), "--outputs", str(tmp_path / "py.bin")],
                               python=sys.executable)
    p = subprocess.run(py, shell=True, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    nat = bundle_command(str(build_bundle("x86_64")), "x86_64",
                         common + ["--result", str(tmp_path / "n.json"), "--outputs", str(tmp_path / "n.bin")])
    subprocess.run(nat, shell=True, check=True, capture_output=True, timeout=60)

    rp = RawResult.from_json((tmp_path / "py.json").read_text())
    rn = RawResult.from_json((tmp_path / "n.json").read_text())
    assert rp.runner == "python" and rn.runner == "native"
    assert len(rp.latencies_ms) == 4 and rp.num_examples == 5 and rp.threads == 1
    assert rp.extra["input_specs"] == rn.extra["input_specs"] and rp.extra["output_specs"] == rn.extra["output_specs"]
    # the memory figures must say what they measured: torch makes the Python runner far bigger
    assert rp.peak_rss_kb > 5 * rn.peak_rss_kb and rp.peak_rss_method == rn.peak_rss_method
    for a, b in zip(read_tensors(tmp_path / "py.bin"), read_tensors(tmp_path / "n.bin")):
        np.testing.assert_allclose(a[0], b[0], atol=1e-5, rtol=0)


def _run_in_process(tmp_path, *args: str) -> tuple[int, dict]:
    rc = main([*args, "--result", str(tmp_path / "r.json")])
    return rc, json.loads((tmp_path / "r.json").read_text())


def test_errors_are_written_as_json(tiny, tmp_path):
    pte, _ = tiny
    write_tensors(tmp_path / "bad.bin", [[np.zeros((1, 9), dtype=np.int64)]])
    rc, r = _run_in_process(tmp_path, "--program", str(pte), "--inputs", str(tmp_path / "bad.bin"))
    assert rc == 1 and "expects int64[1, 8]" in r["error"] and r["runner"] == "python"
    (tmp_path / "junk.pte").write_bytes(b"junk" * 100)
    write_token_inputs(tmp_path / "in.bin", 1)
    rc, r = _run_in_process(tmp_path, "--program", str(tmp_path / "junk.pte"), "--inputs", str(tmp_path / "in.bin"))
    assert rc == 1 and "junk.pte" in r["error"]
    rc, r = _run_in_process(tmp_path, "--program", str(pte), "--inputs", str(tmp_path / "missing.bin"))
    assert rc == 1 and "missing.bin" in r["error"]


def test_cpu_lists():
    assert parse_cpu_list("4-7") == [4, 5, 6, 7] and parse_cpu_list("0,2-3") == [0, 2, 3]
    for bad in ("", "a", "3-1", "-1"):
        with pytest.raises(RunFailed):
            parse_cpu_list(bad)
