"""What the ssh and adb transports share: a command wrapper that makes a timed-out command killable with all its
children, the kill itself, and the guard that keeps cleanup inside the harness workdir."""

from __future__ import annotations

import posixpath
import re

from device_runners.base import TransportError

# The first stdout line of every command carries the pid of the shell running it: on a timeout we kill that
# shell's whole process tree (and its process group), so nothing keeps running on the device.
PID_MARK = "@@harness-pid:"
# A command that times out before its pid line arrived (a slow session start) gets this long to send it, so it can
# still be killed rather than left running.
PID_GRACE_S = 10.0
_PID_LINE = re.compile(rb"^" + re.escape(PID_MARK.encode()) + rb"(\d+)\n", re.M)


class RemoteFileMissing(TransportError, FileNotFoundError):
    """A file to pull is not on the device: catchable as either, like LocalTransport's TransportError."""


def with_pid_line(cmd: str) -> str:
    """`cmd` as a POSIX sh script that first prints its shell's pid; `exit $?` keeps sh from exec-ing the last
    command, so a command killed by a signal still reports 128+signal instead of no status at all."""
    return f"echo {PID_MARK}$$\n{cmd}\nexit $?"


def split_pid_line(out: bytes) -> tuple[int | None, bytes]:
    """The pid printed by with_pid_line, and stdout without that line."""
    m = _PID_LINE.search(out)
    if not m:
        return None, out
    return int(m.group(1)), out[:m.start()] + out[m.end():]


def kill_tree_command(pid: int) -> str:
    """Kill a shell and every descendant, leaves first (so none is re-parented away), then its process group."""
    return (f"k() {{ for c in $(pgrep -P $1 2>/dev/null); do k $c; done; kill -9 $1 2>/dev/null; }}; "
            f"k {pid}; kill -9 -- -{pid} 2>/dev/null; true")


def check_cleanup_path(remote_dir: str, workdir: str) -> str:
    """Refuse to delete anything outside the harness workdir (a typo must never become `rm -rf /`)."""
    path = posixpath.normpath(remote_dir)
    root = posixpath.normpath(workdir)
    if not path.startswith("/") or root in ("/", "") or not (path == root or path.startswith(root + "/")):
        raise ValueError(f"cleanup({remote_dir!r}) is outside the harness workdir {workdir}")
    return path
