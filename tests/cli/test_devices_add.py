"""`harness devices add` reads the attached (stand-in) phone and writes a profile that then runs; `devices --check`
starts the adb server once and quietly; `devices --format json`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from tests.support.adb_standin import AdbStandin
from tests.support.tools import require_tool
from tests.support.sshd_fixture import free_port


def _cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), ADBUTILS_ADB_PATH="/bin/false")


def test_add_from_the_phone_writes_a_profile_that_runs(tmp_path, env, tiny_export):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    results, res = tiny_export
    with AdbStandin(tmp_path / "phone", serial="28121FDH2000AB", model="Pixel 7") as phone:
        env["ANDROID_ADB_SERVER_PORT"] = str(phone.port)
        p = _cli("devices", "add", "myphone", "--adb", env=env, timeout=120)
        assert p.returncode == 0, p.stderr
        catalog = tmp_path / "config" / "harness" / "devices.toml"
        prof = tomllib.loads(catalog.read_text())["myphone"]
        assert prof["model"] == "Pixel 7" and prof["abi"] == "arm64-v8a" and prof["transport"] == "adb"
        if phone.phone_like:  # the Pixel-like /sys: three clusters by cpuinfo_max_freq
            assert prof["clusters"] == {"little": "0-3", "mid": "4-5", "big": "6-7"}
            assert prof["affinity"] == "big" and prof["threads"] == 2 and "GS201" in prof["description"]
        again = _cli("devices", "add", "myphone", "--adb", env=env, timeout=120)
        assert again.returncode != 0 and "already in" in again.stderr and "--replace" in again.stderr
        # big (6-7) does not exist on this 2-core machine: little (0-3) holds cores 0 and 1
        run = _cli("--results", str(results), "run", "--program", str(res.program), "--device", "myphone",
                   "--affinity", "little", "--threads", "1", "--iterations", "3", "--warmup", "0", env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "on myphone" in run.stdout and "@ cpus 0-3" in run.stdout


def test_add_needs_exactly_one_transport(env):
    p = _cli("devices", "add", "x", env=env)
    assert p.returncode != 0 and p.stderr.strip().splitlines()[-1].endswith(
        "give exactly one of --adb [SERIAL] or --ssh user@host")
    assert "Traceback" not in p.stderr


def test_check_starts_the_adb_server_once_and_quietly(tmp_path, env):
    adb = shutil.which("adb")
    if adb is None:
        pytest.skip("Debian's adb not installed (scripts/system-deps.sh)")
    log = tmp_path / "adb.log"
    wrapper = tmp_path / "bin" / "adb"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {adb} "$@"\n')
    wrapper.chmod(0o755)
    port = free_port()
    env.update(ANDROID_ADB_SERVER_PORT=str(port), ADBUTILS_ADB_PATH=str(wrapper),
               HOME=str(tmp_path))  # the real adb keeps its key and logs under $HOME/.android
    p = _cli("devices", "--check", "--timeout", "20", env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    starts = [line for line in log.read_text().splitlines() if "start-server" in line]
    assert starts == [f"-P {port} start-server"]
    assert "daemon" not in p.stdout + p.stderr and "ACK" not in p.stdout + p.stderr
    rows = {line.split()[0]: line for line in p.stdout.splitlines() if line.strip()}
    assert "found none" in rows["pixel7"] and "found none" in rows["pixel8pro"]
    assert "kill-server" in log.read_text()  # the server it started is gone with the command
    r = subprocess.run(["ss", "-ltn", f"sport = :{port}"], capture_output=True, text=True)
    assert str(port) not in r.stdout


def test_devices_json_for_scripts(env):
    p = _cli("devices", "--format", "json", env=env)
    assert p.returncode == 0, p.stderr
    by_name = {d["name"]: d for d in json.loads(p.stdout)}
    assert by_name["pixel7"]["model"] == "Pixel 7" and by_name["pixel7"]["clusters"]["big"] == "6-7"
    assert by_name["pixel7"]["workdir"] == "/data/local/tmp/harness"
    assert by_name["android-emulator"]["abi"] == "x86_64"


def test_android_emulator_profile_runs_the_x86_64_bundle(tmp_path, env, tiny_export):
    """What the CI emulator job runs, against a stand-in x86_64 "emulator": the self-contained x86_64 bundle
    started through its own loader, as uid 2000 under mksh, with no /tmp (phone-like stand-in)."""
    results, res = tiny_export
    with AdbStandin(tmp_path / "emu", serial="emulator-5554", model="sdk_gphone64_x86_64", abi="x86_64") as emu:
        env["ANDROID_ADB_SERVER_PORT"] = str(emu.port)
        check = _cli("devices", "--check", env=env, timeout=120)
        assert "yes: adb device emulator-5554 answers" in check.stdout, check.stdout + check.stderr
        run = _cli("--results", str(results), "run", "--program", str(res.program), "--device", "android-emulator",
                   "--timing", "quick", env=env)
        assert run.returncode == 0, run.stdout + run.stderr
        # a tiny program under the quick preset's time floor: thousands of samples, nothing throttled, so "ok"
        # (emulated is a warning the flags show, not a reason to call the run invalid)
        assert "ok run" in run.stdout, run.stdout
        assert re.search(r"flags: .*emulated", run.stdout)  # ro.kernel.qemu=1: an emulator's timings are never a phone's
        ran = [c for c in emu.commands if "harness_runner" in c and "--program" in c]  # not the bundle's hashing
        assert ran and "ld-linux-x86-64.so.2 --library-path" in ran[0] and "qemu" not in ran[0]
