"""An Android device reached through an adb server: adbutils for the server protocol, shell v2 for exit codes,
sync for files."""

from __future__ import annotations

import atexit
import os
import posixpath
import re
import select
import shlex
import shutil
import socket
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import adbutils
from adbutils.errors import AdbError

from device_runners.base import Transport, TransportError
from device_runners.remote_shell import (PID_GRACE_S, STOP_GRACE_S, LineSplitter, RemoteFileMissing,
                                          check_cleanup_path, kill_tree_command, split_pid_line, stop_tree_command,
                                          with_pid_line)

PROPS = ("ro.product.model", "ro.product.manufacturer", "ro.product.cpu.abi", "ro.build.version.release",
         "ro.build.version.sdk", "ro.soc.model")
_ERRORS = (AdbError, OSError, EOFError, subprocess.SubprocessError)
DEFAULT_WORKDIR = "/data/local/tmp/harness"  # the one place the shell user may write on every phone; no /tmp there
SYNC_CHUNK = 64 * 1024  # adbd's SYNC_DATA_MAX

_server_lock = threading.Lock()
_server_state: dict[tuple[str, int], str | None] = {}  # (host, port) -> None when it answers, else why not
_started: list[tuple[str, int]] = []  # adb servers this process started, stopped at exit


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _stop_started_servers() -> None:
    for adb, port in _started:
        subprocess.run([adb, "-P", str(port), "kill-server"], capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=15)
    _started.clear()


def ensure_server(host: str, port: int) -> None:
    """Start the local adb server once per process, quietly, if none answers; it is stopped when the process ends.

    adbutils would run `adb start-server` from every thread whose connection fails (a burst of "daemon not
    running" lines and racing daemons); this serialises it. Raises TransportError saying why there is no server.
    """
    with _server_lock:
        if (host, port) not in _server_state:
            _server_state[(host, port)] = _start_server(host, port)
        reason = _server_state[(host, port)]
    if reason:
        raise TransportError(reason)


