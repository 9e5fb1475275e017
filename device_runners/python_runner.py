"""The Python runner: the native runner's flags and JSON, through executorch.runtime (a reference, and a fallback
where no native bundle exists). It imports torch, so its memory figures include ~370 MB of interpreter + torch.

    python -m device_runners.python_runner --program P.pte --inputs IN.bin --result R.json [--outputs OUT.bin]
        [--warmup W] [--iterations N] [--min-seconds S] [--threads T] [--affinity 0,1|4-7] [--etdump D.etdp]
        [--method forward]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

from device_runners import evidence
from device_runners.base import PROGRESS_MARK
from device_runners.tensorfile import TensorFileError, read_tensors, write_tensors


class RunFailed(Exception):
    pass


class Stopped(BaseException):
    """SIGINT/SIGTERM/SIGHUP before timing started: the result says "interrupted" and holds no samples.
    A BaseException, so no `except Exception` in a library it interrupts can swallow it."""

    def __init__(self, signame: str, stage: str):
        super().__init__(f"interrupted by {signame} while {stage}")
        self.signame = signame


class _Stop:
    """As the native runner (stop.h): a stop signal ends the run at once before timing, and after the current
    iteration once timing runs (the samples so far are kept, marked partial)."""

    def __init__(self):
        self.stage, self.deferred, self.signame = "starting", False, None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.deferred:
            self.signame = name
        else:
            raise Stopped(name, self.stage)

    def enter(self, stage: str) -> None:
        self.stage = stage
        print(f"{PROGRESS_MARK} " + json.dumps({"stage": stage}), file=sys.stderr, flush=True)


class _Progress:
    """`@@harness-progress {json}` on stderr at most every 0.5 s: iterations done, seconds elapsed in the stage."""

    def __init__(self, stage: str, target: int, min_seconds: float):
        self.stage, self.target, self.min_seconds = stage, target, min_seconds
        self.t0 = self.last = time.monotonic()
        self.tick(0, force=True)

    def tick(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        line = {"stage": self.stage, "done": done, "target": self.target, "elapsed_s": round(now - self.t0, 2),
                "min_seconds": self.min_seconds}
        print(f"{PROGRESS_MARK} " + json.dumps(line), file=sys.stderr, flush=True)


STOP = _Stop()


def _proc_kb(path: str, field: str) -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def parse_cpu_list(text: str) -> list[int]:
    """'0,1', '4-7' or '0-1,6' -> core ids; RunFailed on anything else."""
    cpus: list[int] = []
    try:
        for item in text.split(","):
            lo, _, hi = item.partition("-")
            lo_i, hi_i = int(lo), int(hi or lo)
            if lo_i < 0 or hi_i < lo_i:
                raise ValueError
            cpus.extend(range(lo_i, hi_i + 1))
    except ValueError:
        raise RunFailed(f"bad value for --affinity: {text} (expected e.g. 0,1 or 4-7)") from None
    return cpus


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m device_runners.python_runner", description=__doc__.split("\n")[0])
    p.add_argument("--program", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--result", required=True)
    p.add_argument("--outputs")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--min-seconds", type=float, default=0.0)
    p.add_argument("--warmup-seconds", type=float, default=0.0)
    p.add_argument("--max-seconds", type=float, default=0.0)
    p.add_argument("--max-samples", type=int, default=100_000)  # latencies kept before thinning (native: the same)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--affinity")
    p.add_argument("--etdump")
    p.add_argument("--method", default="forward")
    p.add_argument("--xnnpack-cache")  # accepted so both runners parse one command line; refused in run()
    p.add_argument("--near-cores-ns", type=float, default=0.0)  # the native runner's near-cores gate: no-op here
    p.add_argument("--settle-seconds", type=float, default=0.0)
    return p


_DTYPES = {"float32": 0, "int64": 1, "int32": 2, "float16": 3, "bool": 4, "uint8": 5, "int8": 6, "float64": 7}


def run(a: argparse.Namespace) -> dict:
    if a.xnnpack_cache:
        raise RunFailed(f"--xnnpack-cache {a.xnnpack_cache}: the Python runtime cannot pass XNNPACK backend options "
                        "(executorch.runtime's load_method takes none); use the native runner")
    if a.affinity:
        try:
            os.sched_setaffinity(0, parse_cpu_list(a.affinity))  # before torch starts its threads
        except OSError as e:
            raise RunFailed(f"sched_setaffinity failed for --affinity {a.affinity}: {e}") from None
    STOP.enter("loading torch and executorch")
    import torch

    torch.set_num_threads(1)  # torch's intra-op pool would compete with ExecuTorch's on the same cores
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime, Verification

    if a.threads > 0:
        portable_lib._unsafe_reset_threadpool(a.threads)
    startup_rss_kb = _proc_kb("/proc/self/status", "VmRSS")
    try:
        examples = read_tensors(Path(a.inputs))
    except FileNotFoundError:
        raise RunFailed(f"cannot open inputs file {a.inputs}") from None
    except TensorFileError as e:
        raise RunFailed(f"inputs file {a.inputs}: {e}") from None
    if not examples:
        raise RunFailed(f"inputs file {a.inputs} holds no examples")
    if not Path(a.program).is_file():
        raise RunFailed(f"cannot open program {a.program}")

    STOP.enter("loading program")
    t0 = time.perf_counter()
    try:
        program = Runtime.get().load_program(Path(a.program), verification=Verification.InternalConsistency,
                                             enable_etdump=bool(a.etdump))
    except Exception as e:  # the pybinding raises RuntimeError/ValueError with the runtime's error code
        raise RunFailed(f"program {a.program} is not a valid ExecuTorch program ({e})") from None
    if a.method not in program.method_names:
        raise RunFailed(f"program {a.program} has no method '{a.method}'")
    meta = program.metadata(a.method)
    try:
        method = program.load_method(a.method)
    except Exception as e:
        raise RunFailed(f"loading method '{a.method}' of {a.program} failed: {e}") from None
    load_ms = (time.perf_counter() - t0) * 1000

    if meta.num_inputs() != len(examples[0]):
        raise RunFailed(f"inputs file {a.inputs} has {len(examples[0])} tensors per example, program "
                        f"{a.program} takes {meta.num_inputs()}")
    for k, arr in enumerate(examples[0]):
        info = meta.input_tensor_meta(k)
        want = list(info.sizes())
        want_dtype = str(torch.empty(0, dtype=_torch_dtype(info.dtype())).numpy().dtype)
        if want != list(arr.shape) or want_dtype != str(arr.dtype):
            raise RunFailed(f"inputs file {a.inputs} tensor {k} is {arr.dtype}{list(arr.shape)}, program input "
                            f"{k} expects {want_dtype}{want}")
    tensors = [[torch.from_numpy(x) for x in ex] for ex in examples]

    def execute(i: int):
        try:
            return method.execute(tensors[i % len(tensors)])
        except Exception as e:
            raise RunFailed(f"execute failed: {e}") from None

    STOP.enter("running the first inference")
    t = time.perf_counter()
    execute(0)
    first_ms = (time.perf_counter() - t) * 1000
    STOP.enter("warming up")
    progress = _Progress("warming up", a.warmup, a.warmup_seconds)
    t_warm, i = time.perf_counter(), 0
    while i < a.warmup or time.perf_counter() - t_warm < a.warmup_seconds:
        execute(i)
        i += 1
        progress.tick(i)
    if i:
        progress.tick(i, force=True)
    lat: list[float] = []
    # as the native runner: --min-seconds holds however fast the program is; past max_kept samples the list is
    # thinned to every other one and every 2nd (4th, ...) run is kept from then on (bounded, still in order)
    max_kept, stride = max(2 * a.iterations, a.max_samples, 2), 1
    STOP.enter("timing")
    STOP.deferred = True
    progress = _Progress("timing", a.iterations, a.min_seconds)
    canary_before = evidence.canary_ns_per_step()
    ev_start = evidence.sample()
    t_timed = time.perf_counter()
    i = 0
    capped = False  # --max-seconds ended the loop before --iterations or --min-seconds were met
    while STOP.signame is None and (i < a.iterations or time.perf_counter() - t_timed < a.min_seconds):
        if a.max_seconds > 0 and i > 0 and time.perf_counter() - t_timed >= a.max_seconds:
            capped = True
            break
        t = time.perf_counter()
        execute(i)
        ms = (time.perf_counter() - t) * 1000
        if i % stride == 0:
            lat.append(ms)
            if len(lat) >= max_kept:
                del lat[1::2]
                stride *= 2
        i += 1
        progress.tick(i)
    progress.tick(i, force=True)
    timed_s = time.perf_counter() - t_timed
    ev_end = evidence.sample()
    timing_evidence = evidence.diff(ev_start, ev_end, timed_s, (canary_before, evidence.canary_ns_per_step()))
    # memory before the outputs pass, as the native runner measures it
    # VmHWM first: ru_maxrss survives execve, so it can be the parent's peak (see runner.cpp)
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pss = _proc_kb("/proc/self/smaps_rollup", "Pss")
    hwm = _proc_kb("/proc/self/status", "VmHWM")
    peak_rss = hwm if hwm is not None else ru_maxrss

    last = execute(0)
    out_specs = [{"dtype": str(o.numpy().dtype), "shape": list(o.shape)} for o in last if torch.is_tensor(o)]
    if a.outputs and STOP.signame is None:  # stopped: the outputs pass would only delay the exit
        STOP.enter("scoring examples")
        progress = _Progress("scoring examples", len(tensors), 0.0)
        outs = []
        for e in range(len(tensors)):
            if STOP.signame is not None:
                break  # stopped: the rest of the pass would only delay the exit
            progress.tick(e)
            outs.append([o.detach().numpy().copy() for o in execute(e) if torch.is_tensor(o)])
        if STOP.signame is None:
            progress.tick(len(tensors), force=True)
            STOP.enter("writing outputs")
            write_tensors(Path(a.outputs), outs)
    extra = {}
    if STOP.signame is not None:
        extra.update(interrupted=STOP.signame, partial=True)
    elif a.etdump:
        program.write_etdump_result_to_file(a.etdump, a.etdump + ".debug")
        extra["etdump_bytes"] = Path(a.etdump).stat().st_size if Path(a.etdump).exists() else 0

    import executorch.version

    return {
        "runner": "python", "load_ms": load_ms, "first_inference_ms": first_ms, "latencies_ms": lat,
        "peak_rss_kb": peak_rss, "peak_rss_method": "/proc/self/status VmHWM" if hwm is not None else "getrusage ru_maxrss",
        "ru_maxrss_kb": ru_maxrss,
        "pss_kb": pss, "pss_method": "/proc/self/smaps_rollup Pss" if pss is not None else None,
        "vmhwm_kb": hwm, "startup_rss_kb": startup_rss_kb,
        "num_examples": len(tensors), "threads": portable_lib._threadpool_get_thread_count(),
        "runner_version": {"executorch": executorch.version.__version__, "torch": torch.__version__,
                           "python": sys.version.split()[0], "abi": os.uname().machine},
        "method": a.method, "affinity": a.affinity or "", "warmup": a.warmup, "iterations": len(lat),
        "timed_seconds": timed_s, "min_seconds_cut_short": timed_s < a.min_seconds, "max_seconds_reached": capped,
        "timed_runs": i, "sample_stride": stride, "timing_evidence": timing_evidence,
        "timed": "Method.execute through pybind (includes tensor conversion)",
        "data_loader": "python runtime default",
        "input_specs": [{"dtype": str(x.dtype), "shape": list(x.shape)} for x in examples[0]],
        "output_specs": out_specs,
        "planned_buffer_bytes": None,  # the pybinding does not expose memory_planned_buffer_size
        "program_bytes": Path(a.program).stat().st_size, **extra,
    }


def _torch_dtype(scalar_type):
    """MethodMeta reports an ExecuTorch ScalarType code; torch shares the numbering."""
    import torch

    codes = {0: torch.uint8, 1: torch.int8, 3: torch.int32, 4: torch.int64, 5: torch.float16, 6: torch.float32,
             7: torch.float64, 11: torch.bool}
    return codes.get(int(scalar_type), torch.float32)


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    STOP.install()
    try:
        result = run(a)
        rc = 128 + signal.Signals[STOP.signame].value if STOP.signame else 0
    except Stopped as e:
        print(f"python_runner: {e}", file=sys.stderr)
        result = {"runner": "python", "error": str(e), "interrupted": e.signame, "stage": STOP.stage,
                  "latencies_ms": []}
        rc = 128 + signal.Signals[e.signame].value
    except RunFailed as e:
        print(f"python_runner: error: {e}", file=sys.stderr)
        result, rc = {"runner": "python", "error": str(e)}, 1
    tmp = Path(a.result + ".tmp")
    tmp.write_text(json.dumps(result) + "\n")
    tmp.replace(a.result)
    return rc


if __name__ == "__main__":
    sys.exit(main())
