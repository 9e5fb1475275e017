"""One run: put a program and its inputs on a device, start the runner, bring back what it measured, and store a
RunRecord before anything else happens with it. Failures during a run are stored as failed records."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from device_runners.base import (MalformedResult, RawResult, RunJob, Transport, TransportError, parse_progress,
                                 without_progress)
from device_runners.tensorfile import TensorFileError, read_tensors, write_tensors
from harness.run import accuracy
from harness.run import device_state
from harness.run import inputs
from harness.export import program
from harness.run import stats
from harness.common import interrupts, versions
from harness.common.errors import BadInput, DeviceError, HarnessError, ProgramError, RunnerError
from harness.export.manifest import ProgramManifest
from harness.common.timing import timing_name
from harness.store.record import RunRecord, model_identity
from harness.store.db import ResultsStore

RUNNERS = ("native", "python")


class RunInterrupted(interrupts.Interrupted):
    """Ctrl-C or SIGTERM ended a run: everything it started is stopped, its work folder removed, and `record`
    (status "interrupted", the samples measured so far flagged partial) is stored."""

    def __init__(self, record: RunRecord, signame: str):
        super().__init__(signame)
        self.record = record


@dataclass
class RunRequest:
    program: Path
    device: str = "host"
    runner: str = "native"  # "native" | "python"
    runner_bin: Path | None = None  # the user's own runner binary (e.g. runner.cpp built with the Android NDK)
    xnnpack_cache: bool = False  # keep XNNPACK's packed weights in a file on the device, reused by later runs
    warmup: int = 10
    iterations: int = 50
    min_seconds: float = 0.0
    warmup_seconds: float = 0.0  # the warmup lasts this long as well as `warmup` iterations
    max_seconds: float = 0.0  # 0: no cap; else the timed loop ends here even short of `iterations`
    threads: int | None = None  # None: the device profile's default
    affinity: str | None = None
    task: str | None = None  # score real examples of this task through the program
    samples: int = 8  # examples in the inputs file (with --task: how many are scored)
    tokenizer: Path | None = None  # --tokenizer: overrides the one the program was exported with
    profile: bool = False
    cooldown: float = 0.0  # seconds to wait, at most, for temperatures to settle before the run
    wait_for_quiet: float = 0.0  # seconds to wait, at most, for other work on the device to stop before the run
    # device state (harness/run/device_state.py)
    max_start_temp: float | None = None  # thermal gate: battery and skin at or below this (°C), within `cooldown`
    check_model: bool = True  # refuse a device whose model is not its profile's
    timeout: float = 900.0
    devices_file: Path | None = None
    address: str | None = None
    serial: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None  # None: this run is a campaign of its own (the CLI gives one per invocation)
    oversubscribe: bool = False  # allow more runner threads than the device has cores
    schedule: dict[str, Any] | None = None  # where a campaign plan put this run (harness/run/plan.py)


def new_campaign(prefix: str = "run") -> str:
    """A fresh campaign name: PREFIX-YYYYmmdd-HHMMSS-xxxx (UTC), sortable by time."""
    return f"{prefix}-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"


# Upper bounds, checked before anything runs (docs/runner.md): far past any useful measurement, short of a run that
# cannot end before its --timeout or of inputs that do not fit in memory.
MAX_ITERATIONS = 1_000_000
MAX_WARMUP = 100_000
MAX_MIN_SECONDS = 24 * 3600.0
MAX_SAMPLES = 100_000
MAX_THREADS = 256
MAX_INPUT_BYTES = 2 * 2**30  # the inputs file all examples are written to


def validate(req: RunRequest) -> None:
    import math

    if not 1 <= req.iterations <= MAX_ITERATIONS:
        raise BadInput(f"--iterations {req.iterations}: between 1 and {MAX_ITERATIONS:,}")
    if not 0 <= req.warmup <= MAX_WARMUP:
        raise BadInput(f"--warmup {req.warmup}: between 0 and {MAX_WARMUP:,}")
    if not (math.isfinite(req.min_seconds) and 0 <= req.min_seconds <= MAX_MIN_SECONDS):
        raise BadInput(f"--min-seconds {req.min_seconds}: a number of seconds between 0 and {MAX_MIN_SECONDS:.0f}")
    if not (math.isfinite(req.timeout) and 0 < req.timeout <= 7 * 24 * 3600):
        raise BadInput(f"--timeout {req.timeout}: a positive number of seconds (at most a week)")
    if not (math.isfinite(req.wait_for_quiet) and 0 <= req.wait_for_quiet <= 24 * 3600):
        raise BadInput(f"--wait-for-quiet {req.wait_for_quiet}: a number of seconds between 0 and 86400")
    if not (math.isfinite(req.warmup_seconds) and 0 <= req.warmup_seconds <= MAX_MIN_SECONDS):
        raise BadInput(f"--warmup-seconds {req.warmup_seconds}: a number of seconds between 0 and "
                       f"{MAX_MIN_SECONDS:.0f}")
    if not (math.isfinite(req.max_seconds) and 0 <= req.max_seconds <= MAX_MIN_SECONDS):
        raise BadInput(f"--max-seconds {req.max_seconds}: a number of seconds between 0 (no cap) and "
                       f"{MAX_MIN_SECONDS:.0f}")
    if req.max_seconds and req.max_seconds < req.min_seconds:
        raise BadInput(f"--max-seconds {req.max_seconds:g} is shorter than --min-seconds {req.min_seconds:g}: "
                       "the cap would end every run before its floor")
    if req.min_seconds + req.warmup_seconds >= req.timeout:
        raise BadInput(f"--min-seconds {req.min_seconds:g} and --warmup-seconds {req.warmup_seconds:g} are not "
                       f"shorter than --timeout {req.timeout:g}: the run would be killed before it could finish")
    if req.min_seconds >= req.timeout:
        raise BadInput(f"--min-seconds {req.min_seconds:g} is not shorter than --timeout {req.timeout:g}: the run "
                       "would be killed before it could finish")
    if req.threads is not None and not 1 <= req.threads <= MAX_THREADS:
        raise BadInput(f"--threads {req.threads}: between 1 and {MAX_THREADS}")
    if not 1 <= req.samples <= MAX_SAMPLES:
        raise BadInput(f"--samples {req.samples}: between 1 and {MAX_SAMPLES:,}")
    if req.runner not in RUNNERS:
        raise BadInput(f"unknown --runner {req.runner!r}; known: {', '.join(RUNNERS)}")
    if req.xnnpack_cache and req.runner == "python":
        raise BadInput("--xnnpack-cache needs the native runner (ExecuTorch's Python runtime takes no backend options)")
    if req.runner_bin is not None and not Path(req.runner_bin).is_file():
        raise BadInput(f"--runner-bin {req.runner_bin}: no such file")


def _sweep_run_folders() -> None:
    """Remove the local scratch folders of runs whose harness process is gone (killed with -9, say)."""
    import re
    import shutil

    for d in Path(tempfile.gettempdir()).glob("harness-run-*"):
        m = re.match(r"harness-run-(\d+)-", d.name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


def run_folder_prefix(pid: int | None = None) -> str:
    """A device-side run folder's name starts with this host's and this process's mark (h<host hash>-p<pid>-), so
    a later run from the same host can tell the folders of a harness that was killed from those of one running."""
    return f"{_host_mark()}-p{os.getpid() if pid is None else pid}-"


def _host_mark() -> str:
    import hashlib
    import socket

    return "h" + hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _sweep_device_run_folders(transport: Transport, runs: str) -> None:
    """Remove the device-side run folders (program, inputs: ~100 MB for the full-size model) that a harness on this
    host left when it was killed (-9): their process is gone. Other hosts' and live processes' folders stay."""
    import re

    try:
        rc, out, _ = transport.shell(f"ls -1 {shlex.quote(runs)} 2>/dev/null", timeout=30)
    except (TransportError, TimeoutError, OSError):
        return
    mine = re.compile(re.escape(_host_mark()) + r"-p(\d+)-[0-9a-f]+$")
    stale = []
    for name in out.split() if rc == 0 else []:
        m = mine.match(name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            stale.append(f"{runs}/{name}")
        except PermissionError:
            pass  # another user's live harness
    if stale:
        _cleanup(transport, " ".join(shlex.quote(d) for d in stale), quoted=True)


def _check_input_size(specs, samples: int) -> None:
    """The inputs file is estimated before a byte of it is made: a huge --samples is one line, not a MemoryError."""
    import math

    sizes = {"int64": 8, "float32": 4, "int32": 4, "float16": 2, "bool": 1, "uint8": 1, "int8": 1}
    per = sum(math.prod(max(1, d) for d in s.shape) * sizes.get(s.dtype, 8) for s in specs)
    if per * samples > MAX_INPUT_BYTES:
        raise BadInput(f"--samples {samples}: the inputs would take {per * samples / 2**30:.1f} GiB (limit "
                       f"{MAX_INPUT_BYTES / 2**30:.0f} GiB): use fewer samples")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run(req: RunRequest, results: Path, progress: Callable[[str], None] = lambda s: None) -> RunRecord:
    """Run one program on one device and store the record (failed runs included). Returns the stored record."""
    from device_runners.catalog import get_profile, make_transport

    validate(req)
    path = program.check_file(req.program)
    manifest = program.manifest_for(path)
    profile = get_profile(req.device, extra=req.devices_file, address=req.address, serial=req.serial)
    from device_runners.catalog import resolve_affinity

    affinity = resolve_affinity(profile, req.affinity or profile.affinity)
    if req.max_start_temp is not None and req.cooldown <= 0:
        raise BadInput(f"--max-start-temp {req.max_start_temp:g} needs --cooldown SECONDS: how long it may wait")
    if req.runner == "python" and profile.transport != "local":
        raise BadInput(f"--runner python runs only on the host; device {profile.name} needs --runner native")
    if req.runner_bin is not None and profile.transport in ("ios", "ios-simulator"):
        raise BadInput(f"--runner-bin: device {profile.name} runs only the signed harness app (docs/devices.md)")
    store = ResultsStore(Path(results))
    store.check_writable()  # before a foreign program is inspected or a task is read (seconds); again before set-up
    if manifest:
        specs, vocab = manifest.inputs, manifest.vocab_size
    else:
        info = program.inspect(path, cache_dir=Path(results) / "programs" / "inspected")
        specs, vocab = program.input_specs(info), info.get("vocab_size")
    _check_input_size(specs, req.samples)
    if req.task:
        run_inputs = inputs.from_task(specs, req.task, req.samples, vocab,
                                      inputs.tokenizer_source(manifest, req.tokenizer),
                                      head=manifest.head if manifest else None)
    else:
        run_inputs = inputs.synthetic(specs, req.samples, vocab)

    rec = RunRecord(
        run_id=uuid.uuid4().hex[:12], created_at=_now(), status="failed", device=profile.name,
        harness_version=versions.stack()["harness"], harness_git_sha=versions.git_sha(),
        program_path=str(path.resolve()), program_sha256=manifest.program_sha256 if manifest else None,
        manifest=manifest.to_dict() if manifest else None,
        model=manifest.model if manifest else path.stem, recipe=manifest.recipe if manifest else None,
        seq_len=manifest.seq_len if manifest else (specs[0].shape[-1] if specs and specs[0].shape else None),
        random_weights=manifest.random_weights if manifest else None,
        device_abi=profile.abi, transport=profile.transport, runner=req.runner,
        threads=req.threads or profile.threads, affinity=affinity,
        warmup=req.warmup, iterations=req.iterations, min_seconds=req.min_seconds, tags=dict(req.tags),
        warmup_seconds=req.warmup_seconds, max_seconds=req.max_seconds or None,
    )
    if req.runner_bin is not None:
        rec.tags["runner_bin"] = str(Path(req.runner_bin).resolve())
    if rec.program_sha256 is None:
        rec.program_sha256 = program.sha256_file(path)
    rec.model_id = model_identity(rec.manifest, rec.model, rec.program_sha256)
    rec.campaign = req.campaign or new_campaign()
    rec.schedule = dict(req.schedule) if req.schedule else None
    rec.timing = "custom" if req.max_seconds else timing_name(req.warmup, req.iterations, req.min_seconds,
                                                                  req.warmup_seconds)  # a preset's name, or custom
    # Set-up: nothing has reached the device yet, so a failure here is the user's to fix and is not stored.
    store.check_writable()  # before minutes of measuring, not after
    transport = _connect(profile, make_transport)
    try:
        progress(f"reading {profile.name}'s state")
        rec.device_info_before = _info(transport)
        device_state.check_model(profile, rec.device_info_before, req.check_model)
        try:  # the runner is started from it: a folder another user can write is refused before anything is pushed
            from device_runners.workdir import prepare

            prepare(transport)
        except (TransportError, TimeoutError, OSError) as e:
            raise DeviceError(f"device {profile.name}: {e}") from None
        cores = rec.device_info_before.get("cores")
        if isinstance(cores, int) and rec.threads and rec.threads > cores and not req.oversubscribe:
            raise BadInput(f"--threads {rec.threads}: device {profile.name} has {cores} cores; more threads than cores "
                           "time the scheduler, not the model (pass --oversubscribe to measure it anyway)")
        if req.runner == "native" and req.runner_bin is None and not getattr(transport, "launches_app", False):
            from device_runners.build import build_bundle

            progress(f"preparing the {profile.abi} runner bundle")
            build_bundle(profile.abi)  # cached by content hash: the run below finds it ready
    except BaseException:
        transport.close()
        raise
    stopped: str | None = None
    try:
        rec.emulated = bool(getattr(transport, "emulated", False))
        _execute(req, rec, transport, profile, path, manifest, run_inputs, progress)
    except KeyboardInterrupt as e:  # _execute stopped the runner and cleaned up; the record says how far it got
        stopped = interrupts.signame_of(e)
        rec.status, rec.error = "interrupted", rec.error or f"interrupted by {stopped}"
    except HarnessError as e:
        rec.status, rec.error = "failed", str(e)
    except (TransportError, TimeoutError, OSError) as e:
        rec.status, rec.error = "failed", f"device {profile.name}: {type(e).__name__}: {e}"
    finally:
        rec.finished_at = _now()
        transport.close()
    if stopped:
        with interrupts.deferred():
            store.add(rec)
        raise RunInterrupted(rec, stopped)
    store.add(rec)
    return rec


def _connect(profile, make_transport) -> Transport:
    """The device's transport, checked to answer; a device that is absent or unreachable is a DeviceError (exit 2)."""
    try:
        transport = make_transport(profile)
    except HarnessError:
        raise
    except (TransportError, TimeoutError, OSError) as e:
        raise DeviceError(f"device {profile.name} is not reachable: {e}") from None
    try:
        rc, out, err = transport.shell("echo harness-ready", timeout=60)
    except (TransportError, TimeoutError, OSError) as e:
        transport.close()
        raise DeviceError(f"device {profile.name} is not reachable: {e}") from None
    if rc != 0 or "harness-ready" not in out:
        transport.close()
        raise DeviceError(f"device {profile.name} does not run commands: {(err or out).strip()[:200] or f'exit {rc}'}")
    return transport


