"""A loopback adb server for tests: it speaks the adb server protocol (host services, shell v1/v2, sync) well
enough for adbutils 2.12 and Debian's adb 29, and plays one arm64 "phone" whose /data/local/tmp is a sandbox.

How the phone is faked (as root, with unshare and Debian's mksh and toybox: "phone-like", the default):
- Every command runs in its own private mount namespace, chrooted into a small root: /system/bin holds
  /system/bin/sh (mksh) and toybox's applets and is first on PATH, as on Android; /data/local/tmp is the sandbox;
  there is no /tmp; /usr, /dev and /proc come from this machine (the loader and qemu need them), with a
  Pixel-7-like /proc/cpuinfo bound over the real one. The command runs as uid 2000 (shell), cwd /,
  TMPDIR=/data/local/tmp, in its own session, like adbd's.
- /sys holds only a Pixel-like devices/system/cpu tree (three clusters little 0-3, mid 4-5, big 6-7, sched_pixel
  governor, per-policy stats/time_in_state) and class/thermal zones, some unreadable by the shell user (SELinux
  denials look like that). A test changes them mid-run with set_cap(), add_time_in_state(), set_temp().
- `getprop` and `dumpsys` (battery, power) are shims in /system/bin; battery temperature and charging follow
  set_battery().
- A push larger than `max_push_bytes` is refused the way adbd refuses a full disk.
- arm64 programs: binfmt_misc is not mounted here, so tests/support/arm64_rewrite.py puts `qemu-aarch64 -cpu cortex-a76`
  before each aarch64 program a command starts.
Without root (or without unshare, mksh or toybox) the stand-in falls back to the host's `sh -c` in the sandbox with
every "/data/local/tmp" in commands and sync paths rewritten to the sandbox (`phone_like` is then False).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

from shlex import quote as shlex_quote

from tests.support.arm64_rewrite import rewrite_for_qemu

DEVICE_ROOT = "/data/local/tmp"
FEATURES = "shell_v2,cmd,fixed_push_mkdir"  # no stat_v2/ls_v2/sendrecv_v2: the v1 sync protocol is all we speak
SHELL_UID = 2000  # AID_SHELL: what `adb shell` runs as on a phone that is not rooted
PHONE_PATH = "/product/bin:/apex/com.android.runtime/bin:/system_ext/bin:/system/bin:/system/xbin:/vendor/bin"
# Pixel 7 (Tensor G2): cluster -> (cpus, cpuinfo_min_freq, cpuinfo_max_freq, MIDR part)
PIXEL_CLUSTERS = {"little": ((0, 1, 2, 3), 300000, 1803000, "0xd05"), "mid": ((4, 5), 400000, 2348000, "0xd41"),
                  "big": ((6, 7), 500000, 2850000, "0xd44")}
# type -> millidegrees; None: the file exists but the shell user may not read it
THERMAL_ZONES = {"BIG": 41200, "MID": 38100, "LITTLE": 36400, "TPU": None, "VIRTUAL-SKIN": 33500,
                 "battery": 31200}


def phone_like_available() -> bool:
    """Whether this machine can play the phone-like device (root, unshare, mksh, toybox)."""
    return (os.geteuid() == 0 and all(shutil.which(t) for t in ("unshare", "mksh", "toybox", "chroot"))
            and subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.standin._serve(self.request)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class AdbStandin:
    """`with AdbStandin(tmp) as adb:` an adb server on adb.host:adb.port with one device, adb.serial."""

    def __init__(self, sandbox: Path, serial: str = "emulator-standin", model: str = "Pixel 7",
                 extra_serials: tuple[str, ...] = (), abi: str = "arm64-v8a", release: str = "14",
                 battery_temp_decicelsius: int = 312, emulated: bool = True, state: str = "device",
                 phone_like: bool | None = None, max_push_bytes: int | None = None, device: str = "panther",
                 soc: str = "GS201"):
        self.sandbox = Path(sandbox).resolve()
        self.serial = serial
        self.serials = [serial, *extra_serials]
        self.state = state  # "unauthorized" or "offline" play a phone whose USB debugging prompt is pending
        self.props = {"ro.product.model": model, "ro.product.cpu.abi": abi, "ro.product.device": device,
                      "ro.product.manufacturer": "Google", "ro.soc.model": soc,
                      "ro.build.version.release": release, "ro.build.version.sdk": "34", "ro.serialno": serial,
                      # Its programs run under QEMU, so it says what an Android emulator says: no hardware timings.
                      "ro.kernel.qemu": "1" if emulated else "0", "ro.hardware": "ranchu" if emulated else "standin"}
        self.battery_temp = battery_temp_decicelsius
        self.phone_like = phone_like_available() if phone_like is None else phone_like
        self.max_push_bytes = max_push_bytes
        self.host = "127.0.0.1"
        self.port = 0
        self._server: _Server | None = None
        self._socks: set[socket.socket] = set()
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.requests: list[str] = []  # every service asked for, for tests that check what a client sent
        self.commands: list[str] = []  # every shell command as it ran on this machine (after the rewrites)

    # --- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self) -> "AdbStandin":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.sandbox.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="adb-standin-")
        tmp = Path(self._tmp.name)
        os.chmod(tmp, 0o755)
        self.root = tmp / "root"  # phone-like: the chroot; legacy: qemu's -L root
        if self.phone_like:
            self.bin = self.root / "system" / "bin"
            self._build_root()
        else:
            self.bin = tmp / "bin"
            self.bin.mkdir()
            (self.root / "data" / "local").mkdir(parents=True)
            (self.root / "data" / "local" / "tmp").symlink_to(self.sandbox)
        self._write_shims()
        self._server = _Server((self.host, 0), _Handler)
        self._server.standin = self
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """The phone vanishes: stop listening, drop every connection mid-whatever, kill running commands."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            socks, procs = list(self._socks), list(self._procs)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- the phone's filesystem ------------------------------------------------------------------------------

    def _build_root(self) -> None:
        r = self.root
        for d in ("usr", "etc", "dev", "proc", "data/local/tmp", "system/bin", "system/etc", "sys/class/thermal"):
            (r / d).mkdir(parents=True, exist_ok=True)
        for link in ("bin", "lib", "lib64", "sbin"):
            if os.path.islink(f"/{link}"):
                (r / link).symlink_to(os.readlink(f"/{link}"))
        (r / "system/bin/sh").symlink_to(shutil.which("mksh"))
        toybox = shutil.which("toybox")
        applets = subprocess.run([toybox], capture_output=True, text=True).stdout.split()
        for name in applets:
            if name not in ("sh", "getprop", "dumpsys") and name.replace("-", "").isalnum():
                (r / "system/bin" / name).symlink_to(toybox)
        if shutil.which("qemu-aarch64"):  # the stand-in's "hardware": arm64 programs run under it
            (r / "system/bin/qemu-aarch64").symlink_to(shutil.which("qemu-aarch64"))
        (r / "etc/passwd").write_text(f"root:x:0:0::/:/system/bin/sh\nshell:x:{SHELL_UID}:{SHELL_UID}::/:/system/bin/sh\n")
        (r / "etc/group").write_text(f"root:x:0:\nshell:x:{SHELL_UID}:\n")
        if os.path.isfile("/etc/ld.so.cache"):
            shutil.copy("/etc/ld.so.cache", r / "etc/ld.so.cache")
        os.chown(self.sandbox, SHELL_UID, SHELL_UID)
        self._build_cpu_tree()
        self._build_thermal()
        self.set_battery(self.battery_temp / 10, charging=True)
        lines = []
        for cluster, (cpus, _, _, part) in PIXEL_CLUSTERS.items():
            for c in cpus:
                lines.append(f"processor\t: {c}\nBogoMIPS\t: 49.15\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 "
                             f"crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\n"
                             f"CPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: {part}\nCPU revision\t: 0\n")
        (r / "system/etc/cpuinfo").write_text("\n".join(lines) + "\nHardware\t: GS201\n")

    def _sysfile(self, path: Path, value, readable: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{str(value).rstrip()}\n")
        path.chmod(0o644 if readable else 0o000)

    def _build_cpu_tree(self) -> None:
        cpu = self.root / "sys/devices/system/cpu"
        n = sum(len(c[0]) for c in PIXEL_CLUSTERS.values())
        for name in ("possible", "present", "online"):
            self._sysfile(cpu / name, f"0-{n - 1}")
        self._sysfile(cpu / "offline", "")
        for cluster, (cpus, lo, hi, _) in PIXEL_CLUSTERS.items():
            pol = cpu / "cpufreq" / f"policy{cpus[0]}"
            steps = [lo, (lo + hi) // 2, hi * 3 // 4, hi]
            for name, value in (("affected_cpus", " ".join(map(str, cpus))),
                                ("related_cpus", " ".join(map(str, cpus))),
                                ("cpuinfo_min_freq", lo), ("cpuinfo_max_freq", hi), ("scaling_min_freq", lo),
                                ("scaling_max_freq", hi), ("scaling_cur_freq", hi), ("scaling_governor", "sched_pixel"),
                                ("scaling_available_frequencies", " ".join(map(str, steps)))):
                self._sysfile(pol / name, value)
            # SELinux on some phones denies the shell user the little cluster's stats: unreadable, not fatal
            self._sysfile(pol / "stats/time_in_state", "".join(f"{f} {100 * (i + 1)}\n" for i, f in enumerate(steps)),
                          readable=cluster != "little")
            for c in cpus:
                d = cpu / f"cpu{c}"
                d.mkdir(parents=True)
                (d / "cpufreq").symlink_to(f"../cpufreq/policy{cpus[0]}")
                if c:
                    self._sysfile(d / "online", 1)
                for name, value in (("core_id", c - cpus[0]), ("physical_package_id", 0),
                                    ("core_siblings_list", f"{cpus[0]}-{cpus[-1]}"), ("thread_siblings_list", c)):
                    self._sysfile(d / "topology" / name, value)

    def _build_thermal(self) -> None:
        for i, (kind, milli) in enumerate(THERMAL_ZONES.items()):
            z = self.root / f"sys/class/thermal/thermal_zone{i}"
            self._sysfile(z / "type", kind)
            self._sysfile(z / "temp", milli if milli is not None else 0, readable=milli is not None)

    def policy(self, cluster: str) -> Path:
        return self.root / f"sys/devices/system/cpu/cpufreq/policy{PIXEL_CLUSTERS[cluster][0][0]}"

    def set_cap(self, cluster: str, khz: int) -> None:
        """Cap a cluster's frequency as the thermal governor does (scaling_max_freq), its clock following."""
        pol = self.policy(cluster)
        (pol / "scaling_max_freq").write_text(f"{khz}\n")
        (pol / "scaling_cur_freq").write_text(f"{khz}\n")

    def add_time_in_state(self, cluster: str, khz: int, ticks: int) -> None:
        """Add time (10 ms ticks) at one frequency of a cluster's stats/time_in_state."""
        f = self.policy(cluster) / "stats/time_in_state"
        mode = f.stat().st_mode
        rows = dict(line.split() for line in f.read_text().splitlines() if line.strip())
        rows[str(khz)] = str(int(rows.get(str(khz), 0)) + ticks)
        f.write_text("".join(f"{k} {v}\n" for k, v in sorted(rows.items(), key=lambda kv: int(kv[0]))))
        f.chmod(mode)

    def set_temp(self, zone_type: str, celsius: float) -> None:
        i = list(THERMAL_ZONES).index(zone_type)
        (self.root / f"sys/class/thermal/thermal_zone{i}/temp").write_text(f"{round(celsius * 1000)}\n")

    def set_battery(self, celsius: float, charging: bool = True) -> None:
        """What `dumpsys battery` reports from now on."""
        self.battery_temp = round(celsius * 10)
        state = self.root / "system/etc/battery" if self.phone_like else self.bin / "battery"
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(f"  AC powered: false\n  USB powered: {'true' if charging else 'false'}\n"
                         f"  status: {2 if charging else 3}\n  health: 2\n  present: true\n  level: 87\n"
                         f"  scale: 100\n  voltage: 4213\n  temperature: {self.battery_temp}\n"
                         "  technology: Li-ion\n")

    def _write_shims(self) -> None:
        cases = "".join(f"  {k}) echo '{v}' ;;\n" for k, v in self.props.items())
        listing = "".join(f"echo '[{k}]: [{v}]'\n" for k, v in self.props.items())
        sh = "/system/bin/sh" if self.phone_like else "/bin/sh"
        battery = "/system/etc/battery" if self.phone_like else self.bin / "battery"
        if not self.phone_like:
            self.set_battery(self.battery_temp / 10)
        (self.bin / "getprop").write_text(
            f"#!{sh}\nif [ $# -eq 0 ]; then\n{listing}exit 0\nfi\ncase \"$1\" in\n{cases}  *) echo ;;\nesac\n")
        (self.bin / "dumpsys").write_text(
            f"#!{sh}\ncase \"$1\" in\n"
            f"  battery) echo 'Current Battery Service state:'; cat {battery} ;;\n"
            "  power) echo 'POWER MANAGER (dumpsys power)'; echo '  mWakefulness=Awake'; "
            "echo '  Display Power: state=ON' ;;\n"
            "  *) echo \"Can't find service: $1\" ;;\nesac\n")
        for name in ("getprop", "dumpsys"):
            (self.bin / name).chmod(0o755)

    # --- device side -----------------------------------------------------------------------------------------

    def to_host(self, text: str) -> str:
        return text.replace(DEVICE_ROOT, str(self.sandbox))

    def to_device(self, data: bytes) -> bytes:
        return data if self.phone_like else data.replace(str(self.sandbox).encode(), DEVICE_ROOT.encode())

    def _host_path(self, device_path: str) -> Path | None:
        if device_path == DEVICE_ROOT or device_path.startswith(DEVICE_ROOT + "/"):
            return Path(self.to_host(device_path))
        return None

    def _spawn(self, cmd: str) -> subprocess.Popen:
        if self.phone_like:
            cmd = rewrite_for_qemu(cmd, Path("/"), None, host_path=lambda p: Path(self.to_host(str(p))))
            r = shlex_quote(str(self.root))
            # a private mount namespace per command: the mounts vanish with it
            setup = (f"set -e; r={r}; for d in usr dev proc; do /usr/bin/mount --rbind /$d $r/$d; done; "
                     f"/usr/bin/mount --bind $r/system/etc/cpuinfo $r/proc/cpuinfo; "
                     f"/usr/bin/mount --bind {shlex_quote(str(self.sandbox))} $r/data/local/tmp; "
                     f"cd /; exec /usr/sbin/chroot --userspec={SHELL_UID}:{SHELL_UID} --groups={SHELL_UID} $r "
                     f'/system/bin/sh -c "$1"')
            argv = [shutil.which("unshare"), "-m", "--propagation", "private", "/bin/sh", "-c", setup, "standin", cmd]
            env = {"PATH": PHONE_PATH, "TMPDIR": DEVICE_ROOT, "HOME": "/", "ANDROID_SERIAL": self.serial}
            cwd = "/"
        else:
            cmd = rewrite_for_qemu(self.to_host(cmd), self.sandbox, self.root)
            argv = ["/bin/sh", "-c", cmd]
            env = dict(os.environ, PATH=f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                       ANDROID_SERIAL=self.serial)
            cwd = self.sandbox
        self.commands.append(cmd)
        p = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self._lock:
            self._procs.add(p)
        return p

    def _reap(self, p: subprocess.Popen) -> int:
        rc = p.wait()
        with self._lock:
            self._procs.discard(p)
        return rc if rc >= 0 else 128 - rc  # a signal death reads like sh reports it: 128 + signal

    # --- protocol ----------------------------------------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms stalls per small packet
        with self._lock:
            self._socks.add(sock)
        try:
            self._session(_Conn(sock))
        except (OSError, EOFError):
            pass  # client went away or stop() dropped us
        finally:
            with self._lock:
                self._socks.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _session(self, c: "_Conn") -> None:
        device = None
        while True:
            req = c.request()
            if req is None:
                return
            self.requests.append(req)
            if device is not None:
                return self._device_service(c, req)
            device = self._host_service(c, req)
            if device is None:
                return

    def _pick(self, c: "_Conn", serial: str | None) -> str | None:
        if serial is None:
            if len(self.serials) > 1:
                c.fail("more than one device/emulator")
                return None
            return self.serials[0]
        if serial not in self.serials:
            c.fail(f"device '{serial}' not found")
            return None
        if self.state != "device":
            c.fail(f"device {self.state}")
            return None
        return serial

    def _host_service(self, c: "_Conn", req: str) -> str | None:
        """Answer a host request; returns the serial when the connection now talks to a device."""
        if req == "host:version":
            c.okay_block("0029")  # adb 1.0.41; any other answer makes Debian's adb kill us and start its own
        elif req in ("host:devices", "host:devices-l"):
            long = req.endswith("-l")
            c.okay_block("".join(
                f"{s}\t{self.state}" + (f" product:standin model:{self.props['ro.product.model'].replace(' ', '_')}"
                                   f" device:standin transport_id:{i + 1}" if long else "") + "\n"
                for i, s in enumerate(self.serials)))
        elif req in ("host:features", "host:host-features"):
            c.okay_block(FEATURES)
        elif req == "host:kill":
            c.okay()
        elif req.startswith(("host:tport:", "host:transport")):
            serial = self._pick(c, self._target(req.split(":", 1)[1]))
            if serial is None:
                return None
            c.okay()
            if req.startswith("host:tport:"):
                c.send(struct.pack("<Q", self.serials.index(serial) + 1))  # the transport id
            return serial
        elif req.startswith(("host-serial:", "host-transport-id:", "host-usb:", "host-local:")):
            head, _, what = req.rpartition(":")
            kind, _, target = head.partition(":")
            serial = self._pick(c, target if kind == "host-serial" else
                                self._by_id(target) if kind == "host-transport-id" else None)
            answers = {"features": FEATURES, "get-state": "device", "get-serialno": serial, "get-devpath": "usb:1"}
            if serial is not None:
                c.okay_block(answers[what]) if what in answers else c.fail(f"unsupported host service {what}")
        else:
            c.fail(f"unsupported service {req}")
        return None

    def _target(self, rest: str) -> str | None:
        """The serial a `host:tport:...` / `host:transport...` request names; None for "any"."""
        for head in ("tport:serial:", "transport:"):
            if rest.startswith(head):
                return rest[len(head):]
        if "id:" in rest:
            return self._by_id(rest.rsplit(":", 1)[-1])
        return None  # tport:any, transport-any, -usb, -local: the one device there is

    def _by_id(self, tid: str) -> str:
        try:
            return self.serials[int(tid) - 1]
        except (ValueError, IndexError):
            return f"transport-id {tid}"

    def _device_service(self, c: "_Conn", req: str) -> None:
        service, _, arg = req.partition(":")
        if service == "sync":
            c.okay()
            return self._sync(c)
        name, *opts = service.split(",")
        if name in ("shell", "exec") and arg:
            c.okay()
            return self._shell(c, arg, v2="v2" in opts)
        c.fail(f"unsupported device service {req}")

    def _shell(self, c: "_Conn", cmd: str, v2: bool) -> None:
        p = self._spawn(cmd)
        send_lock = threading.Lock()
        gone = threading.Event()

        def forward(stream, packet_id):
            for chunk in iter(lambda: stream.read1(1 << 16), b""):
                if gone.is_set():
                    continue  # adbd stops forwarding too; the program runs on until it writes to a dead pipe
                data = self.to_device(chunk)
                try:
                    with send_lock:
                        c.send(struct.pack("<BI", packet_id, len(data)) + data if v2 else data)
                except OSError:
                    gone.set()

        def stdin_pump():
            try:
                while True:
                    if not v2:
                        if not c.sock.recv(1 << 16):
                            break
                        continue
                    head = c.recv_exact(5)
                    pid, n = struct.unpack("<BI", head)
                    data = c.recv_exact(n) if n else b""
                    if pid == 0 and p.stdin:
                        p.stdin.write(data)
                        p.stdin.flush()
                    elif pid == 4:
                        break
            except (OSError, EOFError, ValueError):
                pass
            try:
                p.stdin.close()
            except OSError:
                pass

        threading.Thread(target=stdin_pump, daemon=True).start()
        readers = [threading.Thread(target=forward, args=(p.stdout, 1), daemon=True),
                   threading.Thread(target=forward, args=(p.stderr, 2), daemon=True)]
        for t in readers:
            t.start()
        rc = self._reap(p)
        for t in readers:
            t.join()
        if v2 and not gone.is_set():
            with send_lock:
                c.send(struct.pack("<BIB", 3, 1, rc & 0xFF))

    def _sync(self, c: "_Conn") -> None:
        while True:
            head = c.recv_exact(8, eof_ok=True)
            if head is None:
                return
            cmd, n = head[:4], struct.unpack("<I", head[4:])[0]
            arg = c.recv_exact(n).decode() if cmd != b"QUIT" else ""
            if cmd == b"QUIT":
                return
            if cmd == b"STAT":
                path = self._host_path(arg)
                try:
                    st = os.stat(path) if path else None
                except OSError:
                    st = None
                mode, size, mtime = (st.st_mode, st.st_size, int(st.st_mtime)) if st else (0, 0, 0)
                c.send(b"STAT" + struct.pack("<III", mode, size & 0xFFFFFFFF, mtime))
            elif cmd == b"LIST":
                path = self._host_path(arg)
                if path and path.is_dir():
                    for e in sorted(path.iterdir()):
                        st = e.lstat()
                        name = e.name.encode()
                        c.send(b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF,
                                                     int(st.st_mtime), len(name)) + name)
                c.send(b"DONE" + bytes(16))
            elif cmd == b"SEND":
                self._recv_file(c, arg)
            elif cmd == b"RECV":
                path = self._host_path(arg)
                if not path or not path.is_file():
                    c.sync_fail(f"remote object '{arg}' does not exist")
                    return
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(64 * 1024), b""):
                        c.send(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                c.send(b"DONE" + bytes(4))
            else:
                c.sync_fail(f"unknown sync command {cmd!r}")
                return

    def _recv_file(self, c: "_Conn", spec: str) -> None:
        device_path, _, mode = spec.rpartition(",")
        path = self._host_path(device_path)
        data = bytearray()
        while True:
            head = c.recv_exact(8)
            kind, n = head[:4], struct.unpack("<I", head[4:])[0]
            if kind == b"DATA":
                data += c.recv_exact(n)
            elif kind == b"DONE":
                break
            else:
                return c.sync_fail(f"unexpected {kind!r} during SEND")
        if path is None:
            return c.sync_fail(f"couldn't create file {device_path}: Read-only file system")
        if self.max_push_bytes is not None and self._used_bytes() + len(data) > self.max_push_bytes:
            return c.sync_fail("write failed: No space left on device")  # what adbd says on ENOSPC
        try:
            made = [d for d in [path.parent, *path.parent.parents] if not d.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)  # adbd makes missing parents too
            path.write_bytes(bytes(data))
            path.chmod(int(mode) & 0o777 if mode.isdigit() else 0o644)
            if self.phone_like:  # adbd runs as shell: what it writes belongs to uid 2000
                for f in [path, *made]:
                    os.chown(f, SHELL_UID, SHELL_UID)
        except OSError as e:
            return c.sync_fail(f"couldn't create file {device_path}: {e.strerror}")
        c.send(b"OKAY" + bytes(4))

    def _used_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.sandbox.rglob("*") if f.is_file() and not f.is_symlink())


class _Conn:
    """Framing helpers over one client socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def recv_exact(self, n: int, eof_ok: bool = False) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                if eof_ok and not buf:
                    return None
                raise EOFError
            buf += chunk
        return bytes(buf)

    def request(self) -> str | None:
        head = self.recv_exact(4, eof_ok=True)
        if head is None:
            return None
        return self.recv_exact(int(head, 16)).decode()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def okay(self) -> None:
        self.send(b"OKAY")

    def okay_block(self, text: str) -> None:
        data = text.encode()
        self.send(b"OKAY" + f"{len(data):04x}".encode() + data)

    def fail(self, msg: str) -> None:
        data = msg.encode()
        self.send(b"FAIL" + f"{len(data):04x}".encode() + data)

    def sync_fail(self, msg: str) -> None:
        data = msg.encode()
        self.send(b"FAIL" + struct.pack("<I", len(data)) + data)
