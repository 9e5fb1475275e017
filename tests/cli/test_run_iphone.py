"""`harness run --device iphone15` end to end against the iPhone stand-in (tests/support/ios_standin.py: the pymobiledevice3
API over an app container in a folder, the host's native runner as the app), its faults, `harness devices --check`
for iPhones, and the `ios-simulator` transport against a fake `xcrun`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
import plistlib
from pathlib import Path

import pytest

from harness.store.db import ResultsStore
from tests.support.ios_standin import make_device
from tests.support.paths import REPO

SERIAL = "00008120-001A2B3C4D5E6F70"


@pytest.fixture(scope="module")
def shared(tmp_path_factory, bundle, tiny):
    """One results folder for the module (the tiny program, which has no manifest, is inspected once per machine)."""
    return tmp_path_factory.mktemp("results"), tiny[0]


@pytest.fixture
def phone(tmp_path):
    return make_device(tmp_path / "phone")


def harness(phone: Path, results: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "HARNESS_IOS_APP"}
    full.update(HARNESS_IOS_SERVICES="tests.support.ios_standin", HARNESS_IOS_STANDIN=str(phone),
                HARNESS_IPHONE15_SERIAL=SERIAL, PYTHONPATH=str(REPO))
    full.update(env)
    return subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(results), *args],
                          capture_output=True, text=True, env=full, timeout=120)


def run_iphone(phone, shared, *extra, **env):
    results, pte = shared
    return harness(phone, results, "run", "--program", str(pte), "--device", "iphone15", "--warmup", "1",
                   "--iterations", "3", *extra, **env)


def stored(shared, proc) -> object:
    ids = re.findall(r"run ([0-9a-f]{12})", proc.stdout + proc.stderr)
    assert ids, proc.stdout + proc.stderr
    return ResultsStore(shared[0]).get(ids[-1])


def run_files(phone: Path) -> list[str]:
    runs = phone / "containers" / "org.harness.runner" / "Documents" / "harness" / "runs"
    return sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*")) if runs.exists() else []


def error_lines(proc) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("…")]


def test_run_on_iphone15_end_to_end(phone, shared):
    proc = run_iphone(phone, shared, "--min-seconds", "1.5")  # long enough for sysmontap to see the loaded program
    assert proc.returncode == 0, proc.stderr
    rec = stored(shared, proc)
    assert rec.status in ("ok", "invalid") and rec.error is None
    assert rec.transport == "ios" and rec.device == "iphone15" and not rec.emulated
    assert len(rec.latencies_ms) >= 3
    before, after = rec.device_info_before, rec.device_info_after
    assert (before["model"], before["product_type"], before["chip"], before["os"], before["serial"]) == (
        "iPhone 15", "iPhone15,4", "A16 Bionic", "iOS 17.5", SERIAL)
    assert before["battery_temp_c"] == pytest.approx(31.2)
    assert (after["thermal_state_at_launch"], after["thermal_state"]) == ("nominal", "fair")
    assert rec.memory.phys_footprint_mb > 1  # sysmontap's samples of the running app
    assert "physFootprint" in rec.memory.phys_footprint_method and "not RSS" in rec.memory.phys_footprint_method
    assert run_files(phone) == []  # the run's files are gone from the app's Documents
    assert f"physFootprint {rec.memory.phys_footprint_mb} MB" in proc.stdout  # the summary shows it, labelled


@pytest.mark.parametrize("fault, reason", [
    ("crash", r"runner crashed \(Segmentation fault\)"),
    ("jetsam", r"exited without writing a result.*watchdog or memory limit"),
])
def test_app_crash_or_kill_is_a_failed_run(phone, shared, fault, reason):
    make_device(phone, fault=fault)
    proc = run_iphone(phone, shared)
    assert proc.returncode == 3, proc.stderr
    rec = stored(shared, proc)
    assert rec.status == "failed" and re.search(reason, rec.error), rec.error
    assert run_files(phone) == []


def test_timeout_kills_the_app(phone, shared):
    make_device(phone, fault="hang")
    proc = run_iphone(phone, shared, "--timeout", "2", "--min-seconds", "0", "--warmup-seconds", "0")
    assert proc.returncode == 3
    rec = stored(shared, proc)
    assert rec.status == "failed" and "still running after 2 s: killed it" in rec.error
    assert run_files(phone) == []
    assert subprocess.run(["pgrep", "-f", "sleep 3600"], capture_output=True).returncode == 1


def test_unplugged_mid_run_then_the_next_run_sweeps_its_files(phone, shared):
    make_device(phone, fault="unplug")
    proc = run_iphone(phone, shared)
    assert proc.returncode == 3
    rec = stored(shared, proc)
    assert rec.status == "failed" and "went away" in rec.error, rec.error
    assert run_files(phone)  # nobody could clean up without the cable...
    make_device(phone)  # ...plugged in again
    again = run_iphone(phone, shared)
    assert again.returncode == 0, again.stderr
    assert run_files(phone) == []  # ...the next connection does


def test_full_device_is_a_failed_run(phone, shared):
    make_device(phone, free_bytes=1000)  # the tiny program is 9 kB
    proc = run_iphone(phone, shared)
    assert proc.returncode == 3
    rec = stored(shared, proc)
    assert rec.status == "failed" and f"iPhone {SERIAL} is full" in rec.error, rec.error
    assert run_files(phone) == []


@pytest.mark.parametrize("fields, env, message", [
    ({"paired": False}, {}, f"iPhone {SERIAL} is not paired with this computer.*tap Trust"),
    ({"apps": {}}, {}, r"harness app \(org.harness.runner\) is not installed.*--app Harness.ipa"),
    ({}, {"HARNESS_IPHONE15_SERIAL": "00008110-FFFF"}, rf"iPhone 00008110-FFFF is not attached \(attached: {SERIAL}\)"),
])
def test_set_up_faults_are_one_line_and_store_nothing(phone, shared, fields, env, message):
    make_device(phone, **fields)
    proc = run_iphone(phone, shared, **env)
    lines = error_lines(proc)
    assert proc.returncode == 2 and len(lines) == 1 and re.search(message, lines[0]), proc.stderr
    assert "Traceback" not in proc.stderr


def make_ipa(path: Path, version: str = "2", platform: str = "iPhoneOS", signed: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Payload/HarnessRunner.app/Info.plist", plistlib.dumps({
            "CFBundleIdentifier": "org.harness.runner", "CFBundleVersion": version, "MinimumOSVersion": "16.0",
            "CFBundleSupportedPlatforms": [platform]}))
        z.writestr("Payload/HarnessRunner.app/HarnessRunner", b"\xcf\xfa\xed\xfe")
        if signed:
            z.writestr("Payload/HarnessRunner.app/_CodeSignature/CodeResources", b"<plist/>")
            z.writestr("Payload/HarnessRunner.app/embedded.mobileprovision", b"profile")
    return path


def test_an_ipa_of_another_version_is_installed_before_the_run(phone, shared, tmp_path):
    ipa = make_ipa(tmp_path / "Harness.ipa", version="7")
    proc = run_iphone(phone, shared, "--app", str(ipa))  # `harness run --app Harness.ipa`, as docs/devices.md says
    assert proc.returncode == 0, proc.stderr
    assert json.loads((phone / "device.json").read_text())["devices"][0]["apps"]["org.harness.runner"] == {
        "CFBundleVersion": "7"}
    assert stored(shared, proc).device_info_before["app_version"] == "7"


@pytest.mark.parametrize("kw, message", [
    ({"platform": "iPhoneSimulator"}, r"is built for iPhoneSimulator, not iPhoneOS"),
    ({"signed": False}, r"is not signed for a device.*sign it with your team"),
])
def test_an_ipa_this_phone_cannot_install_is_refused(phone, shared, tmp_path, kw, message):
    make_device(phone, apps={})
    ipa = make_ipa(tmp_path / "Harness.ipa", **kw)
    proc = harness(phone, shared[0], "devices", "install", "iphone15", "--app", str(ipa))
    lines = error_lines(proc)
    assert proc.returncode == 2 and len(lines) == 1 and re.search(message, lines[0]), proc.stderr
    assert json.loads((phone / "device.json").read_text())["devices"][0]["apps"] == {}


def test_devices_install_puts_the_app_on_the_phone(phone, shared, tmp_path):
    make_device(phone, apps={})
    proc = harness(phone, shared[0], "devices", "install", "iphone15", "--app", str(make_ipa(tmp_path / "H.ipa")))
    assert proc.returncode == 0, proc.stderr
    assert "version 2" in proc.stdout
    assert json.loads((phone / "device.json").read_text())["devices"][0]["apps"]["org.harness.runner"]


CHECK_CASES = [  # (what the phone lacks, the fix --check must name)
    ({"paired": False}, "pymobiledevice3 lockdown pair"),
    ({"developer_mode": False}, "Settings > Privacy & Security > Developer Mode"),
    ({"ddi": False}, "pymobiledevice3 mounter auto-mount"),
    ({"tunnel": False}, "sudo python3 -m pymobiledevice3 remote tunneld"),
    ({"apps": {}}, "harness devices install DEVICE --app Harness.ipa"),
    ({}, "iPhone 15 (iOS 17.5), app 1"),
]


def test_devices_check_says_what_is_missing_and_the_fix(phone, shared, tmp_path):
    from tests.support.ios_standin import make_devices, phone as a_phone

    serials = [f"00008120-00000000000000{i:02d}" for i in range(len(CHECK_CASES))]
    make_devices(phone, [a_phone(s, **fields) for s, (fields, _) in zip(serials, CHECK_CASES)])
    catalog = tmp_path / "phones.toml"
    catalog.write_text("".join(f'[phone{i}]\nabi = "arm64-v8a"\ntransport = "ios"\nserial = "{s}"\n\n'
                               for i, s in enumerate([*serials, "00008120-NOT-ATTACHED"])))
    proc = harness(phone, shared[0], "devices", "--check", "--format", "json", "--devices-file", str(catalog))
    assert proc.returncode == 0, proc.stderr
    rows = {d["name"]: d for d in json.loads(proc.stdout)}
    for i, (fields, fix) in enumerate(CHECK_CASES):
        row = rows[f"phone{i}"]
        assert fix in row["reason"] and row["reachable"] == (not fields), row
    assert not rows["phone6"]["reachable"] and "00008120-NOT-ATTACHED is not attached" in rows["phone6"]["reason"]


FAKE_XCRUN = r"""#!/usr/bin/env python3
# A stand-in for `xcrun simctl` on Linux: the app container is a folder; "launch" runs the host runner in it.
import json, os, shlex, subprocess, sys
root = os.environ["FAKE_SIM_ROOT"]
args = sys.argv[2:]
open(os.path.join(root, "calls.log"), "a").write(" ".join(sys.argv[1:]) + "\n")
if args[0] == "get_app_container":
    print(os.path.join(root, "data"))