def _execute(req, rec: RunRecord, transport: Transport, profile, path: Path, manifest: ProgramManifest | None,
             run_inputs: inputs.RunInputs, progress) -> None:
    if req.max_start_temp is not None:
        rec.device_info_before["thermal_gate"] = device_state.thermal_gate(
            transport, req.max_start_temp, req.cooldown, profile.name, progress)
    elif req.cooldown > 0:
        _cool_down(transport, req.cooldown, progress)
    if req.wait_for_quiet > 0:
        rec.device_info_before["quiet_gate"] = device_state.quiet_gate(transport, req.wait_for_quiet, profile.name,
                                                                       progress)
    rec.device_info_before["state"] = device_state.read_state(transport)
    runs = f"{transport.workdir().rstrip('/')}/runs"
    run_dir = f"{runs}/{run_folder_prefix()}{rec.run_id}"
    _sweep_run_folders()
    _sweep_device_run_folders(transport, runs)
    with tempfile.TemporaryDirectory(prefix=f"harness-run-{os.getpid()}-") as tmp:
        tmp = Path(tmp)
        write_tensors(tmp / "inputs.bin", run_inputs.examples)
        job = RunJob(
            program=f"{run_dir}/program.pte", inputs=f"{run_dir}/inputs.bin", result=f"{run_dir}/result.json",
            outputs=f"{run_dir}/outputs.bin", warmup=req.warmup, iterations=req.iterations,
            min_seconds=req.min_seconds, warmup_seconds=req.warmup_seconds, max_seconds=req.max_seconds,
            threads=rec.threads or 1, affinity=rec.affinity,
            etdump=f"{run_dir}/profile.etdp" if req.profile else None, timeout=req.timeout,
        )
        try:
            _shell(transport, f"mkdir -p {shlex.quote(run_dir)}", 60, profile.name)
            progress(f"pushing program and {len(run_inputs.examples)} examples to {profile.name}")
            transport.push(path, job.program)
            transport.push(tmp / "inputs.bin", job.inputs)
            cmd = _runner_command(req, transport, profile, job, progress, rec.program_sha256)
            where = f"{profile.name} ({req.runner} runner, {job.threads} threads)"
            progress(f"running on {where}")
            sampler = device_state.Sampler(transport).start()
            try:
                rc, out, err = transport.shell(cmd, timeout=req.timeout, on_stderr=_progress_lines(progress, where))
            except KeyboardInterrupt as e:  # the transport has stopped the runner: keep what it measured
                sampler.stop()  # before the transport is used again
                with interrupts.deferred():
                    _keep_partial(rec, transport, job, tmp, manifest, path, interrupts.signame_of(e))
                raise
            finally:
                samples = sampler.stop()
            err = without_progress(err)
            progress(f"collecting the results from {profile.name}")
            raw_text = _pull_text(transport, job.result, tmp / "result.json")
            if rc != 0:
                reason = _runner_error(raw_text, err or out, rc)
                raise RunnerError(f"runner failed on {profile.name}: {reason}")
            if raw_text is None:
                raise RunnerError(f"runner on {profile.name} exited 0 but wrote no result file")
            raw = _parse_result(raw_text, job, profile.name)
            transport.pull(job.outputs, tmp / "outputs.bin")
            try:
                outputs = read_tensors(tmp / "outputs.bin")
            except TensorFileError as e:
                raise RunnerError(f"runner on {profile.name} wrote a damaged outputs file: {e}") from None
            if req.profile:
                transport.pull(job.etdump, tmp / "profile.etdp")
                rec.profile = _profile_summary(tmp / "profile.etdp", path)
        finally:
            with interrupts.deferred():
                _cleanup(transport, run_dir)
    rec.device_info_after = _info(transport)
    rec.device_info_after["state"] = device_state.read_state(transport)
    evidence = device_state.throttle_evidence(rec.device_info_before["state"], samples,
                                              rec.device_info_after["state"], rec.affinity)
    rec.device_info_after["during"] = {"samples": samples, "throttle_evidence": evidence}
    _fill_measurements(rec, raw, manifest, path)
    rec.accuracy = _score(outputs, run_inputs, manifest) if run_inputs.task or manifest else None
    rec.flags = stats.validity_flags(rec.latency, emulated=rec.emulated, info_before=rec.device_info_before,
                                     info_after=rec.device_info_after, profiled=req.profile,
                                     evidence=evidence, disturbed=_disturbance(rec, raw))
    rec.status = stats.status_for(rec.flags)


