"""Files written whole or not at all: unique temporary siblings, renamed into place, and stale ones swept up.

Every write-then-rename in the harness goes through here, so two processes writing into one folder never share a
temporary name, a killed process leaves nothing that a later one mistakes for its own, and a disk or permission fault
is one line naming the path (StoreError), never a traceback.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from common.errors import StoreError

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def cache_dir(name: str) -> Path:
    """The harness's cache for one kind of thing: $HARNESS_CACHE/NAME, else ~/.cache/harness/NAME (not created)."""
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness") / name


def temp_sibling(path: Path) -> Path:
    """A fresh temporary name beside path: .NAME.PID-RANDOM.tmp (hidden, unique per process and call)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(folder: Path) -> list[Path]:
    """Remove temporaries (temp_sibling names) whose writing process is gone; returns what was removed."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP.match(p.name)
        if m and int(m["pid"]) != os.getpid() and not pid_alive(int(m["pid"])):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def fault(path: Path, e: OSError, what: str = "write") -> StoreError:
    """One line for an environment fault at path: what failed and what to do."""
    hint = {28: "free disk space", 30: "the file system is read-only", 13: "fix its permissions",
            20: "a parent is a file, not a folder", 2: "a parent folder does not exist"}.get(e.errno or 0, "")
    return StoreError(f"cannot {what} {path}: {e.strerror or e}" + (f" ({hint}, or choose another folder)" if hint
                                                                       else ""))


def ensure_dir(folder: Path, what: str = "create the folder") -> Path:
    """folder, created if needed and checked writable; StoreError naming it otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fault(folder, e, what) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write into {folder}: it is read-only for this user (choose another folder)")
    return folder


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write data to path whole: a unique temporary beside it, then a rename; nothing partial on any failure."""
    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)

    _into_place(Path(path), fill)


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy src to dst whole (unique temporary, then rename)."""
    import shutil

    _into_place(Path(dst), lambda tmp: shutil.copyfile(src, tmp))


def _into_place(path: Path, fill) -> None:
    """fill(a unique temporary beside path), then rename it to path; on any fault, no temporary is left."""
    tmp = temp_sibling(path)
    try:
        fill(tmp)
        tmp.replace(path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise fault(path, e) from None
