"""Versions of the stack a program or a run depends on: recorded in manifests and records."""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from pathlib import Path


@functools.cache
def stack() -> dict[str, str]:
    out = {"harness": version("harness"), "python": platform.python_version()}
    for dist in ("torch", "executorch", "torchao"):
        out[dist] = version(dist)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def version(dist: str) -> str:
    """An installed distribution's version (the harness's own comes from its install, as pip shows it).

    Reads the `Version:` of the first NAME-*.dist-info along sys.path, as importlib.metadata.version does, without
    its import and entry-point machinery (30 ms of every `harness run`); anything else (an .egg-info) goes to it."""
    want = _norm(dist)
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and _norm(name[:-len(".dist-info")].partition("-")[0]) == want:
                try:
                    with open(os.path.join(entry or ".", name, "METADATA"), encoding="utf-8") as f:
                        for line in f:
                            if line.startswith("Version:"):
                                return line.split(":", 1)[1].strip()
                            if not line.strip():  # the headers end at the first blank line
                                break
                except OSError:
                    pass
    from importlib import metadata

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
