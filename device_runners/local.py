"""The host itself as a device: files are copied, commands run in a local shell."""

from __future__ import annotations

import os
import platform
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from device_runners.base import Transport, TransportError
from device_runners.devinfo import devinfo_text_here, parse_devinfo
from device_runners.remote_shell import STOP_GRACE_S, LineSplitter, check_cleanup_path, watchdog


def _copy(src: Path, dst: Path) -> None:
    """Copy a file or tree. A file is written beside its destination and renamed over it: a symlink planted at
    the destination is replaced, never followed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        for f in sorted(p for p in src.rglob("*") if p.is_file() or p.is_symlink()):
            _copy(f, dst / f.relative_to(src))
        return
    if src.is_symlink():
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(os.readlink(src), tmp)
    else:
        fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            shutil.copy2(src, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, dst)


def run_shell(cmd: str, timeout: float | None, cwd: str | None = None, env: dict[str, str] | None = None,
              on_stderr: Callable[[str], None] | None = None) -> tuple[int, str, str]:
    """`sh -c cmd` in its own session, so a timeout or an interrupt ends the whole tree (runner, qemu, children).

    A watchdog in that session holds the read end of a pipe whose write end only this process has: if the harness
    dies, even by SIGKILL, the read returns and the watchdog kills the session's process group. on_stderr gets each
    stderr line as it arrives (progress from the runner); the whole stderr is returned too.
    On KeyboardInterrupt the group gets SIGTERM (the runners write what they measured), then SIGKILL after
    STOP_GRACE_S; the interrupt is re-raised once nothing of the command is left.
    """
    r, w = os.pipe()
    try:
        # the pipe is the shell's stdin (dash redirects only fds 0-9); the command itself gets /dev/null
        proc = subprocess.Popen(["sh", "-c", watchdog(0) + cmd], stdin=r, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
    except OSError as e:
        os.close(w)
        raise TransportError(f"cannot start a local shell: {e}") from None
    finally:
        os.close(r)
    try:
        out, err = _collect(proc, timeout, on_stderr)
    except TimeoutError:
        _kill_group(proc.pid, signal.SIGKILL)
        raise TimeoutError(f"command timed out after {timeout:g} s and was killed: {cmd[:200]}") from None
    except BaseException:  # KeyboardInterrupt, Interrupted, a callback's error: nothing may outlive us
        _stop_group(proc)
        raise
    finally:
        os.close(w)  # the watchdog (if still there) now kills what is left of the group
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        for f in (proc.stdout, proc.stderr):
            f.close()
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _collect(proc: subprocess.Popen, timeout: float | None, on_stderr) -> tuple[bytes, bytes]:
    """Read stdout and stderr until both close; stderr lines go to on_stderr as they come."""
    deadline = None if timeout is None else time.monotonic() + timeout
    out, err, lines = bytearray(), bytearray(), LineSplitter(on_stderr)
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise TimeoutError
            for key, _ in sel.select(wait):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                key.data.extend(chunk)
                if key.data is err:
                    lines.feed(chunk)
    proc.wait()
    return bytes(out), bytes(err)


def _kill_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when it has no processes left."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_alive(pgid: int) -> bool:
    """True while process group pgid has a member that is not a zombie (orphans' zombies wait for init)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and fields[2] == str(pgid):
            return True
    return False


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the group, wait up to STOP_GRACE_S for its processes to exit, then SIGKILL it."""
    _kill_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline:
        try:
            proc.wait(timeout=0.02)  # reap our own child
        except subprocess.TimeoutExpired:
            pass
        if not group_alive(proc.pid):
            return
    _kill_group(proc.pid, signal.SIGKILL)


class LocalTransport(Transport):
    kind = "local"
    emulated = False
    abi = "x86_64" if platform.machine() in ("x86_64", "AMD64") else "arm64-v8a"

    def __init__(self, workdir: str | None = None):
        """workdir None: the user's own (device_runners.workdir.host_default)."""
        from device_runners.workdir import host_default

        self._workdir = workdir or host_default()

    def prepare_workdir(self) -> str:
        from device_runners.workdir import ensure_local

        return ensure_local(self._workdir)

    def workdir(self) -> str:
        return self._workdir

    def local_folder(self, remote: str) -> Path:
        """Where a device path is on this machine (the same place): bundle checks read it in-process."""
        return Path(remote)

    def push(self, local: Path, remote: str) -> None:
        local = Path(local)
        if not local.exists():
            raise TransportError(f"cannot push {local}: no such file")
        _copy(local, Path(remote))

    def pull(self, remote: str, local: Path) -> None:
        if not Path(remote).exists():
            raise TransportError(f"cannot pull {remote}: no such file on the {self.kind} device")
        _copy(Path(remote), Path(local))

    def shell(self, cmd: str, timeout: float | None = None,
              on_stderr: Callable[[str], None] | None = None) -> tuple[int, str, str]:
        return run_shell(cmd, timeout, on_stderr=on_stderr)

    def cleanup(self, remote_dir: str) -> None:
        """Delete a scratch directory under the workdir (refuses anything outside it)."""
        shutil.rmtree(check_cleanup_path(remote_dir, self._workdir), ignore_errors=True)

    def info(self) -> dict[str, Any]:
        info = parse_devinfo(devinfo_text_here())  # DEVINFO_SCRIPT's sections, read without starting processes
        info.update(transport=self.kind, emulated=False, model=f"host {info.get('hostname', '')}".strip())
        return info