def _progress_lines(progress: Callable[[str], None], where: str) -> Callable[[str], None]:
    """A transport's on_stderr: the runner's progress lines (device_runners.base.PROGRESS_MARK) as status text."""
    def on_line(line: str) -> None:
        p = parse_progress(line)
        if p is None:
            return
        stage, done = p.get("stage", ""), p.get("done")
        if done is None:
            progress(f"{where}: {stage}")
            return
        if not p.get("target") and not done:
            return  # no warmup asked for
        elapsed, target, min_s = float(p.get("elapsed_s") or 0), p.get("target") or 0, float(p.get("min_seconds") or 0)
        text = f"{where}: {stage}, {done} iterations of at least {target}, {elapsed:.0f} s elapsed"
        if min_s > 0:
            text += f", {max(min_s - elapsed, 0):.0f} s of --min-seconds {min_s:g} left"
        progress(text)

    return on_line


def _parse_result(text: str, job: RunJob, device: str) -> RawResult:
    """The runner's result, checked: a malformed one fails the run (stored, with the reason), never the CLI."""
    try:
        raw = RawResult.from_json(text)
    except MalformedResult as e:
        raise RunnerError(f"runner on {device} wrote a malformed result: {e}") from None
    if len(raw.latencies_ms) < job.iterations and not (job.max_seconds and raw.extra.get("max_seconds_reached")):
        raise RunnerError(f"runner on {device} reported {len(raw.latencies_ms)} timed iterations, fewer than the "
                          f"{job.iterations} asked for")
    return raw


