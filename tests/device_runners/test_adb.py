"""The adb transport against the loopback adb stand-in (tests/support/adb_standin.py): protocol, files, faults, arm64."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.adb_standin import AdbStandin
from tests.support.tools import require_tool
from device_runners.adb import AdbTransport
from device_runners.base import TransportError
from device_runners.remote_shell import RemoteFileMissing
from tests.support.sshd_fixture import free_port, procs_with, when_running

WORK = "/data/local/tmp/harness"


@pytest.fixture(autouse=True)
def no_real_adb_server(monkeypatch):
    monkeypatch.setenv("ADBUTILS_ADB_PATH", "/bin/false")  # adbutils must never start a real adb server


@pytest.fixture
def phone(tmp_path):
    with AdbStandin(tmp_path / "sandbox") as standin:
        yield standin


def test_shell_push_pull_round_trip(phone, tmp_path):
    t = AdbTransport(port=phone.port)  # no serial: the only attached device
    bundle = tmp_path / "bundle"
    (bundle / "bin").mkdir(parents=True)
    tool = bundle / "bin" / "tool"
    tool.write_text('#!/bin/sh\necho "args: $* in $(dirname "$0")"; echo "to stderr" >&2; exit 3\n')
    tool.chmod(0o755)
    t.push(bundle, f"{WORK}/bundle")
    rc, out, err = t.shell(f"{WORK}/bundle/bin/tool a 'b c'")
    assert (rc, out, err) == (3, f"args: a b c in {WORK}/bundle/bin\n", "to stderr\n")
    assert t.serial == phone.serial
    t.shell(f"echo '{{\"ok\": true}}' > {WORK}/result.json")
    t.pull(f"{WORK}/result.json", tmp_path / "back" / "result.json")
    assert (tmp_path / "back" / "result.json").read_text() == '{"ok": true}\n'
    assert (phone.sandbox / "harness" / "result.json").is_file()  # the device path really maps to the sandbox
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3_000_000))  # many sync DATA chunks, every byte value
    t.push(blob, f"{WORK}/blob.bin")
    t.pull(f"{WORK}/blob.bin", tmp_path / "blob.back")
    assert (tmp_path / "blob.back").read_bytes() == blob.read_bytes()
    rc, out, _ = t.shell(f"od -An -v -tx1 {WORK}/blob.bin | wc -l")  # ~190k lines of stdout in v2 packets
    assert (rc, int(out)) == (0, 187_500)


def test_exit_code_of_a_crashing_command(phone):
    t = AdbTransport(serial=phone.serial, port=phone.port)
    assert t.shell("sh -c 'kill -SEGV $$'")[0] == 139
    assert t.shell("cat")[0] == 0  # stdin is closed, so a command reading it does not hang


def test_missing_remote_file_is_file_not_found(phone, tmp_path):
    t = AdbTransport(port=phone.port)
    with pytest.raises(RemoteFileMissing, match=rf"{WORK}/result.json: no such file on adb device {phone.serial}") as e:
        t.pull(f"{WORK}/result.json", tmp_path / "r.json")
    assert isinstance(e.value, TransportError) and isinstance(e.value, FileNotFoundError)
    assert not (tmp_path / "r.json").exists()


def test_unknown_serial_names_it_and_lists_the_attached(phone):
    with pytest.raises(TransportError, match=rf"adb device R5CX.* is not attached \(attached: {phone.serial}\)"):
        AdbTransport(serial="R5CX123", port=phone.port).shell("true")


def test_two_phones_and_no_serial_asks_for_one(tmp_path):
    with AdbStandin(tmp_path / "sb", serial="A1", extra_serials=("B2",)) as two:
        with pytest.raises(TransportError, match=r"expected exactly one attached device, found A1 \(device\), "
                                                 r"B2 \(device\): choose one with --serial"):
            AdbTransport(port=two.port).shell("true")
        assert AdbTransport(serial="B2", port=two.port).shell("echo $ANDROID_SERIAL")[0] == 0


def test_unauthorized_phone_says_to_accept_the_prompt(tmp_path):
    with AdbStandin(tmp_path / "sb", serial="PIXEL7", state="unauthorized") as phone:
        with pytest.raises(TransportError, match=r"adb device PIXEL7 .* is unauthorized \(accept the USB debugging "
                                                 r"prompt on the phone\)"):
            AdbTransport(serial="PIXEL7", port=phone.port).shell("true")
        with pytest.raises(TransportError, match=r"found PIXEL7 \(unauthorized\)"):
            AdbTransport(port=phone.port).shell("true")


def test_unreachable_server_names_serial_and_server():
    port = free_port()
    with pytest.raises(TransportError,
                       match=rf"adb device PIXEL7 \(server 127.0.0.1:{port}\): adb server not reachable"):
        AdbTransport(serial="PIXEL7", port=port).shell("true")


def test_device_gone_mid_command_is_a_transport_error(tmp_path):
    standin = AdbStandin(tmp_path / "sb", serial="PIXEL7")
    standin.start()
    try:
        t = AdbTransport(serial="PIXEL7", port=standin.port)
        assert t.shell("echo up") == (0, "up\n", "")
        stopper = when_running("sleep 60.0417", standin.stop)  # the phone vanishes once the command runs
        start = time.monotonic()
        with pytest.raises(TransportError, match=r"adb device PIXEL7 .*connection lost"):
            t.shell("sleep 60.0417", timeout=30)
        stopper.join()
        assert time.monotonic() - start < 30  # the lost device was noticed, not waited out by the shell's own timeout
        with pytest.raises(TransportError, match="PIXEL7"):
            t.shell("true")
    finally:
        standin.stop()


def test_timeout_kills_the_command_and_its_children(phone):
    t = AdbTransport(port=phone.port)
    marker = "sleep 86.4217"
    with pytest.raises(TimeoutError, match="still running after 1.5 s"):
        t.shell(f"{marker} & sh -c '{marker}'; wait", timeout=1.5)
    deadline = time.monotonic() + 5
    while procs_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert procs_with(marker) == []
    assert t.shell("echo still usable") == (0, "still usable\n", "")


def test_cleanup_removes_scratch(phone, tmp_path):
    t = AdbTransport(port=phone.port)
    f = tmp_path / "in.bin"
    f.write_bytes(b"x" * 100_000)
    t.push(f, f"{WORK}/runs/r1/in.bin")
    assert (phone.sandbox / "harness/runs/r1/in.bin").stat().st_size == 100_000
    t.cleanup(f"{WORK}/runs/r1")
    assert not (phone.sandbox / "harness/runs/r1").exists()
    with pytest.raises(ValueError, match="outside the harness workdir"):
        t.cleanup("/data/local/tmp")


def test_info_has_android_properties_and_battery(phone):
    info = AdbTransport(port=phone.port).info()
    assert (info["model"], info["abi"], info["os"]) == ("Pixel 7", "arm64-v8a", "Android 14")
    assert info["battery_temp_c"] == pytest.approx(31.2) and info["battery_level"] == 87
    assert info["transport"] == "adb" and info["serial"] == phone.serial
    assert info["emulated"] is True  # the stand-in runs programs under QEMU and says so, as an Android emulator does
    assert info["devinfo_complete"] is True and info["cores"] >= 1


def test_a_phone_is_not_flagged_emulated(tmp_path):
    with AdbStandin(tmp_path / "sb", emulated=False) as phone:
        assert AdbTransport(port=phone.port).emulated is False


@pytest.fixture(scope="module")
def arm64_programs(tmp_path_factory):
    """A static and a dynamically linked aarch64 program; both print whether the CPU advertises SVE."""
    require_tool("aarch64-linux-gnu-gcc", "qemu-aarch64")
    d = tmp_path_factory.mktemp("arm64")
    src = d / "hello.c"
    src.write_text('#include <stdio.h>\n#include <sys/auxv.h>\n'
                   'int main(int c, char **v) { printf("arm64 %s sve=%d\\n", c > 1 ? v[1] : "-",'
                   ' (int)((getauxval(AT_HWCAP) >> 22) & 1)); return 7; }\n')
    subprocess.run(["aarch64-linux-gnu-gcc", "-O1", "-static", "-o", d / "hello_static", src], check=True)
    subprocess.run(["aarch64-linux-gnu-gcc", "-O1", "-o", d / "hello_dyn", src], check=True)
    return d


def test_arm64_programs_run_under_qemu_cortex_a76(phone, arm64_programs, tmp_path):
    t = AdbTransport(port=phone.port)
    t.push(arm64_programs / "hello_static", f"{WORK}/hello_static")
    # sve=0: emulated as a Cortex-A76, not QEMU's default -cpu max (SVE/SME; wrong int8 outputs with XNNPACK).
    assert t.shell(f"cd {WORK} && ./hello_static one") == (7, "arm64 one sve=0\n", "")
    # Like the runner bundle: a program started through its own glibc loader, with no host sysroot involved.
    bundle = tmp_path / "bundle"
    (bundle / "lib").mkdir(parents=True)
    (bundle / "bin").mkdir()
    shutil.copy(arm64_programs / "hello_dyn", bundle / "bin" / "hello")
    for lib in ("ld-linux-aarch64.so.1", "libc.so.6"):
        shutil.copy(Path("/usr/aarch64-linux-gnu/lib") / lib, bundle / "lib" / lib)
    t.push(bundle, f"{WORK}/b")
    lib = f"{WORK}/b/lib"
    assert t.shell(f"{lib}/ld-linux-aarch64.so.1 --library-path {lib} {WORK}/b/bin/hello two") == \
        (7, "arm64 two sve=0\n", "")


def test_debian_adb_client_talks_to_the_standin(phone, tmp_path):
    if shutil.which("adb") is None:
        pytest.skip("Debian's adb client not installed (apt-get install adb): optional check")

    def adb(*args):
        return subprocess.run(["adb", "-P", str(phone.port), *args], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)

    assert f"{phone.serial}\tdevice" in adb("devices").stdout
    r = adb("-s", phone.serial, "shell", "echo hi; echo oops >&2; exit 5")
    assert (r.returncode, r.stdout, r.stderr) == (5, "hi\n", "oops\n")
    (tmp_path / "f.txt").write_text("through adb push\n")
    assert adb("push", str(tmp_path / "f.txt"), f"{WORK}/f.txt").returncode == 0
    assert adb("pull", f"{WORK}/f.txt", str(tmp_path / "g.txt")).returncode == 0
    assert (tmp_path / "g.txt").read_text() == "through adb push\n"
    assert "host:version" in phone.requests  # the client checked our version and kept us as its server


def test_standin_rewrites_only_aarch64_programs(tmp_path):
    from tests.support.arm64_rewrite import rewrite_for_qemu

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "arm").write_bytes(b"\x7fELF" + bytes(14) + (183).to_bytes(2, "little") + bytes(40))
    (tmp_path / "bin" / "x86").write_bytes(b"\x7fELF" + bytes(14) + (62).to_bytes(2, "little") + bytes(40))
    root, q = tmp_path / "root", f"qemu-aarch64 -cpu cortex-a76 -L {tmp_path / 'root'} "
    arm, x86 = tmp_path / "bin" / "arm", tmp_path / "bin" / "x86"
    cases = {
        f"{arm} --flag {arm}": f"{q}{arm} --flag {arm}",  # the loader runs the program: one qemu only
        f"{x86} a; taskset 1 '{arm}' b && cd {tmp_path} && ./bin/arm": f"{x86} a; taskset 1 {q}'{arm}' b && "
                                                                     f"cd {tmp_path} && {q}./bin/arm",
        f"qemu-aarch64 -cpu cortex-a76 {arm}": f"qemu-aarch64 -cpu cortex-a76 {arm}",  # already emulated
    }
    for cmd, want in cases.items():
        assert rewrite_for_qemu(cmd, tmp_path, root) == want, cmd
