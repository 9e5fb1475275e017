"""The work folder on a device is the user's own: the harness runs the runner bundle it finds there, so a folder
another user can write is a way for their code to run as you (docs/faults.md, "Security").

Every transport's work folder is created with mode 0700 and refused, in one line, when it is a symlink, owned by
someone else, or writable by group or others. Defaults are per user: on the host `$XDG_RUNTIME_DIR/harness`, else
`~/.cache/harness/work` ($HARNESS_CACHE/work); over ssh the same pair on the device; on Android the shell user's
`/data/local/tmp/harness` (only the shell user and root may write /data/local/tmp).
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from device_runners.base import Transport, TransportError


class UnsafeWorkdir(TransportError):
    """The work folder exists but is not safely the user's: nothing is pushed or run there."""


def host_default() -> str:
    """The host's per-user work folder: $XDG_RUNTIME_DIR/harness when that folder is the user's, else the cache."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        try:
            st = os.lstat(runtime)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022:
                return os.path.join(runtime, "harness")
        except OSError:
            pass
    return str(Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness") / "work")


def _verdict(path: str, is_link: bool, is_dir: bool, uid: int, mode: int, me: int) -> str | None:
    """Why `path` is not a safe work folder, or None."""
    fix = "remove it or name another with workdir = \"...\" in your devices.toml"
    if is_link:
        return f"work folder {path} is a symbolic link: {fix}"
    if not is_dir:
        return f"work folder {path} is not a folder: {fix}"
    if uid != me:
        return f"work folder {path} belongs to uid {uid}, not to you (uid {me}): the harness runs code from it; {fix}"
    if mode & 0o022:
        return (f"work folder {path} is writable by others (mode {stat.S_IMODE(mode):o}): the harness runs code from "
                f"it; `chmod 700 {path}` if nothing foreign is in it, or {fix}")
    return None


def ensure_local(path: str) -> str:
    """Create `path` (0700, parents too) on this machine if missing, then check that it is the user's alone."""
    p = Path(path)
    try:
        if not os.path.lexists(p):
            old = os.umask(0o077)
            try:
                p.mkdir(parents=True, exist_ok=True)
            finally:
                os.umask(old)
        st = os.lstat(p)
    except OSError as e:
        raise TransportError(f"cannot create the work folder {path}: {e.strerror or e}") from None
    why = _verdict(path, stat.S_ISLNK(st.st_mode), stat.S_ISDIR(st.st_mode), st.st_uid, st.st_mode, os.geteuid())
    if why:
        raise UnsafeWorkdir(why)
    return path


# On a device: mkdir under umask 077, then `id -u` and `ls -ldn` (toybox, busybox and coreutils all have both;
# stat's format flags differ between them).
def remote_check_command(path: str) -> str:
    q = shlex.quote(path)
    return (f"umask 077; [ -L {q} ] || mkdir -p {q} 2>&1 || exit 3; "
            f"echo \"@@me $(id -u)\"; echo \"@@ls $(ls -ldn {q})\"")


def prepare(transport: Transport) -> str:
    """Create the transport's work folder (0700) if missing and check it is the user's alone; raises UnsafeWorkdir
    (one line) when another user could write it. A transport with a prepare_workdir of its own (the host checks in
    Python, an iPhone app has its sandbox) uses it; every other one asks the device's shell."""
    own = getattr(transport, "prepare_workdir", None)
    if own is not None:
        return own()
    return prepare_by_shell(transport)


def prepare_by_shell(transport: Transport) -> str:
    path = transport.workdir()
    rc, out, err = transport.shell(remote_check_command(path), timeout=60)
    return check_remote_answer(path, rc, out, err)


def check_remote_answer(path: str, rc: int, out: str, err: str) -> str:
    """The verdict on remote_check_command's answer: the path when safe, else UnsafeWorkdir / TransportError."""
    me = ls = None
    for line in out.splitlines():
        if line.startswith("@@me "):
            me = line[5:].strip()
        elif line.startswith("@@ls "):
            ls = line[5:].split()
    if rc != 0 or not me or not me.isdigit() or not ls or len(ls) < 3:
        reason = (err or out).strip().splitlines()
        raise TransportError(f"cannot create the work folder {path}: {reason[-1] if reason else f'exit {rc}'}")
    perms, uid = ls[0], ls[2]
    if not uid.isdigit() or len(perms) < 10:
        raise TransportError(f"cannot read the owner of the work folder {path}: `ls -ldn` said {' '.join(ls)[:120]}")
    mode = (0o020 if perms[5] == "w" else 0) | (0o002 if perms[8] == "w" else 0)
    why = _verdict(path, perms[0] == "l", perms[0] == "d", int(uid), mode, int(me))
    if why:
        raise UnsafeWorkdir(why)
    return path
