"""`harness run --device ...` as a user runs it, through the catalog and the remote transports: a phone profile via
the adb stand-in, and a board from the user's own catalog file via a real sshd. One stored RunRecord each."""

from __future__ import annotations

import os
import pytest

from tests.support.adb_standin import AdbStandin
from tests.support.tools import require_tool
from harness.run import measure
from harness.store.db import ResultsStore
from tests.support.sshd_fixture import Sshd, require_sshd

FIRST_CPU = str(min(os.sched_getaffinity(0)))  # CPU 0 may be outside a cpuset


def test_run_on_pixel7_profile_through_adb(tiny_export, tmp_path, monkeypatch):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    results, res = tiny_export
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")
    with AdbStandin(tmp_path / "phone", serial="28121FDH2000AB") as phone:
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(phone.port))
        monkeypatch.setenv("HARNESS_PIXEL7_SERIAL", phone.serial)
        # The profile pins cores 6-7, which this 2-core machine lacks: pin core 0 like a user would override.
        rec = measure.run(measure.RunRequest.of(program=res.program, device="pixel7", threads=1, affinity=FIRST_CPU, warmup=1,
                                         iterations=3, task="rotten_tomatoes", samples=4, timeout=600), results)
        left = sorted(p.relative_to(phone.sandbox).as_posix() for p in (phone.sandbox / "harness/runs").rglob("*"))
    assert rec.error is None and rec.status in ("ok", "invalid"), rec.error
    assert rec.transport == "adb" and rec.device_abi == "arm64-v8a" and rec.affinity == FIRST_CPU
    assert rec.emulated  # the stand-in runs the runner under QEMU: its timings must never pass for a phone's
    info = rec.device_info_before
    assert (info["model"], info["os"], info["serial"]) == ("Pixel 7", "Android 14", phone.serial)
    assert info["battery_temp_c"] == pytest.approx(31.2)
    assert rec.accuracy.n == 4 and rec.accuracy.agreement_fp32 == 1.0
    assert ResultsStore(results).get(rec.run_id).device == "pixel7"
    assert left == []  # the run's scratch files were removed from the phone


def test_run_on_a_user_defined_ssh_board(tiny_export, tmp_path, monkeypatch):
    require_sshd()
    results, res = tiny_export
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with Sshd(tmp_path / "sshd") as sshd:
        catalog = tmp_path / "lab.toml"
        catalog.write_text(f'[board]\nabi = "x86_64"\ntransport = "ssh"\naddress = "{sshd.address}"\nthreads = 1\n'
                           f'workdir = "{tmp_path / "board"}"\noptions = {{ key_file = "{sshd.key}" }}\n')
        rec = measure.run(measure.RunRequest.of(program=res.program, device="board", devices_file=catalog, warmup=1,
                                         iterations=5, task="rotten_tomatoes", samples=4), results)
    assert rec.error is None and rec.status in ("ok", "invalid"), rec.error
    assert rec.transport == "ssh" and rec.device_info_before["address"] == sshd.address
    assert len(rec.latencies_ms) >= 5 and rec.accuracy.agreement_fp32 == 1.0
    assert not [d for d in (tmp_path / "board" / "runs").iterdir() if d.name.endswith(rec.run_id)]


def test_devices_check_says_yes_for_live_devices(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from harness.commands.devices import devices_command

    require_sshd()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")
    with Sshd(tmp_path / "sshd") as sshd, AdbStandin(tmp_path / "phone", serial="28121FDH2000AB") as phone:
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(phone.port))
        catalog = tmp_path / "lab.toml"
        catalog.write_text(f'[board]\nabi = "x86_64"\ntransport = "ssh"\naddress = "{sshd.address}"\n'
                           f'options = {{ key_file = "{sshd.key}" }}\n')
        result = CliRunner().invoke(devices_command, ["--check", "--devices-file", str(catalog), "--timeout", "20"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert f"yes: {sshd.address} answers" in rows["board"]
    assert "yes: adb device 28121FDH2000AB answers" in rows["pixel7"]  # the only attached device