elif args[0] == "install":
    pass
elif args[0] == "list":
    print(json.dumps({"devices": {"com.apple.CoreSimulator.SimRuntime.iOS-18-2": [
        {"udid": "SIM-1", "name": "iPhone 16", "state": "Booted"}]}}))
elif args[0] == "launch":
    app_args = args[args.index("org.harness.runner") + 1:]
    runner = shlex.split(os.environ["FAKE_SIM_RUNNER"])
    sys.exit(subprocess.run(runner + app_args, cwd=os.path.join(root, "data", "Documents")).returncode)
"""


def test_ios_simulator_transport_over_a_fake_xcrun(tmp_path, monkeypatch, bundle, shared):
    from device_runners.launch import bundle_command
    from harness.run import measure

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "xcrun").write_text(FAKE_XCRUN)
    (bin_dir / "xcrun").chmod(0o755)
    (tmp_path / "sim" / "data").mkdir(parents=True)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SIM_ROOT", str(tmp_path / "sim"))
    monkeypatch.setenv("FAKE_SIM_RUNNER", bundle_command(str(bundle), "x86_64", []))
    monkeypatch.setenv("HARNESS_IOS_APP", str(tmp_path / "HarnessRunner.app"))
    rec = measure.run(measure.RunRequest.of(program=shared[1], device="ios-simulator", warmup=1, iterations=3),
                      shared[0])
    assert rec.error is None and rec.transport == "ios-simulator", rec.error
    assert rec.emulated and "emulated" in rec.flags
    assert rec.device_info_before["model"] == "iOS Simulator (iPhone 16)" and rec.device_info_before["os"] == "iOS 18.2"
    calls = (tmp_path / "sim" / "calls.log").read_text()
    assert "simctl install booted" in calls and "launch --console-pty --terminate-running-process booted" in calls
    assert not list((tmp_path / "sim" / "data" / "Documents" / "harness" / "runs").iterdir())


def test_ctrl_c_stops_the_app_and_stores_the_run_interrupted(phone, shared):
    import signal
    import time

    make_device(phone, fault="hang")
    results, pte = shared
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_IOS_APP"}
    env.update(HARNESS_IOS_SERVICES="tests.support.ios_standin", HARNESS_IOS_STANDIN=str(phone),
               HARNESS_IPHONE15_SERIAL=SERIAL, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "--results", str(results), "run", "--program",
                             str(pte), "--device", "iphone15", "--iterations", "3"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list((phone / "containers").rglob("inputs.bin")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the app is running
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    rec = stored(shared, subprocess.CompletedProcess([], 130, out, err))
    assert rec.status == "interrupted"
    assert run_files(phone) == []
    assert subprocess.run(["pgrep", "-f", "sleep 3600"], capture_output=True).returncode == 1


def test_iphone_profiles_resolve_their_serial_and_contact_nothing(monkeypatch):
    from device_runners.catalog import TRANSPORTS, get_profile, make_transport
    from device_runners.ios.device import IosTransport

    monkeypatch.setenv("HARNESS_IPHONE16PRO_SERIAL", "00008140-0001")
    p = get_profile("iphone16pro")
    assert (p.transport, p.model, p.serial, p.abi) == ("ios", "iPhone 16 Pro", "00008140-0001", "arm64-v8a")
    assert {"ios", "ios-simulator"} <= set(TRANSPORTS)
    t = make_transport(p)
    assert isinstance(t, IosTransport) and t.serial == "00008140-0001" and t._loop is None  # nothing contacted yet
    assert t.shell("cat /proc/cpuinfo")[0] == 127  # no shell on iOS, and no connection needed to say so
    t.close()
    probe = "import sys, harness.cli, device_runners.catalog; print('pymobiledevice3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ,
                         PYTHONPATH=str(REPO))).stdout.strip()
    assert out == "False"  # imported only when an iPhone is used: the CLI starts fast
