"""A real ExecuTorch program through each remote transport: push the runner bundle, the program and inputs, run,
pull the result, and compare the outputs with the host runner's. The adb "phone" is the stand-in (arm64 bundle
under qemu-aarch64 -cpu cortex-a76); the ssh "board" is this machine (x86_64 bundle)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support.adb_standin import AdbStandin
from tests.support.tools import require_tool
from device_runners.adb import AdbTransport
from device_runners.base import RawResult, RunJob, Transport
from device_runners.build import build_bundle
from device_runners.launch import bundle_command, runner_args
from device_runners.ssh import SshTransport
from device_runners.tensorfile import read_tensors
from tests.support.sshd_fixture import Sshd, require_sshd
from tests.support.fixtures_programs import cached_tiny_program, write_token_inputs


@pytest.fixture(scope="module")
def tiny():
    return cached_tiny_program(seq_len=8)


@pytest.fixture(scope="module")
def host_outputs(tiny, tmp_path_factory):
    """The x86_64 runner's outputs for the same inputs, run directly on this machine."""
    d = tmp_path_factory.mktemp("host")
    write_token_inputs(d / "in.bin", 4)
    bundle = build_bundle("x86_64")
    job = RunJob(program=str(tiny[0]), inputs=str(d / "in.bin"), result=str(d / "r.json"), outputs=str(d / "o.bin"),
                 warmup=0, iterations=2, threads=1)
    p = subprocess.run(bundle_command(str(bundle), "x86_64", runner_args(job)), shell=True, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return d / "in.bin", [ex[0] for ex in read_tensors(d / "o.bin")]


def run_remotely(t: Transport, bundle: Path, abi: str, program: Path, inputs: Path, local: Path, timeout: float):
    """What the bench does on a device, step by step, with every file crossing the transport."""
    remote_bundle = f"{t.workdir()}/bundles/{bundle.name}"
    run = f"{t.workdir()}/runs/e2e"
    t.push(bundle, remote_bundle)
    t.push(program, f"{run}/program.pte")
    t.push(inputs, f"{run}/inputs.bin")
    job = RunJob(program=f"{run}/program.pte", inputs=f"{run}/inputs.bin", result=f"{run}/result.json",
                 outputs=f"{run}/outputs.bin", warmup=0, iterations=2, threads=1)
    rc, out, err = t.shell(bundle_command(remote_bundle, abi, runner_args(job)), timeout=timeout)
    assert rc == 0, err
    t.pull(job.result, local / "result.json")
    t.pull(job.outputs, local / "outputs.bin")
    t.cleanup(run)
    rc, out, _ = t.shell(f"test -e {run} && echo left || echo gone")
    assert out.strip() == "gone"
    outputs = [ex[0] for ex in read_tensors(local / "outputs.bin")]
    return RawResult.from_json((local / "result.json").read_text()), outputs


def test_arm64_bundle_through_the_adb_standin_matches_host(tiny, host_outputs, tmp_path, monkeypatch):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")
    inputs, expected = host_outputs
    bundle = build_bundle("arm64-v8a")
    with AdbStandin(tmp_path / "sandbox") as phone:
        t = AdbTransport(port=phone.port)
        raw, outputs = run_remotely(t, bundle, "arm64-v8a", tiny[0], inputs, tmp_path, timeout=600)
        ran = [c for c in phone.commands if "harness_runner" in c]
    assert len(ran) == 1 and ran[0].count("qemu-aarch64 -cpu cortex-a76 ") == 1, ran
    assert raw.runner == "native" and raw.runner_version["abi"] == "arm64-v8a" and raw.num_examples == 4
    assert len(outputs) == len(expected) == 4
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_x86_bundle_over_ssh_matches_host(tiny, host_outputs, tmp_path):
    require_sshd()
    inputs, expected = host_outputs
    bundle = build_bundle("x86_64")
    with Sshd(tmp_path / "sshd") as sshd:
        t = SshTransport(sshd.address, key_file=sshd.key, workdir=str(tmp_path / "board"))
        try:
            raw, outputs = run_remotely(t, bundle, "x86_64", tiny[0], inputs, tmp_path, timeout=120)
            assert t.info()["abi"] == "x86_64"
        finally:
            t.close()
    assert raw.runner == "native" and raw.runner_version["abi"] == "x86_64" and len(raw.latencies_ms) == 2
    for got, want in zip(outputs, expected):
        np.testing.assert_array_equal(got, want)  # same binary, same machine: bit-identical
