"""A child process that must not outlive its parent, even when the parent is killed with SIGKILL."""

from __future__ import annotations

import ctypes
import os

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int, parent_pid_env: str) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux prctl). Returns False when the
    parent named by the environment variable parent_pid_env is already gone (it died before prctl took effect):
    the caller should then exit at once. Where prctl is unavailable, nothing is asked and True is returned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except OSError:
        return True
    parent = os.environ.get(parent_pid_env)
    return not (parent and os.getppid() != int(parent))
