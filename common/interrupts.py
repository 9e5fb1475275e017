"""Ctrl-C and SIGTERM as one exception, so every layer unwinds the same way: transports stop what they started on
the device, a run stores itself as `interrupted`, and the CLI exits 130."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

EXIT_CODE = 130  # what shells report for a command ended by SIGINT; the README documents it for both signals


class Interrupted(KeyboardInterrupt):
    """The user (SIGINT) or a supervisor (SIGTERM) asked this process to stop."""

    def __init__(self, signame: str = "SIGINT"):
        super().__init__(signame)
        self.signame = signame


def signame_of(exc: BaseException) -> str:
    return exc.signame if isinstance(exc, Interrupted) else "SIGINT"


def _raise(signum, frame) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install() -> None:
    """SIGINT and SIGTERM raise Interrupted in the main thread (SIGTERM would otherwise end Python without any
    cleanup, leaving the runner behind)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _raise)
        signal.signal(signal.SIGTERM, _raise)


def exiting(code: int) -> None:
    """The CLI has said what it had to and exits with `code`: a signal that comes now (torchrun stopping a rank, a
    second Ctrl-C) ends the process at once with that code, instead of raising Interrupted into interpreter
    shutdown and atexit handlers (torch's would print a traceback after the one error line)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def now(signum, frame) -> None:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)

    signal.signal(signal.SIGINT, now)
    signal.signal(signal.SIGTERM, now)


@contextlib.contextmanager
def deferred():
    """Hold SIGINT/SIGTERM while a stopped run cleans up (a second Ctrl-C must not leave the work folder behind);
    a signal that came meanwhile is raised on exit. Cleanup inside uses short timeouts, so this stays bounded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[str] = []
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in saved:
        signal.signal(s, lambda signum, frame: pending.append(signal.Signals(signum).name))
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    if pending:
        raise Interrupted(pending[0])
