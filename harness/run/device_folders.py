"""A run's folders: its scratch folder on the host and its run folder on the device (named for this host and
process, so the folders a killed harness left can be told from live ones and swept), and the small file and shell
steps a run takes there."""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from device_runners.base import Transport, TransportError
from common.errors import DeviceError

def sweep_host_run_folders() -> None:
    """Remove the local scratch folders of runs whose harness process is gone (killed with -9, say)."""
    import re
    import shutil

    for d in Path(tempfile.gettempdir()).glob("harness-run-*"):
        m = re.match(r"harness-run-(\d+)-", d.name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


def run_folder_prefix(pid: int | None = None) -> str:
    """A device-side run folder's name starts with this host's and this process's mark (h<host hash>-p<pid>-), so
    a later run from the same host can tell the folders of a harness that was killed from those of one running."""
    return f"{_host_mark()}-p{os.getpid() if pid is None else pid}-"


def _host_mark() -> str:
    import hashlib
    import socket

    return "h" + hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def sweep_device_run_folders(transport: Transport, runs: str) -> None:
    """Remove the device-side run folders (program, inputs: ~100 MB for the full-size model) that a harness on this
    host left when it was killed (-9): their process is gone. Other hosts' and live processes' folders stay."""
    import re

    try:
        rc, out, _ = transport.shell(f"ls -1 {shlex.quote(runs)} 2>/dev/null", timeout=30)
    except (TransportError, TimeoutError, OSError):
        return
    mine = re.compile(re.escape(_host_mark()) + r"-p(\d+)-[0-9a-f]+$")
    stale = []
    for name in out.split() if rc == 0 else []:
        m = mine.match(name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            stale.append(f"{runs}/{name}")
        except PermissionError:
            pass  # another user's live harness
    if stale:
        cleanup(transport, " ".join(shlex.quote(d) for d in stale), quoted=True)


def shell_ok(transport: Transport, cmd: str, timeout: float, device: str) -> str:
    rc, out, err = transport.shell(cmd, timeout=timeout)
    if rc != 0:
        raise DeviceError(f"device {device}: `{cmd}` failed: {(err or out).strip()[:200]}")
    return out


def pull_text(transport: Transport, remote: str, local: Path, timeout: float = 60) -> str | None:
    rc, _, _ = transport.shell(f"test -f {shlex.quote(remote)}", timeout=timeout)
    if rc != 0:
        return None
    transport.pull(remote, local)
    return local.read_text()


def cleanup(transport: Transport, run_dir: str, quoted: bool = False) -> None:
    try:
        transport.shell(f"rm -rf {run_dir if quoted else shlex.quote(run_dir)}", timeout=30)
    except (TransportError, TimeoutError, OSError):
        pass  # the device went away: nothing left to clean from here
