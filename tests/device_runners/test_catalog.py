"""The device catalog: built-in profiles, the user's file, bad files, name and address resolution, the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from device_runners.catalog import resolve_affinity, get_profile, load_catalog, make_transport, reachable
from harness.commands.devices import devices_command
from common.errors import BadInput


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No developer's own catalog or device variables leak into these tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("HARNESS_RPI5", "HARNESS_PIXEL7_SERIAL", "HARNESS_PIXEL8PRO_SERIAL", "HARNESS_GALAXY_S24_SERIAL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "config" / "harness" / "devices.toml"


def test_builtin_profiles_describe_the_devices_we_target():
    cat = load_catalog()
    assert {"host", "emu-arm64", "pixel7", "pixel8pro", "galaxy-s24", "rpi5"} <= set(cat)
    assert (cat["host"].abi, cat["host"].transport) == ("x86_64", "local")
    assert (cat["emu-arm64"].abi, cat["emu-arm64"].transport) == ("arm64-v8a", "qemu")
    assert (cat["pixel7"].transport, cat["pixel7"].affinity, cat["pixel7"].threads) == ("adb", "big", 2)
    assert cat["pixel7"].clusters == {"big": "6-7", "mid": "4-5", "little": "0-3"} and cat["pixel7"].model == "Pixel 7"
    assert resolve_affinity(cat["pixel8pro"], cat["pixel8pro"].affinity) == "8" and cat["pixel8pro"].threads == 1
    assert all(p.model for p in cat.values() if p.transport == "adb")  # a run checks the attached phone's model
    assert cat["rpi5"].transport == "ssh" and cat["rpi5"].threads == 4 and cat["rpi5"].address_env == "HARNESS_RPI5"
    assert all(p.workdir.startswith("/data/local/tmp") for p in cat.values() if p.transport == "adb")


def test_user_file_adds_a_device_and_overrides_fields(isolated_home, tmp_path):
    isolated_home.parent.mkdir(parents=True)
    isolated_home.write_text('[pixel7]\nthreads = 1\naffinity = "7"\n\n'
                             '[jetson]\nabi = "arm64-v8a"\ntransport = "ssh"\naddress = "me@jetson:2222"\n')
    extra = tmp_path / "lab.toml"
    extra.write_text('[jetson]\nthreads = 6\noptions = { key_file = "/keys/jetson" }\n')
    cat = load_catalog(extra)
    assert (cat["pixel7"].threads, cat["pixel7"].affinity, cat["pixel7"].transport) == (1, "7", "adb")
    assert (cat["jetson"].address, cat["jetson"].threads) == ("me@jetson:2222", 6)
    assert cat["jetson"].options == {"key_file": "/keys/jetson"}


def test_bad_toml_names_the_file_and_line(isolated_home):
    isolated_home.parent.mkdir(parents=True)
    isolated_home.write_text('[mine]\nabi = "arm64-v8a"\ntransport = adb\n')
    with pytest.raises(BadInput, match=r"devices\.toml: not valid TOML: .*line 3"):
        load_catalog()


@pytest.mark.parametrize("body, match", [
    ('[x]\nabi = "riscv64"\ntransport = "ssh"\n', "abi 'riscv64' is not one of"),
    ('[x]\nabi = "x86_64"\ntransport = "telnet"\n', "transport 'telnet' is not one of"),
    ('[x]\nabi = "x86_64"\n', r"new device \[x\] needs transport"),
    ('[pixel7]\nthread = 4\n', r"\[pixel7\] has unknown field\(s\) thread"),
    ('[pixel7]\nthreads = 0\n', "threads must be a whole number from 1 to 256"),
    ('[pixel7]\naffinity = 6\n', r"affinity must be a string \(in quotes\), got 6"),
])
def test_bad_profiles_are_named(tmp_path, body, match):
    extra = tmp_path / "lab.toml"
    extra.write_text(body)
    with pytest.raises(BadInput, match=match) as e:
        load_catalog(extra)
    assert str(extra) in str(e.value)


def test_missing_extra_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="nope.toml: device catalog file not found"):
        load_catalog(tmp_path / "nope.toml")


def test_unknown_device_lists_the_known_names():
    with pytest.raises(BadInput, match=r"unknown device 'pixel99'; known devices: .*emu-arm64.*pixel7.*rpi5"):
        get_profile("pixel99")


def test_address_and_serial_come_from_flag_then_catalog_then_environment(monkeypatch):
    assert get_profile("rpi5").address is None
    monkeypatch.setenv("HARNESS_RPI5", "pi@board:2200")
    assert get_profile("rpi5").address == "pi@board:2200"
    assert get_profile("rpi5", address="me@other").address == "me@other"
    monkeypatch.setenv("HARNESS_PIXEL7_SERIAL", "28121FDH2000AB")
    assert get_profile("pixel7").serial == "28121FDH2000AB"
    assert get_profile("pixel7", serial="emulator-5554").serial == "emulator-5554"
    assert get_profile("pixel8pro").serial is None  # the only attached device, decided on first use


def test_transports_for_remote_profiles(monkeypatch):
    from device_runners.adb import AdbTransport
    from device_runners.ssh import SshTransport

    with pytest.raises(BadInput, match=r"rpi5 has no ssh address: set HARNESS_RPI5=user@host\[:port\]"):
        make_transport(get_profile("rpi5"))
    t = make_transport(get_profile("rpi5", address="pi@10.0.0.7:2222"))
    assert isinstance(t, SshTransport) and (t.user, t.host, t.port) == ("pi", "10.0.0.7", 2222)
    assert t._workdir is None  # the board user's own folder, asked on first use (nothing is contacted here)
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "5099")
    a = make_transport(get_profile("pixel7", serial="ABC"))
    assert isinstance(a, AdbTransport) and (a.serial, a.port) == ("ABC", 5099)
    assert a.workdir() == "/data/local/tmp/harness"


def test_unreachable_ssh_profile_says_why(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, why = reachable(get_profile("rpi5", address=f"pi@127.0.0.1:{port}"), timeout=5)
    assert not ok and f"ssh pi@127.0.0.1:{port}: connection refused" in why
    ok, why = reachable(get_profile("rpi5"))
    assert not ok and "HARNESS_RPI5" in why


def test_devices_command_lists_every_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_PIXEL7_SERIAL", "28121FDH2000AB")
    extra = tmp_path / "lab.toml"
    extra.write_text('[jetson]\nabi = "arm64-v8a"\ntransport = "ssh"\naddress = "me@jetson"\n')
    result = CliRunner().invoke(devices_command, ["--devices-file", str(extra)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "28121FDH2000AB" in lines["pixel7"] and "6-7" in lines["pixel7"]
    assert "me@jetson" in lines["jetson"]
    assert "set $HARNESS_RPI5=user@host[:port]" in lines["rpi5"]
    assert "not checked" in result.output


def test_devices_check_reports_unreachable_with_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")  # never start a real adb server
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "1")
    result = CliRunner().invoke(devices_command, ["--check", "--timeout", "3"])
    assert result.exit_code == 0, result.output
    rpi = next(line for line in result.output.splitlines() if line.startswith("rpi5"))
    assert "no: device rpi5 has no ssh address" in rpi
    pixel = next(line for line in result.output.splitlines() if line.startswith("pixel7"))
    assert "no: " in pixel and "adb server not reachable" in pixel


def test_workdir_defaults_per_transport(isolated_home, tmp_path):
    """A user's profile without workdir: adb gets /data/local/tmp/harness (Android has no /tmp), local the user's own
    folder on this machine (never a shared /tmp/harness), ssh the device user's own, asked on first use."""
    from device_runners.base import DeviceProfile
    from device_runners.workdir import host_default

    isolated_home.parent.mkdir(parents=True)
    isolated_home.write_text('[myphone]\nabi = "arm64-v8a"\ntransport = "adb"\n\n'
                             '[mybox]\nabi = "x86_64"\ntransport = "local"\n\n'
                             '[myboard]\nabi = "arm64-v8a"\ntransport = "ssh"\naddress = "me@board"\n')
    assert make_transport(get_profile("myphone")).workdir() == "/data/local/tmp/harness"
    assert make_transport(get_profile("mybox")).workdir() == host_default() != "/tmp/harness"
    assert make_transport(get_profile("myboard"))._workdir is None
    assert DeviceProfile(name="x", abi="x86_64", transport="ssh").workdir is None
