"""What the ssh and adb transports share: a command wrapper that makes a timed-out command killable with all its
children, the kill itself, and the guard that keeps cleanup inside the harness workdir."""

from __future__ import annotations

import posixpath
import re
from typing import Callable

from device_runners.base import TransportError

# The first stdout line of every command carries the pid of the shell running it: on a timeout we kill that
# shell's whole process tree (and its process group), so nothing keeps running on the device.
PID_MARK = "@@harness-pid:"
# A command that times out before its pid line arrived (a slow session start) gets this long to send it, so it can
# still be killed rather than left running.
PID_GRACE_S = 10.0
_PID_LINE = re.compile(rb"^" + re.escape(PID_MARK.encode()) + rb"(\d+)\n", re.M)


class LineSplitter:
    """Bytes as they arrive -> complete lines to a callback (stderr streamed for the runner's progress lines)."""

    def __init__(self, on_line: Callable[[str], None] | None):
        self.on_line, self._rest = on_line, b""

    def feed(self, chunk: bytes) -> None:
        if self.on_line is None:
            return
        *lines, self._rest = (self._rest + chunk).split(b"\n")
        for line in lines:
            self.on_line(line.decode(errors="replace"))


class RemoteFileMissing(TransportError, FileNotFoundError):
    """A file to pull is not on the device: catchable as either, like LocalTransport's TransportError."""


# How long a stopped command gets to exit on SIGTERM (the runners then write what they measured) before SIGKILL.
STOP_GRACE_S = 1.5


def watchdog(fd: int | str = 0) -> str:
    """Shell lines that tie a command's life to its caller: a background sh blocks reading `fd` (a pipe whose other
    end only the harness holds, or the channel's stdin) and kills its whole process group when that read returns,
    i.e. when the harness exits, even by SIGKILL. The command itself then runs with stdin from /dev/null.
    (A non-interactive sh gives background lists /dev/null as stdin, hence the explicit dup to fd 9 first.) The
    watchdog is a new `sh` process, not a forked subshell: mksh (Android's shell) keeps copies of the caller's stdout
    and stderr in high fds that a subshell inherits, so a subshell would hold the output pipes open and the command
    would never seem to end; an exec'd sh gets only what its redirections give it."""
    return (f"exec 9<&{fd}\nsh -c 'read _; kill -KILL 0' <&9 9<&- >/dev/null 2>&1 &\n"
            "exec 9<&- </dev/null\n")


def with_pid_line(cmd: str) -> str:
    """`cmd` as a POSIX sh script that first prints its shell's pid and starts a watchdog on stdin; `exit $?`
    keeps sh from exec-ing the last command, so a command killed by a signal still reports 128+signal."""
    return f"echo {PID_MARK}$$\n{watchdog(0)}{cmd}\nexit $?"


def split_pid_line(out: bytes) -> tuple[int | None, bytes]:
    """The pid printed by with_pid_line, and stdout without that line."""
    m = _PID_LINE.search(out)
    if not m:
        return None, out
    return int(m.group(1)), out[:m.start()] + out[m.end():]


def kill_tree_command(pid: int) -> str:
    """Kill a shell and every descendant, leaves first (so none is re-parented away), then its process group."""
    return (f"k() {{ for c in $(pgrep -P $1 2>/dev/null); do k $c; done; kill -9 $1 2>/dev/null; }}; "
            f"k {pid}; kill -9 -{pid} 2>/dev/null; true")  # `kill -9 -PGID`: dash's kill takes no `--`


# True while process group $1 has a member that is not a zombie (an orphan's zombie lingers until init reaps it,
# about once a second on some machines): the stop below waits for the runner, not for init.
_GROUP_ALIVE = ('alive() { for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null || continue; '
                'l=${l##*) }; set -- $l; [ "$1" != Z ] && [ "$3" = "$g" ] && return 0; done; return 1; }; ')


def stop_tree_command(pid: int, grace_s: float = STOP_GRACE_S) -> str:
    """SIGTERM a command's process group (the runner then writes what it measured so far), give it `grace_s` to
    exit, then kill whatever is left of it (kill_tree_command)."""
    ticks = max(1, int(grace_s * 10))
    return (f"{_GROUP_ALIVE}g={pid}; kill -TERM -{pid} 2>/dev/null; i=0; "
            f"while alive && [ $i -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done; "
            + kill_tree_command(pid))


def check_cleanup_path(remote_dir: str, workdir: str) -> str:
    """Refuse to delete anything outside the harness workdir (a typo must never become `rm -rf /`)."""
    path = posixpath.normpath(remote_dir)
    root = posixpath.normpath(workdir)
    if not path.startswith("/") or root in ("/", "") or not (path == root or path.startswith(root + "/")):
        raise ValueError(f"cleanup({remote_dir!r}) is outside the harness workdir {workdir}")
    return path
