"""The host itself as a device: files are copied, commands run in a local shell."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from device_runners.base import Transport, TransportError
from device_runners.devinfo import DEVINFO_SCRIPT, parse_devinfo
from device_runners.remote_shell import check_cleanup_path


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)


def run_shell(cmd: str, timeout: float | None, cwd: str | None = None,
              env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`sh -c cmd` in its own process group, so a timeout kills the whole tree (runner, qemu, children)."""
    try:
        proc = subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
                                start_new_session=True)
    except OSError as e:
        raise TransportError(f"cannot start a local shell: {e}") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise TimeoutError(f"command timed out after {timeout:g} s and was killed: {cmd[:200]}") from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


class LocalTransport(Transport):
    kind = "local"
    emulated = False
    abi = "x86_64" if platform.machine() in ("x86_64", "AMD64") else "arm64-v8a"

    def __init__(self, workdir: str = "/tmp/harness"):
        self._workdir = workdir

    def workdir(self) -> str:
        return self._workdir

    def push(self, local: Path, remote: str) -> None:
        local = Path(local)
        if not local.exists():
            raise TransportError(f"cannot push {local}: no such file")
        _copy(local, Path(remote))

    def pull(self, remote: str, local: Path) -> None:
        if not Path(remote).exists():
            raise TransportError(f"cannot pull {remote}: no such file on the {self.kind} device")
        _copy(Path(remote), Path(local))

    def shell(self, cmd: str, timeout: float | None = None) -> tuple[int, str, str]:
        return run_shell(cmd, timeout)

    def cleanup(self, remote_dir: str) -> None:
        """Delete a scratch directory under the workdir (refuses anything outside it)."""
        shutil.rmtree(check_cleanup_path(remote_dir, self._workdir), ignore_errors=True)

    def info(self) -> dict[str, Any]:
        rc, out, err = run_shell(DEVINFO_SCRIPT, timeout=30)
        info = parse_devinfo(out)
        info.update(transport=self.kind, emulated=False, model=f"host {info.get('hostname', '')}".strip())
        return info
