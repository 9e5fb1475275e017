"""`--nproc N`: rerun this very command under torchrun (torch.distributed.run) and make sure it and its workers end.

The workers are `python -m harness.cli ... COMMAND` with the same options minus --nproc; torchrun's own banner and
failure report are dropped, the workers' lines are passed through (rank 0 alone prints), and a worker's one-line
error stays one line. torchrun runs in its own session and dies with us (PR_SET_PDEATHSIG); its workers, which it
starts in sessions of their own, die with it (model/distill/dist.py sets the same on them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import click

from common.errors import BadInput

_TEE = re.compile(r"^\[default(\d+)\]:(.*)$", re.S)


def worker_args(ctx: click.Context, drop: tuple[str, ...] = ("nproc",)) -> list[str]:
    """The command line that gives `ctx.command` the parameters it was given (every option spelled out)."""
    out: list[str] = []
    for p in ctx.command.params:
        if not isinstance(p, click.Option) or p.name in drop:
            continue
        v = ctx.params.get(p.name)
        if v is None:
            continue
        if p.is_flag and p.secondary_opts:
            out.append(p.opts[0] if v else p.secondary_opts[0])
        elif p.is_flag:
            if v:
                out.append(p.opts[0])
        else:
            out += [p.opts[0], str(v)]
    return out


def check_nproc(nproc: int) -> None:
    """One process per GPU with NCCL, per CPU core with gloo: more only slows every rank down (or cannot start)."""
    from model.distill.dist import usable_slots

    if nproc < 1:
        raise BadInput(f"--nproc must be at least 1 (got {nproc})")
    slots, what = usable_slots()
    if nproc > slots:
        raise BadInput(f"--nproc {nproc}: this host has {slots} {what} (one process each); use --nproc {slots} "
                       "or fewer, or several hosts through torchrun (docs/training.md)")


def launch(ctx: click.Context, nproc: int) -> int:
    """Run the current command on `nproc` local processes through torchrun; returns the exit code to end with."""
    check_nproc(nproc)
    root = ctx.find_root()
    results = (root.obj or {}).get("results", "results")
    logs = tempfile.mkdtemp(prefix="harness-torchrun-")
    argv = [sys.executable, "-m", "harness.commands.torchrun", "--standalone", "--nproc-per-node", str(nproc),
            "--tee", "3", "--log-dir", logs, "-m", "harness.cli", "--results", str(results), ctx.info_name,
            *worker_args(ctx)]
    env = {"TORCH_CPP_LOG_LEVEL": "ERROR",  # DDP's once-per-process note on find_unused_parameters
           **os.environ, "HARNESS_LAUNCHER_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True, text=True, errors="replace")
    errors: list[str] = []
    agent_lines: list[str] = []

    def pump(stream, sink):
        for line in stream:
            m = _TEE.match(line)
            if not m:
                agent_lines.append(line.rstrip())
                continue
            text = m.group(2)
            if text.startswith("error: "):
                if text in errors:  # every rank refuses the same bad input: say it once
                    continue
                errors.append(text)
            sink.write(text)
            sink.flush()

    pumps = [threading.Thread(target=pump, args=(proc.stdout, sys.stdout), daemon=True),
             threading.Thread(target=pump, args=(proc.stderr, sys.stderr), daemon=True)]
    for t in pumps:
        t.start()
    try:
        rc = proc.wait()
    finally:
        _end(proc)
        for t in pumps:
            t.join(timeout=5)
        shutil.rmtree(logs, ignore_errors=True)
    if rc == 0:
        return 0
    if errors:
        return 2  # the worker's one line is out already
    cause = next((ln.strip() for ln in reversed(agent_lines) if "exitcode" in ln), f"exit {rc}")
    click.echo(f"error: a training process failed under torchrun ({cause})", err=True)
    return rc if rc > 0 else 1


def _end(proc: subprocess.Popen) -> None:
    """torchrun on SIGTERM stops its workers (SIGTERM, then SIGKILL); then its session goes."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def _agent_main() -> None:
    """torch.distributed.run, dying with the harness process that started it even on SIGKILL."""
    import runpy

    from common.lifetime import die_with_parent

    if not die_with_parent(signal.SIGTERM, "HARNESS_LAUNCHER_PID"):  # the launcher died before prctl took effect
        sys.exit(1)
    os.environ["HARNESS_AGENT_PID"] = str(os.getpid())  # the workers check they are still its children
    sys.argv = ["torchrun", *sys.argv[1:]]
    runpy.run_module("torch.distributed.run", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _agent_main()
