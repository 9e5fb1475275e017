"""Several exports at once, in worker processes, none outliving the harness.

Lowering a program is mostly single-threaded Python (an int8 MobileBERT export kept one core 97% busy here), so on a
2-core host two exports side by side take little longer than one. Each worker runs `exporter.export` as the harness
process would (same request, same cache), with its share of the cores as torch's and XNNPACK's thread count; a
program's bytes do not depend on that (the full-size int8 program has the same sha256 exported on 1 thread or 2,
and tests/harness/export/test_parallel.py compares workers with an in-process export). A worker exports one program
after another (at most `jobs` workers start, whatever the number of programs): importing torch and ExecuTorch and
their first lowering's set-up cost about 9 s of CPU per process here, paid once per worker. Workers run in sessions of
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
_DONE = "\x1edone "  # then the job's index: its outcome is written, the worker is free for the next
_TMP_PREFIX = "harness-export-"  # then the harness's pid: a dead one's temporaries are swept by the next pool
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
    state: str = "waiting"
    stderr: list[str] = field(default_factory=list)
    result: object = None  # ExportResult, or the HarnessError the export raised


@dataclass
class _Worker:
    """One worker process; it exports the jobs it is handed one after another, so torch, ExecuTorch and their
    first-use set-up (about 9 s of CPU together here) are paid once per worker rather than once per program."""

    proc: subprocess.Popen
    job: _Job | None = None
    stderr: list[str] = field(default_factory=list)  # what it printed while idle


class ExportPool:
    """Exports in worker processes, at most `jobs` at a time. `submit` queues a request, `start(limit)` may begin
    early (beside training that keeps a core busy), `wait()` runs them all to their end. Use it as a context manager:
    leaving it, however (an error, Ctrl-C, SIGTERM), ends every worker still running."""

    def __init__(self, results: Path, jobs: int):
        self.results = Path(results)
        self.jobs = max(1, jobs)
        self.progress: Callable[[str], None] = lambda s: None
        self._jobs: list[_Job] = []
        self._workers: list[_Worker] = []
        self.launched = 0  # worker processes started so far
        self._lines: queue.Queue = queue.Queue()
        sweep_orphans()
        self._tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-"))

    def __enter__(self) -> ExportPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(self, req) -> int:
        """Queue one export request; returns its index in wait()'s list."""
        self._jobs.append(_Job(len(self._jobs), req))
        return len(self._jobs) - 1

    def pids(self) -> list[int]:
        """The workers exporting now."""
        return [w.proc.pid for w in self._workers if w.job is not None and w.proc.poll() is None]

    def start(self, limit: int | None = None) -> None:
        """Start queued exports, in the order submitted, until `limit` (default: jobs) are running."""
        limit = min(self.jobs, self.jobs if limit is None else limit)
        for job in self._jobs:
            if sum(j.state == "running" for j in self._jobs) >= limit:
                break
            if job.state == "waiting":
                worker = next((w for w in self._workers if w.job is None), None) or self._launch()
                self._hand(worker, job)

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
        """End every worker (its process group: SIGTERM then SIGKILL; an idle one is asked to stop by closing its
        input first) and remove the temporaries."""
        for w in self._workers:
            if w.job is None:
                _close_quietly(w.proc.stdin)
        deadline = time.monotonic() + STOP_GRACE_S
        for w in self._workers:
            if w.job is not None and w.proc.poll() is None:
                _signal_group(w.proc.pid, signal.SIGTERM)
        for w in self._workers:
            try:
                w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(w.proc.pid, signal.SIGKILL)
                w.proc.wait()
        for w in self._workers:  # the group may hold more than the worker itself (its pid stays the group's)
            _signal_group(w.proc.pid, signal.SIGKILL)
            _close_quietly(w.proc.stdin)
        import shutil

        shutil.rmtree(self._tmp, ignore_errors=True)

    def _launch(self) -> _Worker:
        env = dict(os.environ, **{_PARENT_ENV: str(os.getpid()), _THREADS_ENV: str(max(1, _cores() // self.jobs))})
        proc = subprocess.Popen([sys.executable, "-m", "harness.export.parallel", str(self._tmp)],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env, start_new_session=True, text=True, errors="replace")
        worker = _Worker(proc)
        self.launched += 1
        self._workers.append(worker)
        threading.Thread(target=self._read, args=(worker,), daemon=True).start()
        return worker

    def _hand(self, worker: _Worker, job: _Job) -> None:
        (self._tmp / f"{job.index}.request").write_bytes(pickle.dumps((job.req, self.results)))
        worker.job, job.state = job, "running"
        try:
            worker.proc.stdin.write(f"{job.index}\n")
            worker.proc.stdin.flush()
        except OSError:  # it died meanwhile: its end of stderr comes next and says how
            pass

    def _read(self, worker: _Worker) -> None:
        for line in worker.proc.stderr:
            self._lines.put((worker, line.rstrip("\n")))
        self._lines.put((worker, None))

    def _pump(self, timeout: float) -> None:
        try:
            worker, line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return
        job = worker.job
        if line is None:  # the worker is gone
            self._workers.remove(worker)
            if job is not None:
                self._finish(job, worker.proc.wait(), worker.stderr)
        elif line.startswith(_DONE) and job is not None and line[len(_DONE):] == str(job.index):
            worker.job = None
            self._finish(job, 0)
        else:
            (job.stderr if job is not None else worker.stderr).append(line)
            if line.startswith(_PROGRESS) and job is not None:
                self._say(job, line[len(_PROGRESS):])

    def _finish(self, job: _Job, rc: int, idle_stderr: list[str] = ()) -> None:
        """The job's outcome; idle_stderr: what its worker printed before taking it (a worker that died)."""
        job.state = "done"
        try:
            kind, value = pickle.loads((self._tmp / f"{job.index}.pickle").read_bytes())
        except (OSError, EOFError, pickle.UnpicklingError):
            kind, value = None, None
        if kind == "ok" or (kind == "error" and isinstance(value, HarnessError)):
            job.result = value
        elif kind is None and rc < 0:  # killed from outside (the kernel's OOM killer, an operator): not a bug
            job.result = ExportError(f"the export of {_what(job.req)} was ended by {signal.Signals(-rc).name} "
                                     "(out of memory?)")
        else:  # a bug in the export: its traceback, as the harness would have shown it
            tail = "\n".join(line for line in [*idle_stderr, *job.stderr] if not line.startswith(_PROGRESS))[-4000:]
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


def _close_quietly(stream) -> None:
    try:
        stream.close()
    except OSError:  # a worker already gone: nothing left to tell it
        pass


def sweep_orphans() -> None:
    """Remove the temporaries of pools whose harness died without closing them (SIGKILL, a power cut)."""
    import shutil

    from common.files import pid_alive

    for folder in Path(tempfile.gettempdir()).glob(f"{_TMP_PREFIX}*-*"):
        try:
            pid = int(folder.name[len(_TMP_PREFIX):].split("-")[0])
        except ValueError:
            continue
        try:
            mine = folder.stat().st_uid == os.getuid()
        except OSError:  # another pool swept it meanwhile
            continue
        if mine and not pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _worker(folder: str) -> int:
    """Serve the pool: each line on stdin names a job; its outcome goes to INDEX.pickle, then `done INDEX` to stderr."""
    import gc

    from common.console import silence_libraries
    from common.files import write_atomic
    from common.lifetime import die_with_parent
    from common.memory import trim_heap

    if not die_with_parent(signal.SIGKILL, _PARENT_ENV):
        return 1
    silence_libraries()  # as the CLI does: the same environment for torch as a sequential export
    _share_cores(int(os.environ.get(_THREADS_ENV) or 0))

    def progress(msg: str) -> None:
        print(_PROGRESS + msg, file=sys.stderr, flush=True)

    from harness.export.exporter import export

    for line in sys.stdin:
        index = line.strip()
        req, results = pickle.loads((Path(folder) / f"{index}.request").read_bytes())
        try:
            outcome = ("ok", export(req, results, progress=progress))
        except HarnessError as e:
            outcome = ("error", e)
        except Exception:  # a bug: the traceback goes to the harness, which shows it
            import traceback

            traceback.print_exc()
            outcome = ("crash", None)
        write_atomic(Path(folder) / f"{index}.pickle", pickle.dumps(outcome))
        del outcome, req
        gc.collect()  # the lowered graphs hold reference cycles: freed before the next export grows the heap
        trim_heap()  # and handed back to the kernel: the next export's peak starts from the worker's own size
        print(f"{_DONE}{index}", file=sys.stderr, flush=True)
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
    sys.exit(_worker(sys.argv[1]))
