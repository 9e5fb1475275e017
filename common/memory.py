"""This process's resident memory: now, at its peak, a fresh start for the peak (so one process can measure several
jobs), and freed heap handed back between jobs."""

from __future__ import annotations

import resource


def _status_mb(field: str) -> float | None:
    """A kB field of /proc/self/status (VmRSS, VmHWM) in MiB; None where /proc is not there."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mb() -> float | None:
    """Resident memory now (VmRSS), in MiB."""
    return _status_mb("VmRSS")


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
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def trim_heap() -> None:
    """Hand freed heap pages back to the kernel: glibc keeps them mapped below live allocations (malloc_trim(0));
    elsewhere nothing is done. A process that runs one job after another then starts each from its own size."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
