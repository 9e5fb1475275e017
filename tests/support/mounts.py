"""Hostile file systems made for real: mounts in a private mount namespace (unshare -m, as root), gone with it."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path


def in_namespace(setup: str, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `setup` (shell, mounts) then argv inside a private mount namespace; mounts vanish with it."""
    script = f"set -e; {setup}; exec {shlex.join(argv)}"
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def read_only(d: Path) -> str:
    """The setup that makes folder `d` read-only inside the namespace."""
    return f"mount --bind {d} {d} && mount -o remount,ro,bind {d}"
