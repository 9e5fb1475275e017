"""The arm64 bundle under qemu-aarch64 -cpu cortex-a76: same outputs as the x86_64 runner, from the cache, from a
copy in a fresh directory with no sysroot (self-contained), against the Debian sysroot, and in a chroot that holds
only the bundle (where a missing /sys must be a clear error, not a segfault)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from device_runners.build import build_bundle
from device_runners.launch import QEMU_CPU, bundle_command
from device_runners.qemu import QemuTransport
from device_runners.tensorfile import read_tensors
from tests.support.tools import require_tool
from tests.support.fixtures_programs import cached_tiny_program, write_token_inputs


@pytest.fixture(scope="module")
def arm64_bundle() -> Path:
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    return build_bundle("arm64-v8a")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The x86_64 runner's outputs on 4 examples: what every arm64 run must reproduce."""
    d = tmp_path_factory.mktemp("ref")
    pte, _ = cached_tiny_program(seq_len=8)
    write_token_inputs(d / "in.bin", 4)
    cmd = bundle_command(str(build_bundle("x86_64")), "x86_64",
                         ["--program", str(pte), "--inputs", str(d / "in.bin"), "--result", str(d / "r.json"),
                          "--outputs", str(d / "out.bin"), "--warmup", "0", "--iterations", "1"])
    subprocess.run(cmd, shell=True, check=True, capture_output=True, timeout=60)
    return pte, d / "in.bin", [ex[0] for ex in read_tensors(d / "out.bin")]


def _run(cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "QEMU_LD_PREFIX"}  # no hidden sysroot
    return subprocess.run(cmd, shell=True, capture_output=True, encoding="utf-8", errors="replace", timeout=timeout,
                          env=env)


def _check_outputs(out: Path, ref: list[np.ndarray]) -> None:
    got = [ex[0] for ex in read_tensors(out)]
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, atol=1e-5, rtol=1e-5)


def test_bundle_layout(arm64_bundle):
    lib = arm64_bundle / "lib"
    for name in ("ld-linux-aarch64.so.1", "libc.so.6", "libstdc++.so.6", "libexecutorch.so",
                 "libexecutorch_backend_xnnpack.so"):
        assert (lib / name).is_file() and not (lib / name).is_symlink(), name
    elf = (arm64_bundle / "bin" / "harness_runner").read_bytes()[:20]
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 183  # EM_AARCH64
    dyn = subprocess.run(["readelf", "-d", str(arm64_bundle / "bin" / "harness_runner")], capture_output=True,
                         text=True).stdout
    assert "$ORIGIN/../lib" in dyn and "/usr" not in dyn and "/work" not in dyn


def test_self_contained_copy_in_a_fresh_directory(arm64_bundle, reference, tmp_path):
    pte, inputs, ref = reference
    copy = tmp_path / "somewhere" / "else"
    shutil.copytree(arm64_bundle, copy)
    args = ["--program", str(pte), "--inputs", str(inputs), "--result", str(tmp_path / "r.json"),
            "--outputs", str(tmp_path / "out.bin"), "--warmup", "1", "--iterations", "3", "--threads", "1"]
    cmd = bundle_command(str(copy), "arm64-v8a", args, qemu=True)
    assert cmd.startswith(f"qemu-aarch64 -cpu {QEMU_CPU} ") and " -L " not in cmd
    p = _run(cmd)
    assert p.returncode == 0, p.stderr[-2000:]
    _check_outputs(tmp_path / "out.bin", ref)
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["runner_version"]["abi"] == "arm64-v8a" and len(r["latencies_ms"]) == 3


def test_sysroot_run_gives_the_same_outputs(arm64_bundle, reference, tmp_path):
    pte, inputs, ref = reference
    args = ["--program", str(pte), "--inputs", str(inputs), "--result", str(tmp_path / "r.json"),
            "--outputs", str(tmp_path / "out.bin"), "--warmup", "0", "--iterations", "1"]
    cmd = bundle_command(str(arm64_bundle), "arm64-v8a", args, qemu=True, sysroot="/usr/aarch64-linux-gnu")
    assert " -L /usr/aarch64-linux-gnu " in cmd and "ld-linux" not in cmd
    p = _run(cmd)
    assert p.returncode == 0, p.stderr[-2000:]
    _check_outputs(tmp_path / "out.bin", ref)