def _keep_partial(rec: RunRecord, transport: Transport, job: RunJob, tmp: Path, manifest: ProgramManifest | None,
                  path: Path, signame: str) -> None:
    """After an interrupt: the samples the runner wrote before it stopped (flagged partial), or none."""
    try:
        raw_text = _pull_text(transport, job.result, tmp / "result.json", timeout=15)
        data = json.loads(raw_text) if raw_text else {}
    except (TransportError, TimeoutError, OSError, ValueError):
        data = {}
    try:
        raw = RawResult.from_json(raw_text) if data.get("latencies_ms") else None
    except MalformedResult:
        raw = None  # what it wrote cannot be trusted: keep the interruption, not the numbers
    if raw is not None:
        _fill_measurements(rec, raw, manifest, path)
        rec.flags = ["partial", *stats.validity_flags(rec.latency, emulated=rec.emulated,
                                                      info_before=rec.device_info_before, info_after=None)]
        rec.error = f"interrupted by {signame} after {len(rec.latencies_ms)} timed iterations (partial)"
    else:
        rec.error = f"interrupted by {signame}" + (f" while {data['stage']}" if data.get("stage") else "")


def _shell(transport: Transport, cmd: str, timeout: float, device: str) -> str:
    rc, out, err = transport.shell(cmd, timeout=timeout)
    if rc != 0:
        raise DeviceError(f"device {device}: `{cmd}` failed: {(err or out).strip()[:200]}")
    return out


