"""A device reached over ssh (a Raspberry Pi, an ARM board): paramiko for commands, SFTP for files."""

from __future__ import annotations

import getpass
import posixpath
import re
import select
import shlex
import socket
import stat
import time
from pathlib import Path
from typing import Any, Callable

import paramiko

from device_runners.base import Transport, TransportError
from device_runners.remote_shell import (PID_GRACE_S, STOP_GRACE_S, LineSplitter, RemoteFileMissing,
                                          check_cleanup_path, kill_tree_command, split_pid_line, stop_tree_command,
                                          with_pid_line)

def parse_address(address: str) -> tuple[str, str, int]:
    """'user@host[:port]' (user optional, IPv6 in brackets) -> (user, host, port)."""
    user, _, hostport = address.rpartition("@")
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?", hostport)
    if not m or not hostport:
        raise TransportError(f"ssh address {address!r} is not user@host[:port]")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4) or 22)
    return user or getpass.getuser(), host, port


class SshTransport(Transport):
    """Commands through paramiko, files through SFTP; one connection, opened on first use."""

    kind = "ssh"

    def __init__(self, address: str, key_file: str | Path | None = None, password: str | None = None,
                 workdir: str | None = None, connect_timeout: float = 10):
        """workdir None: the device user's own, asked on first use: $XDG_RUNTIME_DIR/harness, else
        $HOME/.cache/harness/work, else ${TMPDIR:-/tmp}/harness-UID (checked like any work folder)."""
        self.address = address
        self.user, self.host, self.port = parse_address(address)
        self.key_file = str(key_file) if key_file else None
        self.password = password
        self._workdir = workdir
        self.connect_timeout = connect_timeout
        self._client: paramiko.SSHClient | None = None

    def workdir(self) -> str:
        if self._workdir is None:
            rc, out, err = self.shell(
                'if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -d "$XDG_RUNTIME_DIR" ] && [ -O "$XDG_RUNTIME_DIR" ]; then '
                'echo "$XDG_RUNTIME_DIR/harness"; elif [ -n "${HOME:-}" ] && [ -d "$HOME" ] && [ -w "$HOME" ]; then '
                'echo "$HOME/.cache/harness/work"; else echo "${TMPDIR:-/tmp}/harness-$(id -u)"; fi', timeout=30)
            path = out.strip().rstrip("/")
            self._workdir = path if rc == 0 and path.startswith("/") else "/tmp/harness"
        return self._workdir

    def _connect(self) -> paramiko.SSHClient:
        if self._client is not None and self._client.get_transport() and self._client.get_transport().is_active():
            return self._client
        self.close()
        client = paramiko.SSHClient()
        client.load_system_host_keys()  # a changed key of a known host still fails (BadHostKeyException)
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        explicit = bool(self.key_file or self.password)
        try:
            client.connect(self.host, port=self.port, username=self.user, key_filename=self.key_file,
                           password=self.password, timeout=self.connect_timeout,
                           banner_timeout=self.connect_timeout, auth_timeout=self.connect_timeout,
                           look_for_keys=not explicit, allow_agent=not explicit)
        except paramiko.AuthenticationException as e:
            how = f"key {self.key_file}" if self.key_file else "password" if self.password else "agent/default keys"
            raise TransportError(f"ssh {self.address}: authentication failed for user {self.user} ({how}): {e}") \
                from None
        except socket.gaierror as e:
            raise TransportError(f"ssh {self.address}: unknown host {self.host} ({e.strerror})") from None
        except (socket.timeout, TimeoutError):
            raise TransportError(f"ssh {self.address}: no answer within {self.connect_timeout:g} s") from None
        except paramiko.ssh_exception.NoValidConnectionsError as e:
            raise TransportError(f"ssh {self.address}: connection refused ({e.strerror})") from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            # a server dying mid-handshake closes the socket with no message: name the exception then
            raise TransportError(f"ssh {self.address}: cannot connect: {e or type(e).__name__}") from None
        client.get_transport().set_keepalive(30)  # long runs: keep NATs and idle timeouts from dropping us
        self._client = client
        return client

    def _dropped(self, e: BaseException | None = None) -> TransportError:
        self.close()
        why = f": {e}" if e else ""
        return TransportError(f"ssh {self.address}: connection lost{why}")

    def shell(self, cmd: str, timeout: float | None = None,
              on_stderr: Callable[[str], None] | None = None) -> tuple[int, str, str]:
        """Run cmd on the board. stdin stays open: the remote watchdog (remote_shell.watchdog) reads it, so when this
        process dies, even by SIGKILL, sshd closes it and the command's process group is killed. An interrupt stops
        the command (SIGTERM, then SIGKILL) before it is re-raised."""
        client = self._connect()
        transport = client.get_transport()
        try:
            chan = transport.open_session(timeout=self.connect_timeout)
            chan.exec_command("exec sh -c " + shlex.quote(with_pid_line(cmd)))
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise self._dropped(e) from None
        out, err = bytearray(), bytearray()
        lines = LineSplitter(on_stderr)
        pid = None
        deadline = time.monotonic() + timeout if timeout is not None else None
        try:
            while True:
                done = chan.closed or (chan.eof_received and chan.status_event.is_set())
                while chan.recv_ready():
                    out += chan.recv(1 << 16)
                while chan.recv_stderr_ready():
                    chunk = chan.recv_stderr(1 << 16)
                    err += chunk
                    lines.feed(chunk)
                if pid is None:
                    pid, _ = split_pid_line(bytes(out[:200]))
                if done:
                    break
                now = time.monotonic()
                if deadline is not None and now > deadline and (pid is not None or now > deadline + PID_GRACE_S):
                    chan.close()
                    if pid is not None:
                        self._kill(pid)
                    raise TimeoutError(f"ssh {self.address}: `{cmd[:80]}` still running after {timeout:g} s (killed)")
                select.select([chan], [], [], 0.05)
            status = chan.recv_exit_status()
        except BaseException:  # an interrupt (or a callback's error): leave nothing running on the board
            if pid is not None:
                self._kill(pid, graceful=True)
            raise
        finally:
            chan.close()  # closes the command's stdin: its watchdog ends what is left of it
        if status == -1:
            # Channels close before the transport is marked inactive: give it a moment to tell a drop apart.
            for _ in range(20):
                if not transport.is_active():
                    raise self._dropped(transport.get_exception()) from None
                time.sleep(0.05)
        _, out_b = split_pid_line(bytes(out))
        return status, out_b.decode(errors="replace"), err.decode(errors="replace")

    def _kill(self, pid: int, graceful: bool = False) -> None:
        """Kill a command's tree; graceful: SIGTERM first, so the runner can write what it measured."""
        try:
            chan = self._connect().get_transport().open_session(timeout=self.connect_timeout)
            chan.exec_command(stop_tree_command(pid) if graceful else kill_tree_command(pid))
            chan.status_event.wait(STOP_GRACE_S + self.connect_timeout)  # bounded: an interrupt must not hang here
            chan.close()
        except (paramiko.SSHException, OSError, EOFError, TransportError):
            pass  # the connection went away; the command's fate is beyond reach

    def _sftp(self) -> paramiko.SFTPClient:
        try:
            return self._connect().open_sftp()
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise self._dropped(e) from None

    @staticmethod
    def _mkdir_p(sftp: paramiko.SFTPClient, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        current = "/" if path.startswith("/") else ""
        for part in parts:
            current = posixpath.join(current, part) if current else part
            try:
                sftp.stat(current)
            except FileNotFoundError:
                sftp.mkdir(current)

    def push(self, local: Path, remote: str) -> None:
        """Copy a file or a directory tree (keeping permission bits) to `remote`, creating parents."""
        local = Path(local)
        if not local.exists():
            raise FileNotFoundError(f"{local}: no such file to push to {self.address}")
        sftp = self._sftp()
        try:
            if local.is_dir():
                for path in sorted([local, *local.rglob("*")]):
                    rel = path.relative_to(local).as_posix()
                    target = remote if rel == "." else posixpath.join(remote, rel)
                    if path.is_dir():
                        self._mkdir_p(sftp, target)
                    else:
                        sftp.put(str(path), target)
                        sftp.chmod(target, stat.S_IMODE(path.stat().st_mode))
            else:
                self._mkdir_p(sftp, posixpath.dirname(remote))
                sftp.put(str(local), remote)
                sftp.chmod(remote, stat.S_IMODE(local.stat().st_mode))
        except (paramiko.SSHException, EOFError, socket.error) as e:
            if isinstance(e, (FileNotFoundError, PermissionError)):
                raise
            raise self._dropped(e) from None
        finally:
            sftp.close()

    def pull(self, remote: str, local: Path) -> None:
        """Copy one file back; a missing remote file raises RemoteFileMissing naming it."""
        sftp = self._sftp()
        try:
            try:
                sftp.stat(remote)
            except FileNotFoundError:
                raise RemoteFileMissing(f"{remote}: no such file on {self.address}") from None
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            sftp.get(remote, str(local))
        except (paramiko.SSHException, EOFError) as e:
            raise self._dropped(e) from None
        finally:
            sftp.close()

    def cleanup(self, remote_dir: str) -> None:
        """Delete a scratch directory under the workdir."""
        path = check_cleanup_path(remote_dir, self.workdir())
        rc, _, err = self.shell(f"rm -rf -- {shlex.quote(path)}", timeout=60)
        if rc != 0:
            raise TransportError(f"ssh {self.address}: cannot remove {path}: {err.strip()}")

    def info(self) -> dict[str, Any]:
        from device_runners.devinfo import DEVINFO_SCRIPT, parse_devinfo
        rc, out, err = self.shell(DEVINFO_SCRIPT, timeout=60)
        info = parse_devinfo(out)
        info.update(transport="ssh", address=self.address)
        return info

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # closing a dead connection may raise anything paramiko has
                pass
            self._client = None
