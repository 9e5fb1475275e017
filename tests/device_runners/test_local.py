"""Local and qemu transports (copy, shell, timeouts that kill the whole process group, device snapshots) and the
devinfo parser on a phone's /proc and /sys."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from device_runners.base import TransportError
from device_runners.devinfo import DEVINFO_SCRIPT, parse_devinfo
from device_runners.local import LocalTransport
from tests.support.tools import require_tool


def test_push_pull_shell(tmp_path):
    t = LocalTransport(workdir=str(tmp_path / "dev"))
    src = tmp_path / "a.txt"
    src.write_text("hello")
    t.push(src, f"{t.workdir()}/x/a.txt")
    rc, out, err = t.shell(f"cat {t.workdir()}/x/a.txt; echo oops >&2; exit 3")
    assert (rc, out, err) == (3, "hello", "oops\n")
    t.pull(f"{t.workdir()}/x/a.txt", tmp_path / "back" / "a.txt")
    assert (tmp_path / "back" / "a.txt").read_text() == "hello"
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "f").write_text("1")
    t.push(tmp_path / "tree", f"{t.workdir()}/tree")
    assert (tmp_path / "dev" / "tree" / "sub" / "f").read_text() == "1"


def test_missing_files_are_transport_errors(tmp_path):
    t = LocalTransport(workdir=str(tmp_path))
    with pytest.raises(TransportError, match="nope"):
        t.push(tmp_path / "nope", f"{tmp_path}/x")
    with pytest.raises(TransportError, match="nope"):
        t.pull(f"{tmp_path}/nope", tmp_path / "x")


def test_timeout_kills_the_process_group(tmp_path):
    t = LocalTransport(workdir=str(tmp_path))
    pidfile = tmp_path / "child.pid"
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="timed out after 1 s"):
        # the sleeping grandchild must die too, or a hung runner would outlive the harness
        t.shell(f"sh -c 'echo $$ > {pidfile}; sleep 30' & wait", timeout=1)
    assert time.monotonic() - t0 < 30  # ended by the timeout, not by the sleep's own 30 s
    pid = int(pidfile.read_text())
    status = Path(f"/proc/{pid}/status")

    def running() -> bool:  # gone, or a zombie waiting for an init that reaps slowly: either way it no longer runs
        try:
            return "\nState:\tZ" not in status.read_text()
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10  # a hang guard: the kill was sent before shell() returned
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running()


def test_cleanup_stays_inside_the_workdir(tmp_path):
    t = LocalTransport(workdir=str(tmp_path / "w"))
    (tmp_path / "w" / "run").mkdir(parents=True)
    t.cleanup(f"{tmp_path}/w/run")
    assert not (tmp_path / "w" / "run").exists()
    with pytest.raises(ValueError):
        t.cleanup(str(tmp_path))
    with pytest.raises(ValueError):
        t.cleanup(f"{tmp_path}/w/../../etc")


def test_local_info_is_a_host_snapshot():
    info = LocalTransport().info()
    assert info["abi"] == "x86_64" and info["emulated"] is False and info["transport"] == "local"
    assert info["cores"] == os.cpu_count() and info["cpu"] and info["os"] and info["devinfo_complete"]
    assert isinstance(info["freq_khz"], dict) and isinstance(info["temperatures_c"], dict)


def test_qemu_transport_sandbox_and_info(tmp_path):
    require_tool("qemu-aarch64")
    from device_runners.qemu import QemuTransport

    t = QemuTransport()
    sandbox = t.sandbox
    assert t.workdir().startswith(str(sandbox.resolve()))
    rc, out, _ = t.shell("echo ok")
    assert (rc, out) == (0, "ok\n")
    info = t.info()
    assert info["emulated"] is True and info["abi"] == "arm64-v8a" and "cortex-a76" in info["model"]
    assert info["qemu"].startswith("qemu-aarch64")
    t.close()
    assert not sandbox.exists(), "a sandbox the transport created is removed on close"


def test_qemu_missing_says_install_qemu_user(monkeypatch):
    from device_runners.qemu import QemuTransport
    from common.errors import DeviceError

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DeviceError, match="install Debian package qemu-user"):
        QemuTransport()


# What DEVINFO_SCRIPT prints on a Pixel 7 (Tensor G2: 4x A55, 2x A78, 2x X1), trimmed.
PIXEL_OUTPUT = """@@uname
Linux 5.10.157-android13 aarch64
@@hostname
localhost
@@os
@@online
8
@@cpuinfo
processor\t: 0
CPU implementer\t: 0x41
CPU part\t: 0xd05
processor\t: 1
CPU part\t: 0xd05
processor\t: 2
CPU part\t: 0xd05
processor\t: 3
CPU part\t: 0xd05
processor\t: 4
CPU part\t: 0xd41
processor\t: 5
CPU part\t: 0xd41
processor\t: 6
CPU part\t: 0xd44
processor\t: 7
CPU part\t: 0xd44
Hardware\t: Google Tensor G2
@@cpufreq
0 sched_pixel 1197000 300000 1803000 1
1 sched_pixel 1197000 300000 1803000 1
4 sched_pixel 2348000 400000 2348000 1
6 sched_pixel 500000 500000 2850000 0
@@thermal
BIG 41250
MID 39500
BIG 42000
battery 31
@@meminfo
MemTotal:        7869716 kB
MemAvailable:    3000000 kB
@@loadavg
5.10 4.90 4.80 3/2000 123
@@end
"""


def test_parse_devinfo_phone():
    info = parse_devinfo(PIXEL_OUTPUT)
    assert info["abi"] == "arm64-v8a" and info["cores"] == 8
    assert info["cpu"] == "4x Cortex-A55 + 2x Cortex-A78 + 2x Cortex-X1"
    assert info["governor"] == "sched_pixel" and info["freq_khz"]["4"] == 2348000 and info["freq_max_khz"]["6"] == 2850000
    assert info["cores_offline"] == [6]
    assert info["temperatures_c"] == {"BIG": 41.25, "MID": 39.5, "BIG#2": 42.0, "battery": 31.0}
    assert info["mem_total_kb"] == 7869716 and info["loadavg"] == [5.1, 4.9, 4.8] and info["devinfo_complete"]


def test_parse_devinfo_tolerates_a_cut_off_output():
    info = parse_devinfo(PIXEL_OUTPUT.split("@@thermal")[0])
    assert info["cores"] == 8 and info["temperatures_c"] == {} and info["devinfo_complete"] is False
    assert parse_devinfo("")["devinfo_complete"] is False


def test_devinfo_script_runs_under_busybox_style_sh(tmp_path):
    """The snippet is plain POSIX: dash (Debian's sh) must run it without a single error line."""
    import subprocess

    p = subprocess.run(["sh", "-c", DEVINFO_SCRIPT], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stderr == ""
    assert parse_devinfo(p.stdout)["devinfo_complete"]


def test_local_info_read_in_process_matches_what_the_shell_script_reads():
    from device_runners.devinfo import DEVINFO_SCRIPT, devinfo_text_here, parse_devinfo
    from device_runners.local import run_shell

    here = parse_devinfo(devinfo_text_here())
    rc, out, _ = run_shell(DEVINFO_SCRIPT, 30)
    shell = parse_devinfo(out)
    assert rc == 0
    live = {"freq_khz", "loadavg", "mem_available_kb", "temperatures_c"}  # these move between two reads
    assert {k: v for k, v in here.items() if k not in live} == {k: v for k, v in shell.items() if k not in live}
    assert here.keys() == shell.keys() and here["devinfo_complete"]