def _info(transport: Transport) -> dict:
    try:
        return transport.info()
    except (TransportError, TimeoutError, OSError) as e:
        return {"error": str(e)}


def _runner_command(req: RunRequest, transport: Transport, profile, job: RunJob, progress,
                    program_sha: str) -> str:
    from device_runners.launch import bundle_command, python_runner_command, runner_args

    if req.runner == "python":
        return python_runner_command(runner_args(job), python=sys.executable)
    args = runner_args(job)
    if req.xnnpack_cache:
        # outside the run directory (which is removed after the run): one packed file per program and runner
        cache_dir = f"{transport.workdir().rstrip('/')}/xnnpack-cache"
        _shell(transport, f"mkdir -p {shlex.quote(cache_dir)}", 60, profile.name)
        args += ["--xnnpack-cache", f"{cache_dir}/{program_sha[:16]}-{req.runner_bin.name if req.runner_bin else 'native'}.bin"]
    if getattr(transport, "launches_app", False):  # iOS: no shell; the transport launches its app with these args
        return transport.app_command(args)
    if req.runner_bin is not None:
        # A runner the user built (same flags and JSON as device_runners/native/runner.cpp), pushed as it is
        remote = f"{transport.workdir().rstrip('/')}/bin/{program.sha256_file(req.runner_bin)[:12]}"
        progress(f"pushing {req.runner_bin} to {profile.name}")
        transport.push(Path(req.runner_bin), f"{remote}/{Path(req.runner_bin).name}")
        exe = f"{remote}/{Path(req.runner_bin).name}"
        _shell(transport, f"chmod u+x {shlex.quote(exe)}", 60, profile.name)
        return shlex.join([exe, *args])
    from device_runners.build import build_bundle
    from device_runners.bundle_install import install_bundle

    progress(f"preparing the {profile.abi} runner bundle")
    remote = install_bundle(transport, build_bundle(profile.abi), progress, profile.name)  # verified by hash
    return bundle_command(remote, profile.abi, args, qemu=bool(getattr(transport, "qemu", False)),
                          sysroot=getattr(transport, "sysroot", None))


