"""`harness ARGS` as a user runs it, in its own process, and the one line a refusal prints."""

from __future__ import annotations

import subprocess
import sys


def harness(*args: str) -> list[str]:
    """The command line of `harness ARGS` with this interpreter (for subprocess, shlex.join or a namespace)."""
    return [sys.executable, "-m", "harness.cli", *args]


def run_harness(*args: str) -> subprocess.CompletedProcess:
    """`harness ARGS` as a user runs it, in its own process."""
    return subprocess.run(harness(*args), capture_output=True, text=True, timeout=600)


def one_error(p: subprocess.CompletedProcess) -> str:
    """The one `error:` line of a refusal (other stderr lines are progress), with no traceback anywhere."""
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    [line] = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    return line


def subcommands(cmd) -> list[tuple[str, object]]:
    """(name, command) of a click group's subcommands, sorted, through click's own lookup (the harness group imports
    its commands on first use, so its `.commands` dict holds only those used so far); [] for a plain command."""
    import click

    if not isinstance(cmd, click.Group):
        return []
    ctx = click.Context(cmd)
    return [(name, cmd.get_command(ctx, name)) for name in sorted(cmd.list_commands(ctx))]
