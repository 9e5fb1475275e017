"""Quiet, consistent terminal output: one rich console, progress spinners, and silenced library chatter."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import warnings

from rich.console import Console
from rich.markup import escape

# soft_wrap: never insert line breaks. rich hard-wraps at 80 columns when output is not a terminal, which broke
# `harness run ... | grep` ("load 4.8 \nms"); a terminal wraps long lines by itself.
console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
# Piped output gets a status line only when the step changes or every this many seconds (not twice a second).
PIPED_STATUS_EVERY_S = 5.0


def silence_libraries() -> None:
    """torch/torchao/executorch print warnings and load notices a user can't act on; keep them off the terminal."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # "Filter: 100%|..." on stderr
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # torch re-sets its loggers' levels on import, so per-logger levels don't hold: cut warnings off globally.
    # The harness itself speaks through rich, not logging.
    logging.disable(logging.WARNING)


def _step(msg: str) -> str:
    """What stays the same while a step reports new counts ("timing 10/50, 3 s" and "timing 20/50, 4 s")."""
    return re.sub(r"\d+(\.\d+)?", "#", msg)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


@contextlib.contextmanager
def status(message: str):
    """A spinner for anything that takes more than a few seconds, with the time spent in the current step and in
    all; yields an update callback (a new text starts a new step unless only its numbers changed)."""
    t0 = time.monotonic()
    step = {"name": _step(message), "at": t0}
    if not console.is_terminal:
        last = {"step": None, "at": 0.0}

        def update(msg: str) -> None:
            now = time.monotonic()
            if _step(msg) == last["step"] and now - last["at"] < PIPED_STATUS_EVERY_S:
                return
            last.update(step=_step(msg), at=now)
            err_console.print(f"[dim]… {escape(msg)}  [{_clock(now - t0)}][/dim]")

        update(message)
        yield update
        return

    def line(msg: str) -> str:
        now = time.monotonic()
        if _step(msg) != step["name"]:
            step.update(name=_step(msg), at=now)
        total = f", {_clock(now - t0)} in all" if step["at"] > t0 + 0.5 else ""
        return f"{escape(msg)}  [dim]{_clock(now - step['at'])}{total}[/dim]"

    current = {"msg": message}
    with console.status(line(message)) as st:
        def update(msg: str) -> None:
            current["msg"] = msg
            st.update(line(msg))

        ticker = _Ticker(lambda: st.update(line(current["msg"])))  # the clock moves while a step runs
        try:
            yield update
        finally:
            ticker.stop()


class _Ticker:
    """Calls fn once a second on a daemon thread until stop()."""

    def __init__(self, fn):
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn) -> None:
        while not self._stop.wait(1.0):
            fn()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def native_stderr_silenced():
    """ExecuTorch's C++ runtime logs cpuinfo probing (`[cpuinfo_utils.cpp:71] Reading file ...`) to stderr; keep it
    off the user's terminal. Both ways it gets there are closed: fd 2 itself, and Python's sys.stderr, to which the
    pybindings redirect std::cerr while a call runs, flushing after every `<<` piece (under a rich spinner each piece
    became a line of its own: `[`, `cpuinfo_utils.cpp`, `:`, `71`, `]`, ...)."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved_py, quiet = sys.stderr, open(os.devnull, "w")
    try:
        os.dup2(devnull, 2)
        sys.stderr = quiet
        yield
    finally:
        sys.stderr = saved_py
        quiet.close()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