def _pull_text(transport: Transport, remote: str, local: Path, timeout: float = 60) -> str | None:
    rc, _, _ = transport.shell(f"test -f {shlex.quote(remote)}", timeout=timeout)
    if rc != 0:
        return None
    transport.pull(remote, local)
    return local.read_text()


def _runner_error(raw_text: str | None, stderr: str, rc: int) -> str:
    if raw_text:
        try:
            d = json.loads(raw_text)
            if isinstance(d, dict) and d.get("error"):
                return str(d["error"])[:300]
        except ValueError:
            pass
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if rc < 0 or rc > 128:
        sig = -rc if rc < 0 else rc - 128
        return f"runner crashed (signal {sig})" + (f": {lines[-1]}" if lines else "")
    return (lines[-1] if lines else f"exit code {rc}")[:300]


def _cleanup(transport: Transport, run_dir: str, quoted: bool = False) -> None:
    try:
        transport.shell(f"rm -rf {run_dir if quoted else shlex.quote(run_dir)}", timeout=30)
    except (TransportError, TimeoutError, OSError):
        pass  # the device went away: nothing left to clean from here


def _cool_down(transport: Transport, limit_s: float, progress) -> None:
    """Wait until the hottest thermal zone changes by less than 0.5 C over 5 s, or until limit_s."""
    start, last = time.monotonic(), None
    while time.monotonic() - start < limit_s:
        temps = _info(transport).get("temperatures_c") or {}
        hottest = max(temps.values()) if temps else None
        if hottest is None or (last is not None and abs(hottest - last) < 0.5):
            return
        progress(f"cooling down: {hottest:.1f} C")
        last = hottest
        time.sleep(5)


