"""Several exports at once, each in a process of its own, none outliving the harness.

Lowering a program is mostly single-threaded Python (an int8 MobileBERT export kept one core 97% busy here), so on a
2-core host two exports side by side take little longer than one. Each worker runs `exporter.export` as the harness
process would (same request, same cache), with its share of the cores as torch's and XNNPACK's thread count; a
program's bytes do not depend on that (the full-size int8 program has the same sha256 exported on 1 thread or 2,
and tests/harness/export/test_parallel.py compares workers with an in-process export). Workers run in sessions of
their own, so a terminal's Ctrl-C reaches only the harness, which ends them on every exit path; the kernel ends them
if the harness is killed outright (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from common.errors import ExportError, HarnessError

# The heaviest full-size exports: int8 or int4 MobileBERT at seq 128 peaks at 1.6 GB RSS here and about 2.4 GB on
# another host; the paper's LayerNorm variants (mobilebert-noopt, mobilebert-layernorm-relu) at 3.73 GB in int8
# (benchmarks/results/paper-host.md, from their manifests). With some margin, the free memory each export running
# beside others is given.
EXPORT_PEAK_BYTES = 4 * 2**30
_PARENT_ENV = "HARNESS_EXPORT_PARENT_PID"
# Each worker's share of the cores. torch's and XNNPACK's thread pools wait for their slowest thread: with pools the
# size of the machine, the full-size fp32 export's numerics check (both models on 64 examples) took 100 s beside the
# student's training on 2 cores, against about 15 s alone.
_THREADS_ENV = "HARNESS_EXPORT_THREADS"
_PROGRESS = "\x1eprogress "  # marks a worker's progress lines among whatever its libraries print on stderr
STOP_GRACE_S = 2.0


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_jobs(n: int) -> int:
    """How many of n exports to run at once: one per usable core, as many as the available memory holds."""
    return max(1, min(n, _cores(), _available_bytes() // EXPORT_PEAK_BYTES))


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return EXPORT_PEAK_BYTES  # unknown: room for one


@dataclass
class _Job:
    index: int
    req: object  # exporter.ExportRequest
    proc: subprocess.Popen | None = None
    out: Path | None = None
    state: str = "waiting"
    stderr: list[str] = field(default_factory=list)
    result: object = None  # ExportResult, or the HarnessError the export raised


class ExportPool:
    """Exports in worker processes, at most `jobs` at a time. `submit` queues a request, `start(limit)` may begin
    early (beside training that keeps a core busy), `wait()` runs them all to their end. Use it as a context manager:
    leaving it, however (an error, Ctrl-C, SIGTERM), ends every worker still running."""

    def __init__(self, results: Path, jobs: int):
        self.results = Path(results)
        self.jobs = max(1, jobs)
        self.progress: Callable[[str], None] = lambda s: None
        self._jobs: list[_Job] = []
        self._lines: queue.Queue = queue.Queue()
        self._tmp = Path(tempfile.mkdtemp(prefix="harness-export-"))

    def __enter__(self) -> ExportPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(self, req) -> int:
        """Queue one export request; returns its index in wait()'s list."""
        self._jobs.append(_Job(len(self._jobs), req))
        return len(self._jobs) - 1

    def pids(self) -> list[int]:
        """The workers running now."""
        return [j.proc.pid for j in self._jobs if j.proc is not None and j.proc.poll() is None]

    def start(self, limit: int | None = None) -> None:
        """Start queued exports, in the order submitted, until `limit` (default: jobs) are running."""
        limit = self.jobs if limit is None else limit
        for job in self._jobs:
            if sum(j.state == "running" for j in self._jobs) >= limit:
                break
            if job.state == "waiting":
                self._launch(job)

    def wait(self, progress: Callable[[str], None] | None = None) -> list:
        """Run every export to its end; per request, in the order submitted, its ExportResult or the HarnessError
        it raised. A worker that crashed (a bug) raises RuntimeError with its traceback."""
        if progress is not None:
            self.progress = progress
        self._say()
        while any(j.state != "done" for j in self._jobs):
            self.start()
            self._pump(timeout=0.5)
        return [j.result for j in self._jobs]

    def close(self) -> None:
        """End every worker still running (its process group, SIGTERM then SIGKILL) and remove the temporaries."""
        live = [j for j in self._jobs if j.proc is not None and j.proc.poll() is None]
        for j in live:
            _signal_group(j.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for j in live:
            try:
                j.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(j.proc.pid, signal.SIGKILL)
                j.proc.wait()
        for j in live:  # the group may hold more than the worker itself (its pid stays the group's while it does)
            _signal_group(j.proc.pid, signal.SIGKILL)
        import shutil

        shutil.rmtree(self._tmp, ignore_errors=True)

    def _launch(self, job: _Job) -> None:
        job.out = self._tmp / f"{job.index}.pickle"
        inp = self._tmp / f"{job.index}.request"
        inp.write_bytes(pickle.dumps((job.req, self.results)))
        env = dict(os.environ, **{_PARENT_ENV: str(os.getpid()), _THREADS_ENV: str(max(1, _cores() // self.jobs))})
        job.proc = subprocess.Popen([sys.executable, "-m", "harness.export.parallel", str(inp), str(job.out)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env=env, start_new_session=True, text=True, errors="replace")
        job.state = "running"
        threading.Thread(target=self._read, args=(job,), daemon=True).start()

    def _read(self, job: _Job) -> None:
        for line in job.proc.stderr:
            self._lines.put((job, line.rstrip("\n")))
        self._lines.put((job, None))

    def _pump(self, timeout: float) -> None:
        try:
            job, line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return
        if line is None:
            self._finish(job)
        elif line.startswith(_PROGRESS):
            job.stderr.append(line)
            self._say(job, line[len(_PROGRESS):])
        else:
            job.stderr.append(line)

    def _finish(self, job: _Job) -> None:
        rc = job.proc.wait()
        job.state = "done"
        try:
            kind, value = pickle.loads(job.out.read_bytes())
        except (OSError, EOFError, pickle.UnpicklingError):
            kind, value = None, None
        if kind == "ok" or (kind == "error" and isinstance(value, HarnessError)):
            job.result = value
        elif kind is None and rc < 0:  # killed from outside (the kernel's OOM killer, an operator): not a bug
            job.result = ExportError(f"the export of {_what(job.req)} was ended by {signal.Signals(-rc).name} "
                                     "(out of memory?)")
        else:  # a bug in the export: its traceback, as the harness would have shown it
            tail = "\n".join(line for line in job.stderr if not line.startswith(_PROGRESS))[-4000:]
            raise RuntimeError(f"export worker for {_what(job.req)} exited with {rc}:\n{tail}")
        self._say()

    def _say(self, job: _Job | None = None, msg: str | None = None) -> None:
        done = sum(j.state == "done" for j in self._jobs)
        running = [j for j in self._jobs if j.state == "running"]
        head = (f"exporting {len(self._jobs)} programs, {self.jobs} at a time ({done} done): "
                + ", ".join(_what(j.req) for j in running))
        self.progress(head + (f"; {_what(job.req)}: {msg}" if job is not None else ""))


def _what(req) -> str:
    return f"{Path(req.checkpoint).name if req.checkpoint else req.model} {req.recipe}"


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _worker(inp: str, out: str) -> int:
    from common.console import silence_libraries
    from common.files import write_atomic
    from common.lifetime import die_with_parent

    if not die_with_parent(signal.SIGKILL, _PARENT_ENV):
        return 1
    silence_libraries()  # as the CLI does: the same environment for torch as a sequential export
    req, results = pickle.loads(Path(inp).read_bytes())
    _share_cores(int(os.environ.get(_THREADS_ENV) or 0))

    def progress(msg: str) -> None:
        print(_PROGRESS + msg, file=sys.stderr, flush=True)

    from harness.export.exporter import export

    try:
        outcome = ("ok", export(req, results, progress=progress))
    except HarnessError as e:
        outcome = ("error", e)
    except Exception:  # a bug: the traceback goes to the harness, which shows it
        import traceback

        traceback.print_exc()
        outcome = ("crash", None)
    write_atomic(Path(out), pickle.dumps(outcome))
    return 0


def _share_cores(threads: int) -> None:
    if threads < 1 or threads >= _cores():
        return
    import torch

    torch.set_num_threads(threads)
    try:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    except ImportError:
        return
    _unsafe_reset_threadpool(threads)


if __name__ == "__main__":
    sys.exit(_worker(*sys.argv[1:3]))
