"""Versions of the stack a program or a run depends on: recorded in manifests and records."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path


@functools.cache
def stack() -> dict[str, str]:
    out = {"harness": _version("harness"), "python": platform.python_version()}
    for dist in ("torch", "executorch", "torchao"):
        out[dist] = _version(dist)
    return out


def _version(dist: str) -> str:
    """An installed distribution's version (the harness's own comes from its install, as pip shows it)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


@functools.cache
def git_sha() -> str | None:
    """The harness checkout's commit (with '-dirty' when it has local changes), or None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
