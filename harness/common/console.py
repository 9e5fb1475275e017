"""Quiet, consistent terminal output: one rich console, progress spinners, and silenced library chatter."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

from rich.console import Console

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def silence_libraries() -> None:
    """torch/torchao/executorch print warnings and load notices a user can't act on; keep them off the terminal."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # torch re-sets its loggers' levels on import, so per-logger levels don't hold: cut warnings off globally.
    # The harness itself speaks through rich, not logging.
    logging.disable(logging.WARNING)


@contextlib.contextmanager
def status(message: str):
    """A spinner with elapsed time for anything that takes more than a few seconds; yields an update callback."""
    if not console.is_terminal:
        def update(msg: str) -> None:
            err_console.print(f"[dim]… {msg}[/dim]")

        update(message)
        yield update
        return
    with console.status(message) as st:
        yield lambda msg: st.update(msg)


@contextlib.contextmanager
def native_stderr_silenced():
    """ExecuTorch's C++ runtime logs cpuinfo probing straight to fd 2; keep it off the user's terminal."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
