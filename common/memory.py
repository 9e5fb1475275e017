"""This process's peak resident memory, and a fresh start for it (so one process can measure several jobs)."""

from __future__ import annotations

import resource


def reset_peak_rss() -> bool:
    """Start this process's peak RSS (VmHWM) again from its current RSS (Linux >= 4.0: clear_refs 5). False where
    it cannot be reset, so peak_rss_mb() keeps the process's peak since it started."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak RSS in MiB since the process started or reset_peak_rss(): VmHWM, else getrusage's ru_maxrss (which
    nothing resets)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