def record_measurements(rec: RunRecord, raw: RawResult, manifest: ProgramManifest | None, path: Path,
                        outputs: list | None = None, run_inputs: inputs.RunInputs | None = None) -> None:
    """Measurements, accuracy, validity flags and status of `rec` from a raw result run elsewhere (a device farm)."""
    _fill_measurements(rec, raw, manifest, path)
    if outputs is not None and run_inputs is not None and (run_inputs.task or manifest):
        rec.accuracy = _score(outputs, run_inputs, manifest)
    rec.flags = stats.validity_flags(rec.latency, emulated=rec.emulated, info_before=rec.device_info_before,
                                     info_after=rec.device_info_after, disturbed=_disturbance(rec, raw))
    rec.status = stats.status_for(rec.flags)


def _disturbance(rec: RunRecord, raw: RawResult) -> list[str]:
    """Keep the runner's evidence of what the machine did during the timed loop; the reasons it was disturbed."""
    from harness.run import disturbance

    found = disturbance.summary(raw.extra.get("timing_evidence"))
    if found is None:
        return []
    rec.device_info_after = rec.device_info_after or {}
    rec.device_info_after.setdefault("during", {})["disturbance"] = found
    return found["reasons"]


def _fill_measurements(rec: RunRecord, raw: RawResult, manifest: ProgramManifest | None, path: Path) -> None:
    rec.runner = raw.runner or rec.runner
    rec.runner_version = raw.runner_version
    rec.threads = raw.threads or rec.threads
    rec.load_ms, rec.first_inference_ms = raw.load_ms, raw.first_inference_ms
    if raw.extra.get("xnnpack_cache"):
        rec.tags["xnnpack_cache"] = raw.extra["xnnpack_cache"].get("state")  # "written" | "reused": load_ms differs
    rec.latencies_ms = [float(x) for x in raw.latencies_ms]
    stride = raw.extra.get("sample_stride")
    if isinstance(stride, int) and not isinstance(stride, bool) and stride > 1:  # a long --min-seconds run, thinned
        rec.tags["sample_stride"] = stride
    rec.latency = stats.summarize(rec.latencies_ms)
    program_bytes = manifest.program_bytes if manifest else path.stat().st_size
    planned = raw.extra.get("planned_buffer_bytes")  # one size per memory-planned buffer of the method
    arena = sum(planned) if isinstance(planned, list) and planned else None
    rec.memory = {
        "peak_rss_mb": round(raw.peak_rss_kb / 1024, 2) if raw.peak_rss_kb else None,
        "peak_rss_method": f"{raw.runner} runner process, {raw.peak_rss_method}".strip(", "),
        "pss_mb": round(raw.pss_kb / 1024, 2) if raw.pss_kb else None,
        "pss_method": "/proc/self/smaps_rollup at exit" if raw.pss_kb else None,
        "program_mb": round(program_bytes / 2**20, 3),  # MiB, like peak RSS (kB / 1024)
        "arena_mb": round(arena / 2**20, 3) if arena else None,
        "arena_method": "program's planned activation buffers (non_const_buffer_sizes)" if arena else None,
    }
    footprint = raw.extra.get("phys_footprint_kb")  # iOS: the app's memory footprint as sysmontap saw it (not RSS)
    if isinstance(footprint, int) and not isinstance(footprint, bool) and footprint > 0:
        rec.memory["phys_footprint_mb"] = round(footprint / 1024, 2)
        rec.memory["phys_footprint_method"] = str(raw.extra.get("phys_footprint_method") or "")


