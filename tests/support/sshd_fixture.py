"""A real OpenSSH server on 127.0.0.1 with a throwaway key, for the ssh transport tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")  # not on PATH for non-root users, so shutil.which would miss it


def require_sshd() -> None:
    """require_tool semantics for sshd: skip on a developer machine, fail in CI."""
    if SSHD.is_file():
        return
    msg = f"missing {SSHD}: run `make system-deps` as root (apt package openssh-server)"
    if os.environ.get("HARNESS_REQUIRE_DEVICES") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_key(path: Path) -> str:
    """A new ed25519 private key at `path` (mode 600); returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "harness-test", "-f", str(path)],
                   check=True, capture_output=True)
    return Path(f"{path}.pub").read_text()


def procs_with(marker: str) -> list[int]:
    """Pids on this machine whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def when_running(marker: str, action, timeout: float = 300.0) -> threading.Thread:
    """Call `action` once a process whose command line contains `marker` runs on this machine (event-driven, so a
    slow or loaded host cannot make the action land before the command it should interrupt)."""
    def watch():
        deadline = time.monotonic() + timeout
        while not procs_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        action()
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class Sshd:
    """`with Sshd(tmp) as s:` an sshd on s.port that accepts s.key for the current user."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.port = free_port()
        self.user = os.environ.get("USER") or __import__("getpass").getuser()
        self.key = self.root / "client_key"
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def __enter__(self) -> "Sshd":
        self.root.mkdir(parents=True, exist_ok=True)
        host_key = self.root / "host_key"
        write_key(host_key)
        authorized = self.root / "authorized_keys"
        authorized.write_text(write_key(self.key))
        cfg = self.root / "sshd_config"
        cfg.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"AuthorizedKeysFile {authorized}", f"PidFile {self.root / 'sshd.pid'}",
            "UsePAM no", "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp", "LogLevel ERROR", ""]))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.root / "sshd.log", "wb"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not listen within 10 s")

    def kill(self) -> None:
        """Kill sshd and every connection it serves (each lives in its own session, so killpg would miss them)."""
        proc, self.proc = self.proc, None  # a Timer thread and __exit__ may both call kill(): one does the work
        if proc is None:
            return
        # The servers first, so a client sees the connection drop rather than its command's exit status.
        victims = [proc.pid, *_descendants(proc.pid)]
        for pid in sorted(victims, key=lambda p: _comm(p) != "sshd"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()

    def __exit__(self, *exc) -> None:
        self.kill()