def test_qemu_transport_end_to_end(arm64_bundle, reference, tmp_path):
    pte, inputs, ref = reference
    t = QemuTransport(sandbox=tmp_path / "device")
    try:
        w = t.workdir()
        t.push(arm64_bundle, f"{w}/bundle")
        t.push(pte, f"{w}/p.pte")
        t.push(inputs, f"{w}/in.bin")
        cmd = t.runner_command(f"{w}/bundle", ["--program", f"{w}/p.pte", "--inputs", f"{w}/in.bin", "--result",
                                               f"{w}/r.json", "--outputs", f"{w}/out.bin", "--iterations", "2"])
        rc, out, err = t.shell(cmd, timeout=120)
        assert rc == 0, err[-2000:]
        t.pull(f"{w}/out.bin", tmp_path / "out.bin")
        _check_outputs(tmp_path / "out.bin", ref)
        info = t.info()
        assert info["emulated"] is True and info["cpu"] == "cortex-a76 (qemu)" and info["abi"] == "arm64-v8a"
    finally:
        t.close()


def _jail(tmp_path: Path, bundle: Path, pte: Path, inputs: Path) -> Path:
    """A root directory with only qemu (and its host libraries), the bundle and the job's files."""
    jail = tmp_path / "jail"
    shutil.copytree(bundle, jail / "b")
    (jail / "w").mkdir()
    shutil.copy(pte, jail / "w" / "p.pte")
    shutil.copy(inputs, jail / "w" / "in.bin")
    qemu = shutil.which("qemu-aarch64")
    ldd = subprocess.run(["ldd", qemu], capture_output=True, text=True).stdout
    for f in [qemu] + [tok for tok in ldd.split() if tok.startswith("/")]:
        (jail / f.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, jail / f.lstrip("/"))
    return jail


JAIL_CMD = ("qemu-aarch64 -cpu cortex-a76 /b/lib/ld-linux-aarch64.so.1 --library-path /b/lib /b/bin/harness_runner "
            "--program /w/p.pte --inputs /w/in.bin --result /w/r.json --outputs /w/out.bin --iterations 1")


def _need_root_namespaces():
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("chroot") is None:
        pytest.skip("chroot checks need root and unshare")
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespaces here")


def test_chroot_with_only_the_bundle_and_proc_sys(arm64_bundle, reference, tmp_path):
    _need_root_namespaces()
    pte, inputs, ref = reference
    jail = _jail(tmp_path, arm64_bundle, pte, inputs)
    (jail / "proc").mkdir()
    (jail / "sys").mkdir()
    # A private mount namespace: the proc/sys mounts vanish with the command.
    script = (f"mount -t proc proc {jail}/proc && mount --rbind /sys {jail}/sys && "
              f"chroot {jail} /usr/bin/{JAIL_CMD}")
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                       encoding="utf-8", errors="replace", timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    _check_outputs(jail / "w" / "out.bin", ref)


def test_chroot_without_sys_is_a_clear_error(arm64_bundle, reference, tmp_path):
    _need_root_namespaces()
    pte, inputs, _ = reference
    jail = _jail(tmp_path, arm64_bundle, pte, inputs)
    p = subprocess.run(["chroot", str(jail), f"/usr/bin/{JAIL_CMD.split(' ', 1)[0]}", *JAIL_CMD.split()[1:]],
                       capture_output=True, encoding="utf-8", errors="replace", timeout=60)
    assert p.returncode == 1, (p.returncode, p.stderr[-1000:])
    err = json.loads((jail / "w" / "r.json").read_text())["error"]
    assert "/sys/devices/system/cpu" in err


def test_int8_program_is_bit_identical_to_x86_under_cortex_a76(arm64_bundle, tmp_path):
    """Static int8 through XNNPACK: the case QEMU's default `-cpu max` gets wrong (SME kernels; measured here:
    max |diff| 0.275 on logits of magnitude 0.32). Under -cpu cortex-a76 it must match x86_64 exactly."""
    pte, _ = cached_tiny_program(seq_len=8, int8=True)
    write_token_inputs(tmp_path / "in.bin", 8)
    outs = {}
    for abi, bundle, qemu in (("x86_64", build_bundle("x86_64"), False), ("arm64-v8a", arm64_bundle, True)):
        args = ["--program", str(pte), "--inputs", str(tmp_path / "in.bin"), "--result", str(tmp_path / f"{abi}.json"),
                "--outputs", str(tmp_path / f"{abi}.bin"), "--warmup", "0", "--iterations", "1"]
        p = _run(bundle_command(str(bundle), abi, args, qemu=qemu))
        assert p.returncode == 0, p.stderr[-2000:]
        outs[abi] = [ex[0] for ex in read_tensors(tmp_path / f"{abi}.bin")]
    _check_outputs(tmp_path / "arm64-v8a.bin", outs["x86_64"])
    assert max(float(np.abs(a).max()) for a in outs["x86_64"]) > 0.01, "logits must not be trivially zero"