def _start_server(host: str, port: int) -> str | None:
    if _answers(host, port):
        return None
    where = f"adb server not reachable on {host}:{port}"
    if host not in ("127.0.0.1", "localhost", "::1"):
        return f"{where}: start it on {host} (`adb -a start-server`)"
    adb = os.environ.get("ADBUTILS_ADB_PATH") or shutil.which("adb")
    if adb is None:
        return f"{where} and no adb program to start one: install Debian package adb (or Android platform-tools)"
    try:
        p = subprocess.run([adb, "-P", str(port), "start-server"], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return f"{where}: `{adb} start-server` failed: {e}"
    if p.returncode != 0 or not _answers(host, port):
        last = (p.stderr or p.stdout).strip().splitlines()[-1:] or [f"exit code {p.returncode}"]
        return f"{where}: `adb -P {port} start-server` failed: {last[0][:200]}"
    if not _started:
        atexit.register(_stop_started_servers)
    _started.append((adb, port))
    return None


class _Refused(Exception):
    """adbd answered FAIL with a reason."""


# Build properties then the battery: one script, so a farm's test spec captures what a local adb run does.
ANDROID_INFO_SCRIPT = "".join(f'echo "{p}=$(getprop {p})"; ' for p in PROPS) + "echo @@battery; dumpsys battery"


def parse_android_info(out: str) -> dict[str, Any]:
    """ANDROID_INFO_SCRIPT's output as the snapshot fields: model, abi, os, battery temperature and level."""
    props_text, _, battery = out.partition("@@battery")
    props = dict(line.split("=", 1) for line in props_text.splitlines() if "=" in line)
    info: dict[str, Any] = {"android_props": {k: v for k, v in props.items() if v}}
    if props.get("ro.product.model"):
        info["model"] = props["ro.product.model"]
    if props.get("ro.product.cpu.abi"):
        info["abi"] = props["ro.product.cpu.abi"]
    if props.get("ro.build.version.release"):
        info["os"] = f"Android {props['ro.build.version.release']}"
    for key, field, scale in (("temperature", "battery_temp_c", 10.0), ("level", "battery_level", 1)):
        m = re.search(rf"^\s*{key}:\s*(-?\d+)\s*$", battery, re.M)
        if m:
            info[field] = int(m.group(1)) / scale if scale != 1 else int(m.group(1))
    return info


class AdbTransport(Transport):
    """One device of an adb server; with no serial, the only attached device."""

    kind = "adb"

    def __init__(self, serial: str | None = None, host: str = "127.0.0.1", port: int = 5037,
                 workdir: str = DEFAULT_WORKDIR):
        self.serial = serial
        self.host, self.port = host, int(port)
        self._workdir = workdir
        self._client = adbutils.AdbClient(host=host, port=self.port)
        self._device: adbutils.AdbDevice | None = None
        self._emulated: bool | None = None

    @property
    def emulated(self) -> bool:
        """True on an Android emulator (ro.kernel.qemu=1, ranchu/goldfish hardware): its timings are not a phone's."""
        if self._emulated is None:
            _, out, _ = self.shell("getprop ro.kernel.qemu; getprop ro.hardware", timeout=30)
            qemu, _, hardware = out.partition("\n")
            self._emulated = qemu.strip() == "1" or hardware.strip() in ("ranchu", "goldfish")
        return self._emulated

    def workdir(self) -> str:
        return self._workdir

    def _name(self) -> str:
        return f"adb device {self.serial or '(any)'} (server {self.host}:{self.port})"

    def _dev(self) -> adbutils.AdbDevice:
        if self._device is not None:
            return self._device
        try:
            ensure_server(self.host, self.port)
        except TransportError as e:
            raise TransportError(f"{self._name()}: {e}; start one with `adb start-server`") from None
        try:
            infos = self._client.list()
        except _ERRORS as e:
            raise TransportError(f"{self._name()}: adb server not reachable ({e}); "
                                 "start one with `adb start-server`") from None
        ready = [i.serial for i in infos if i.state == "device"]
        if self.serial is None:
            if len(ready) != 1:
                found = ", ".join(f"{i.serial} ({i.state})" for i in infos) or "none"
                raise TransportError(f"{self._name()}: expected exactly one attached device, found {found}: "
                                     "choose one with --serial or the profile's serial variable")
            self.serial = ready[0]
        elif self.serial not in ready:
            state = next((i.state for i in infos if i.serial == self.serial), None)
            why = (f"is {state}" + (" (accept the USB debugging prompt on the phone)" if state == "unauthorized"
                                    else "")) if state else \
                f"is not attached (attached: {', '.join(ready) or 'none'})"
            raise TransportError(f"{self._name()} {why}")
        self._device = self._client.device(self.serial)
        return self._device

    def _gone(self, e: BaseException | str) -> TransportError:
        self._device = None
        return TransportError(f"{self._name()}: connection lost: {e}")

    def shell(self, cmd: str, timeout: float | None = None,
              on_stderr: Callable[[str], None] | None = None) -> tuple[int, str, str]:
        """Run cmd on the phone. stdin stays open for the remote watchdog (remote_shell.watchdog): when this process
        dies, even by SIGKILL, the connection drops and the command's process group is killed. An interrupt stops
        the command (SIGTERM, then SIGKILL) before it is re-raised."""
        rc, out, err = self._shell_v2(with_pid_line(cmd), timeout, label=cmd, keep_stdin=True, on_stderr=on_stderr)
        _, out = split_pid_line(out)
        return rc, out.decode(errors="replace"), err.decode(errors="replace")

    def _shell_v2(self, script: str, timeout: float | None, label: str, keep_stdin: bool = False,
                  on_stderr: Callable[[str], None] | None = None) -> tuple[int, bytes, bytes]:
        dev = self._dev()
        try:
            c = dev.open_transport(timeout=None)
        except _ERRORS as e:
            raise self._gone(e) from None
        try:
            try:
                c.send_command("shell,v2,raw:" + script)
                c.check_okay()
                if not keep_stdin:
                    c.conn.sendall(struct.pack("<BI", 4, 0))  # close stdin: a command that reads it must not hang
            except _ERRORS as e:
                raise self._gone(e) from None
            return self._read_packets(c.conn, timeout, label, LineSplitter(on_stderr))
        finally:
            c.close()

    def _read_packets(self, sock: socket.socket, timeout: float | None, label: str,
                      lines: LineSplitter) -> tuple[int, bytes, bytes]:
        buf, out, err = bytearray(), bytearray(), bytearray()
        pid: list[int | None] = [None]
        try:
            return self._packets(sock, timeout, label, lines, buf, out, err, pid)
        except BaseException as e:  # an interrupt (or a callback's error): leave nothing running on the phone
            if pid[0] is not None and not isinstance(e, (TimeoutError, TransportError)):
                self._kill(pid[0], graceful=True)
            raise

    def _packets(self, sock, timeout, label, lines, buf, out, err, pid) -> tuple[int, bytes, bytes]:
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            now = time.monotonic()
            if deadline is not None and now > deadline and (pid[0] is not None or now > deadline + PID_GRACE_S):
                if pid[0] is not None:
                    self._kill(pid[0])
                raise TimeoutError(f"{self._name()}: `{label[:80]}` still running after {timeout:g} s (killed)")
            wait = 1.0 if deadline is None else min(1.0, max(deadline - now, 0.05))
            ready, _, _ = select.select([sock], [], [], wait)
            if not ready:
                continue
            try:
                chunk = sock.recv(1 << 16)
            except OSError as e:
                raise self._gone(e) from None
            if not chunk:
                raise self._gone("closed before the command reported its exit code")
            buf += chunk
            while len(buf) >= 5:
                kind, n = struct.unpack("<BI", buf[:5])
                if len(buf) < 5 + n:
                    break
                data, buf = bytes(buf[5:5 + n]), buf[5 + n:]
                if kind == 1:
                    out += data
                    if pid[0] is None:
                        pid[0], _ = split_pid_line(bytes(out[:200]))
                elif kind == 2:
                    err += data
                    lines.feed(data)
                elif kind == 3:
                    return data[0], bytes(out), bytes(err)

    def _kill(self, pid: int, graceful: bool = False) -> None:
        """Kill a command's tree; graceful: SIGTERM first, so the runner can write what it measured."""
        try:
            self._shell_v2(stop_tree_command(pid) if graceful else kill_tree_command(pid), STOP_GRACE_S + 15,
                           label="kill")
        except (TransportError, TimeoutError):
            pass  # the device went away; nothing left to kill from here

    def push(self, local: Path, remote: str) -> None:
        """Copy a file or a directory tree (keeping permission bits) to `remote`; adbd creates the parents.
        A refusal (full disk, read-only or missing path) raises TransportError with adbd's own reason."""
        local = Path(local)
        if not local.exists():
            raise FileNotFoundError(f"{local}: no such file to push to {self._name()}")
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            rel = path.relative_to(local).as_posix()
            target = remote if rel == "." else posixpath.join(remote, rel)
            self._send(path, target, stat.S_IMODE(path.stat().st_mode))
        if local.is_dir() and not files:
            self.shell(f"mkdir -p {shlex.quote(remote)}", timeout=30)

    def _send(self, path: Path, target: str, mode: int) -> None:
        """One sync SEND. adbutils' Sync.push reads only the 4-byte status and drops adbd's reason after FAIL."""
        sync = adbutils.Sync(self._dev())
        try:
            with sync._prepare_sync(f"{target},{stat.S_IFREG | mode}", "SEND") as c:
                try:
                    with open(path, "rb") as f:
                        for chunk in iter(lambda: f.read(SYNC_CHUNK), b""):
                            c.conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                    c.conn.sendall(b"DONE" + struct.pack("<I", int(time.time())))
                except OSError:
                    pass  # adbd may have refused early and closed: its FAIL, if any, is still to be read
                status = c.read(4)
                if status == b"FAIL":
                    reason = c.read(struct.unpack("<I", c.read(4))[0]).decode(errors="replace")
                    raise _Refused(f"push {path.name} -> {target} refused by the device: {reason}")
                if status != b"OKAY":
                    raise self._gone(f"push {path} -> {target}: no answer from adbd ({status!r})")
        except _Refused as e:
            raise TransportError(f"{self._name()}: {e}") from None
        except _ERRORS as e:
            raise self._gone(f"push {path} -> {target} failed: {e}") from None

    def pull(self, remote: str, local: Path) -> None:
        """Copy a file back; a missing one raises RemoteFileMissing (adbutils would not), a refused one adbd's reason."""
        sync = adbutils.Sync(self._dev())
        local = Path(local)
        try:
            st = sync.stat(remote)
            if st.mode == 0:
                raise RemoteFileMissing(f"{remote}: no such file on {self._name()}")
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(local.name + ".part")
            with sync._prepare_sync(remote, "RECV") as c, open(tmp, "wb") as out:
                while True:
                    kind = c.read(4)
                    if kind == b"DATA":
                        out.write(c.read(struct.unpack("<I", c.read(4))[0]))
                    elif kind == b"DONE":
                        c.read(4)
                        break
                    elif kind == b"FAIL":
                        reason = c.read(struct.unpack("<I", c.read(4))[0]).decode(errors="replace")
                        raise _Refused(f"pull {remote} refused by the device: {reason}")
                    else:
                        raise self._gone(f"pull {remote}: unexpected answer {kind!r}")
            tmp.replace(local)  # no partial file under the final name
        except RemoteFileMissing:
            raise
        except _Refused as e:
            raise TransportError(f"{self._name()}: {e}") from None
        except _ERRORS as e:
            raise self._gone(f"pull {remote} failed: {e}") from None
        finally:
            local.with_name(local.name + ".part").unlink(missing_ok=True)

    def cleanup(self, remote_dir: str) -> None:
        """Delete a scratch directory under the workdir."""
        path = check_cleanup_path(remote_dir, self._workdir)
        rc, _, err = self.shell(f"rm -rf -- {shlex.quote(path)}", timeout=60)
        if rc != 0:
            raise TransportError(f"{self._name()}: cannot remove {path}: {err.strip()}")

    def android_info(self) -> dict[str, Any]:
        """Build properties and the battery (temperature is the phone's best single thermal throttling hint)."""
        _, out, _ = self.shell(ANDROID_INFO_SCRIPT, timeout=30)
        return parse_android_info(out)

    def info(self) -> dict[str, Any]:
        from device_runners.devinfo import DEVINFO_SCRIPT, parse_devinfo
        _, out, _ = self.shell(DEVINFO_SCRIPT, timeout=60)
        info = parse_devinfo(out)
        if "os" in info:
            info["os_build"] = info.pop("os")  # on Android the snippet reports ro.build.description
        info.update(self.android_info())
        info.update(transport="adb", serial=self.serial, emulated=self.emulated)
        return info

    def close(self) -> None:
        self._device = None
