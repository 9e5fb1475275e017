"""Bundles: cached by content hash (a second build is instant), rebuilt when the source changes, clear errors for
a missing cross compiler or an unknown ABI; and the command lines that start them."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from device_runners import build
from device_runners.base import RunJob
from device_runners.launch import bundle_command, job_command, runner_args
from common.errors import BadInput, RunnerError


def test_second_build_is_instant_and_the_bundle_is_complete(monkeypatch):
    first = build.build_bundle("x86_64")

    def no_compile(*a, **k):
        raise AssertionError("a cached bundle was compiled again")
    monkeypatch.setattr(build, "_compile", no_compile)  # instant means: nothing is built (no clock needed)
    again = build.build_bundle("x86_64")
    assert again == first
    info = build.bundle_info(first)
    assert info["abi"] == "x86_64" and info["executorch"] == "1.5.1" and info["key"] in first.name
    for lib in build.ET_LIBS:
        assert (first / "lib" / lib).is_file()
    dyn = subprocess.run(["readelf", "-d", str(first / "bin" / "harness_runner")], capture_output=True,
                         text=True).stdout
    assert "RUNPATH" in dyn and "$ORIGIN/../lib" in dyn
    for lib in ("libexecutorch_backend_xnnpack.so", "libexecutorch_kernels_optimized.so"):
        assert f"[{lib}]" in dyn, f"{lib} was dropped by the linker: the XNNPACK delegate would not register"


def test_cache_key_follows_the_source(tmp_path, monkeypatch):
    src = tmp_path / "native"
    shutil.copytree(build.NATIVE_DIR, src)
    monkeypatch.setattr(build, "NATIVE_DIR", src)
    _, version = build._compiler("x86_64")
    k1 = build.bundle_key("x86_64", version)
    assert build.bundle_key("arm64-v8a", version) != k1
    (src / "runner.cpp").write_text((src / "runner.cpp").read_text() + "\n// changed\n")
    assert build.bundle_key("x86_64", version) != k1


def test_cache_dir_follows_harness_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    assert build.default_cache_dir() == tmp_path / "runners"


def test_missing_cross_compiler_names_the_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RunnerError, match="install Debian package g\\+\\+-aarch64-linux-gnu"):
        build.build_bundle("arm64-v8a")


def test_unknown_abi():
    with pytest.raises(BadInput, match="armeabi"):
        build.build_bundle("armeabi")


def test_compile_error_is_a_runner_error(tmp_path, monkeypatch):
    src = tmp_path / "native"
    shutil.copytree(build.NATIVE_DIR, src)
    (src / "runner.cpp").write_text("this is not C++\n")
    monkeypatch.setattr(build, "NATIVE_DIR", src)
    with pytest.raises(RunnerError, match="compiling the x86_64 runner failed"):
        build.build_bundle("x86_64", cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("x86_64-*")), "a failed build must leave no bundle behind"


def test_bundle_commands_quote_and_never_use_cpu_max():
    args = ["--program", "/data/my model.pte", "--result", "r.json"]
    x86 = bundle_command("/opt/b", "x86_64", args)
    assert shlex.split(x86) == ["/opt/b/lib/ld-linux-x86-64.so.2", "--library-path", "/opt/b/lib",
                                "/opt/b/bin/harness_runner", *args]
    arm = shlex.split(bundle_command("/data/local/tmp/b/", "arm64-v8a", args))
    assert arm[:4] == ["/data/local/tmp/b/lib/ld-linux-aarch64.so.1", "--library-path", "/data/local/tmp/b/lib",
                       "/data/local/tmp/b/bin/harness_runner"]
    emu = shlex.split(bundle_command("/b", "arm64-v8a", args, qemu=True))
    assert emu[:3] == ["qemu-aarch64", "-cpu", "cortex-a76"] and "max" not in emu
    with pytest.raises(ValueError):
        bundle_command("/b", "x86_64", args, qemu=True)


def test_job_becomes_runner_flags():
    job = RunJob(program="/w/p.pte", inputs="/w/in.bin", result="/w/r.json", outputs="/w/o.bin", warmup=3,
                 iterations=9, min_seconds=1.5, threads=4, affinity="4-7", etdump="/w/d.etdp")
    a = runner_args(job)
    pairs = dict(zip(a[::2], a[1::2]))
    assert pairs == {"--program": "/w/p.pte", "--inputs": "/w/in.bin", "--result": "/w/r.json", "--warmup": "3",
                     "--iterations": "9", "--min-seconds": "1.5", "--outputs": "/w/o.bin", "--threads": "4",
                     "--affinity": "4-7", "--etdump": "/w/d.etdp"}
    assert job_command(job, "/b", "x86_64") == bundle_command("/b", "x86_64", a)


def test_cli_build_reports_the_bundle():
    from click.testing import CliRunner

    from harness.commands.runner import runner_group

    result = CliRunner().invoke(runner_group, ["build", "--abi", "x86_64"])
    assert result.exit_code == 0, result.output
    path = Path(result.output.split()[0])
    assert (path / "bin" / "harness_runner").is_file() and "cached" in result.output


def test_x86_64_bundle_runs_from_an_empty_root(tmp_path):
    """Self-contained like the arm64 bundle: its own loader and libraries, nothing from the host but the kernel
    (what an x86_64 Android emulator, which has no glibc, needs). Checked in a chroot holding only the bundle."""
    import json
    import os

    from tests.support.fixtures_programs import cached_tiny_program, write_token_inputs

    bundle = build.build_bundle("x86_64")
    for name in build.X86_64_LIBS:
        assert (bundle / "lib" / name).is_file() and not (bundle / "lib" / name).is_symlink(), name
    assert build.bundle_info(bundle)["self_contained"] is True
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("the empty-root check needs root and unshare")
    jail = tmp_path / "jail"
    shutil.copytree(bundle, jail / "b")
    (jail / "w").mkdir()
    pte, _ = cached_tiny_program(seq_len=8)
    shutil.copy(pte, jail / "w" / "p.pte")
    write_token_inputs(jail / "w" / "in.bin", 2)
    for d in ("proc", "sys"):
        (jail / d).mkdir()
    cmd = bundle_command("/b", "x86_64", ["--program", "/w/p.pte", "--inputs", "/w/in.bin", "--result", "/w/r.json",
                                          "--outputs", "/w/o.bin", "--iterations", "2", "--threads", "1"])
    script = f"mount -t proc proc {jail}/proc && mount --rbind /sys {jail}/sys && chroot {jail} {cmd}"
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert sorted(os.listdir(jail)) == ["b", "proc", "sys", "w"]  # no /lib64, /usr, /etc: nothing of the host's
    r = json.loads((jail / "w" / "r.json").read_text())
    assert r["runner_version"]["abi"] == "x86_64" and len(r["latencies_ms"]) == 2