def _score(outputs: list[list[np.ndarray]], run_inputs: inputs.RunInputs, manifest: ProgramManifest | None) -> dict | None:
    if not outputs:
        return None
    if run_inputs.qa is not None:
        return accuracy.score_squad(outputs, run_inputs, manifest)
    logits = accuracy.logits_of(outputs)
    ref = None
    note = None
    if manifest is not None and manifest.head == "sequence_classification":
        from harness.run import reference

        module = reference.reference_module(manifest)
        if module is None:
            note = "fp32 reference unavailable (checkpoint moved or changed)"
        else:
            enc = run_inputs.encoded or {
                n: np.concatenate([ex[i] for ex in run_inputs.examples], axis=0)
                for i, n in enumerate(("input_ids", "attention_mask", "token_type_ids"))
            }
            ref = reference.reference_logits(module, enc)
    labels = run_inputs.labels if (manifest is None or not manifest.random_weights) else None
    result = accuracy.score(logits, labels if run_inputs.task else None, ref)
    result["task"] = run_inputs.task or "synthetic"
    if manifest is not None and manifest.random_weights:
        result["note"] = "untrained (random) weights: task accuracy not meaningful, agreement only"
    if note:
        result["note"] = note
    return result


def _profile_summary(etdump: Path, pte: Path) -> dict:
    from harness.run.profiling import summarize_etdump

    return summarize_etdump(etdump, pte)
