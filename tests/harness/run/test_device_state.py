"""Device state on the phone-like adb stand-in (mksh + toybox as uid 2000, Pixel-like /sys, some files unreadable):
what is read, the throttling it catches mid-run, the thermal gate, the model check, cluster affinities, and the
faults (full disk, phone unplugged mid-run) stored as failed records with the device work folder cleaned."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.support.adb_standin import AdbStandin, phone_like_available
from tests.support.tools import require_tool
from device_runners.adb import AdbTransport
from device_runners.base import TransportError
from common.errors import BadInput, DeviceError
from harness.run import device_state, measure
from harness.store.db import ResultsStore


@pytest.fixture(autouse=True)
def no_real_adb_server(monkeypatch):
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")


def _phone_like():
    if not phone_like_available():
        msg = "the phone-like stand-in needs root, unshare, mksh and toybox (scripts/system-deps.sh)"
        if os.environ.get("HARNESS_REQUIRE_DEVICES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def phone(tmp_path, monkeypatch):
    _phone_like()
    with AdbStandin(tmp_path / "phone", serial="28121FDH2000AB", model="Pixel 7") as standin:
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(standin.port))
        monkeypatch.setenv("HARNESS_PIXEL7_SERIAL", standin.serial)
        yield standin


def test_shell_is_android_like(phone):
    rc, out, _ = AdbTransport(port=phone.port).shell('id -u; echo $KSH_VERSION; ls /tmp 2>&1; echo "$TMPDIR"; pwd')
    uid, ksh, tmp, tmpdir, cwd = out.splitlines()
    assert (rc, uid, tmpdir, cwd) == (0, "2000", "/data/local/tmp", "/")
    assert "MIRBSD KSH" in ksh and "No such file" in tmp


def test_state_reads_caps_time_in_state_thermal_battery_screen(phone):
    state = device_state.read_state(AdbTransport(port=phone.port))
    pol = state["policies"]
    assert sorted(pol) == ["policy0", "policy4", "policy6"]
    assert pol["policy6"]["cpus"] == [6, 7] and pol["policy6"]["cap_khz"] == 2850000
    assert pol["policy6"]["governor"] == "sched_pixel" and pol["policy6"]["time_in_state"]["2850000"] == 400
    assert pol["policy0"]["time_in_state"] is None  # denied to the shell user: recorded, not fatal
    assert "cpufreq/policy0/stats/time_in_state" in state["unreadable"]
    assert any("(TPU)" in u for u in state["unreadable"]) and "TPU" not in state["thermal_c"]
    assert state["thermal_c"]["VIRTUAL-SKIN"] == pytest.approx(33.5)
    assert state["battery"] == {"temp_c": 31.2, "level": 87, "charging": True, "status": "charging"}
    assert state["screen"] == "on" and state["complete"] is True


def _when_runner_starts(phone, action, delay=0.3):
    seen = len(phone.commands)

    def watch():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any("harness_runner" in c for c in phone.commands[seen:]):
            time.sleep(0.05)
        time.sleep(delay)
        action()
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def _run(results, program, progress=lambda line: None, **kw):
    args = dict(program=program, device="pixel7", threads=1, affinity="little", warmup=0, iterations=3,
                samples=2, timeout=600)
    args.update(kw)
    return measure.run(measure.RunRequest.of(**args), results, progress)


def test_cap_dropped_and_restored_mid_run_is_throttled(phone, tiny_export, monkeypatch):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    results, res = tiny_export
    monkeypatch.setattr(device_state, "SAMPLE_INTERVAL_S", 0.3)

    def cap_then_restore():
        # event-driven, not timed: the cap is restored once the sampler has read it lowered (a light-state read
        # served after the drop, twice: the first may have started just before it), however slowly a loaded core serves the stand-in's commands
        seen = len(phone.commands)
        phone.set_cap("big", 1426000)
        deadline = time.monotonic() + 120
        while sum("scaling_max_freq" in c and "scaling_cur_freq" in c for c in phone.commands[seen:]) < 2:
            assert time.monotonic() < deadline, "the sampler never read the lowered cap"
            time.sleep(0.05)
        phone.set_cap("big", 2850000)
    watcher = _when_runner_starts(phone, cap_then_restore)
    rec = _run(results, res.program, min_seconds=3.0)
    watcher.join()
    assert rec.error is None, rec.error
    assert "throttled" in rec.flags and rec.status == "invalid"
    evidence = rec.device_info_after["during"]["throttle_evidence"]
    assert any(e.startswith("policy6 (cpus 6-7) cap 2850 -> 1426 MHz at ") for e in evidence), evidence
    assert rec.device_info_after["state"]["policies"]["policy6"]["cap_khz"] == 2850000  # restored by the end
    assert rec.affinity == "0-3"  # --affinity little, from the profile's clusters


def test_time_shifted_to_low_frequencies_is_throttled(phone, tiny_export):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    results, res = tiny_export
    (phone.policy("little") / "stats/time_in_state").chmod(0o644)
    watcher = _when_runner_starts(phone, lambda: phone.add_time_in_state("little", 300000, 500))
    rec = _run(results, res.program, min_seconds=1.0)
    watcher.join()
    assert rec.error is None, rec.error
    assert "throttled" in rec.flags
    assert any("policy0 (cpus 0-3) spent 100% of the run below 1623 MHz" in e
               for e in rec.device_info_after["during"]["throttle_evidence"])


def test_quiet_run_is_not_throttled(phone, tiny_export):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    results, res = tiny_export
    rec = _run(results, res.program, iterations=10)
    assert rec.error is None and "throttled" not in rec.flags, (rec.error, rec.flags)
    assert rec.device_info_before["state"]["battery"]["charging"] is True


def test_thermal_gate_waits_then_passes(phone, tiny_export, monkeypatch):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    results, res = tiny_export
    monkeypatch.setattr(device_state, "GATE_POLL_S", 0.2)
    phone.set_battery(39.0)

    def progress(line):  # event-driven, not timed: the phone cools once the gate has read it hot and says it waits
        if line.startswith("cooling down: battery 39.0 C > 35 C"):
            phone.set_battery(34.0)
    rec = _run(results, res.program, progress, max_start_temp=35, cooldown=30)
    assert rec.error is None, rec.error
    gate = rec.device_info_before["thermal_gate"]
    assert gate["passed"] is True and gate["waited_s"] > 0 and len(gate["readings"]) >= 2 and gate["limit_c"] == 35
    assert gate["readings"][0]["battery"] == 39.0 and gate["readings"][-1]["battery"] == 34.0
    assert gate["readings"][-1]["VIRTUAL-SKIN"] == pytest.approx(33.5)


def test_thermal_gate_that_never_settles_is_a_failed_run(phone, tiny_export, monkeypatch):
    results, res = tiny_export
    monkeypatch.setattr(device_state, "GATE_POLL_S", 0.2)
    phone.set_temp("VIRTUAL-SKIN", 41.5)
    earlier = len(ResultsStore(results).query() if hasattr(ResultsStore(results), "query") else [])
    rec = _run(results, res.program, max_start_temp=35, cooldown=1)
    assert rec.status == "failed"
    assert rec.error == "device pixel7: VIRTUAL-SKIN 41.5 °C still above --max-start-temp 35 after --cooldown 1 s"
    assert ResultsStore(results).get(rec.run_id).status == "failed"
    assert earlier >= 0


def test_model_mismatch_is_refused_in_one_line(tmp_path, tiny_export, monkeypatch):
    _phone_like()
    results, res = tiny_export
    with AdbStandin(tmp_path / "p8", serial="P8SERIAL", model="Pixel 8") as phone:
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(phone.port))
        monkeypatch.delenv("HARNESS_PIXEL7_SERIAL", raising=False)
        before = len(ResultsStore(results).runs())
        with pytest.raises(DeviceError) as e:  # a set-up refusal (issue #12): one line, exit 2, nothing stored
            _run(results, res.program)
        assert str(e.value) == ("device pixel7 expects model 'Pixel 7' but P8SERIAL reports 'Pixel 8': choose the "
                                "right --serial/--address or profile, or pass --no-check-model")
        assert len(ResultsStore(results).runs()) == before
        assert not list(phone.sandbox.rglob("*.pte"))  # refused before anything was pushed
        rec = _run(results, res.program, check_model=False)
        assert rec.error is None, rec.error


def test_cluster_the_device_lacks_is_bad_input(tiny_export):
    results, res = tiny_export
    with pytest.raises(BadInput, match=r"device host has no mid cluster \(its profile lists no clusters"):
        _run(results, res.program, device="host", affinity="mid")
    with pytest.raises(BadInput, match=r"--affinity 'fast' is neither a cluster of pixel7 \(big = 6-7, mid = 4-5"):
        _run(results, res.program, affinity="fast")


def test_full_disk_keeps_adbds_reason_and_cleans_up(tmp_path, tiny_export, monkeypatch):
    _phone_like()
    results, res = tiny_export
    with AdbStandin(tmp_path / "full", serial="28121FDH2000AB", model="Pixel 7", max_push_bytes=4096) as phone:
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(phone.port))
        t = AdbTransport(port=phone.port)
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * 10_000)
        with pytest.raises(TransportError) as e:
            t.push(big, "/data/local/tmp/harness/big.bin")
        assert "refused by the device: write failed: No space left on device" in str(e.value)
        assert "connection lost" not in str(e.value)
        rec = _run(results, res.program)
        assert rec.status == "failed" and "No space left on device" in rec.error, rec.error
        assert list((phone.sandbox / "harness" / "runs").glob("*")) == []


def test_push_to_tmp_says_read_only_not_unplugged(phone, tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"1")
    with pytest.raises(TransportError, match=r"refused by the device: couldn't create file /tmp/harness/f.bin: "
                                             r"Read-only file system"):
        AdbTransport(port=phone.port).push(f, "/tmp/harness/f.bin")


def test_phone_unplugged_mid_run_is_failed_and_earlier_runs_kept(tmp_path, tiny_export, monkeypatch):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    _phone_like()
    results, res = tiny_export
    standin = AdbStandin(tmp_path / "gone", serial="28121FDH2000AB", model="Pixel 7")
    standin.start()
    try:
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(standin.port))
        monkeypatch.setenv("HARNESS_PIXEL7_SERIAL", standin.serial)
        first = _run(results, res.program)
        assert first.error is None, first.error
        watcher = _when_runner_starts(standin, standin.stop, delay=0.5)
        rec = _run(results, res.program, min_seconds=30.0)
        watcher.join()
    finally:
        standin.stop()
    assert rec.status == "failed" and "connection lost" in rec.error and "\n" not in rec.error
    store = ResultsStore(results)
    assert store.get(first.run_id).status in ("ok", "invalid") and store.get(rec.run_id).status == "failed"
