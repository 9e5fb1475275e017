"""One run: put a program and its inputs on a device, start the runner, bring back what it measured, and store a
RunRecord before anything else happens with it. Failures during a run are stored as failed records.

What a run is (RunRequest and its bounds) is harness/run/request.py; its folders on the host and the device
harness/run/device_folders.py; turning the runner's result into the record's numbers harness/run/outcome.py; how
several runs make a campaign harness/run/plan.py."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

from common import interrupts, versions
from common.errors import BadInput, HarnessError, RunnerError
from common.files import cache_dir
from device_runners.base import RunJob, Transport, TransportError, parse_progress, without_progress
from device_runners.tensorfile import TensorFileError, read_tensors, write_tensors
from harness.run import device_folders, device_state, inputs, outcome, stats
from harness.run.outcome import record_measurements  # noqa: F401  (the farm fills a record from a farm's raw result)
from harness.run.request import (MAX_INPUT_BYTES, MAX_ITERATIONS, MAX_MIN_SECONDS, MAX_SAMPLES,  # noqa: F401
                                 MAX_THREADS, MAX_WARMUP, RUNNERS, DeviceTarget, Gates, InputsSpec, RunRequest,
                                 RunSettings, check_input_size, new_campaign, validate)
from harness.run.session import DeviceSession
from harness.store.db import ResultsStore
from harness.store.record import RunRecord, model_identity
from program import pte
from program.manifest import ProgramManifest


class RunInterrupted(interrupts.Interrupted):
    """Ctrl-C or SIGTERM ended a run: everything it started is stopped, its work folder removed, and `record`
    (status "interrupted", the samples measured so far flagged partial) is stored."""

    def __init__(self, record: RunRecord, signame: str):
        super().__init__(signame)
        self.record = record


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run(req: RunRequest, results: Path, progress: Callable[[str], None] = lambda s: None,
        session: DeviceSession | None = None) -> RunRecord:
    """Run one program on one device and store the record (failed runs included). Returns the stored record.

    `session`: the campaign's connection to req.device (harness/run/session.py); None: one of its own, closed after."""
    validate(req)
    path = pte.check_file(req.program)
    manifest = pte.manifest_for(path)
    if session is None:
        with DeviceSession(req.device) as own:
            return _run(req, results, progress, own, path, manifest)
    if session.target != req.device:
        raise ValueError(f"a session of {session.target.name} cannot run a request for {req.device.name}")
    return _run(req, results, progress, session, path, manifest)


def inputs_for(path: Path, manifest: ProgramManifest | None, feed: InputsSpec, inspect_cache: Path | None = None):
    """(the program's input specs, a key naming the inputs `feed` asks for, a function that makes them): real
    examples of feed.task tokenized as the program was exported (inputs.tokenizer_source), else synthetic ones. The
    specs are the manifest's, or read from the program itself. Used by every run and by the device farm."""
    if manifest:
        specs, vocab = manifest.inputs, manifest.vocab_size
    else:
        info = pte.inspect(path, cache_dir=inspect_cache)
        specs, vocab = pte.input_specs(info), info.get("vocab_size")
    check_input_size(specs, feed.samples)
    task = feed.task
    source = inputs.tokenizer_source(manifest, feed.tokenizer) if task else None
    head = manifest.head if manifest else None
    key = (repr(specs), task, feed.samples, vocab, str(source), head)
    return specs, key, lambda: (inputs.from_task(specs, task, feed.samples, vocab, source, head=head) if task
                                else inputs.synthetic(specs, feed.samples, vocab))


def _run(req: RunRequest, results: Path, progress, session: DeviceSession, path: Path,
         manifest: ProgramManifest | None) -> RunRecord:
    from device_runners.catalog import resolve_affinity

    st = req.settings
    profile = session.profile
    affinity = resolve_affinity(profile, st.affinity or profile.affinity)
    if req.gates.max_start_temp is not None and req.gates.cooldown <= 0:
        raise BadInput(f"--max-start-temp {req.gates.max_start_temp:g} needs --cooldown SECONDS: how long it may wait")
    if st.runner == "python" and profile.transport != "local":
        raise BadInput(f"--runner python runs only on the host; device {profile.name} needs --runner native")
    if st.runner_bin is not None and profile.transport in ("ios", "ios-simulator"):
        raise BadInput(f"--runner-bin: device {profile.name} runs only the signed harness app (docs/devices.md)")
    store = ResultsStore(Path(results))
    store.check_writable()  # before a foreign program is inspected or a task is read (seconds); again before set-up
    # a program without a manifest is inspected once per machine (a child of seconds), by its bytes' sha256
    specs, key, make = inputs_for(path, manifest, req.inputs, cache_dir("inspected"))
    run_inputs = session.inputs(key, make)  # made once per campaign: tokenizing a task takes a while

    rec = RunRecord(
        run_id=uuid.uuid4().hex[:12], created_at=_now(), status="failed", device=profile.name,
        harness_version=versions.stack()["harness"], harness_git_sha=versions.git_sha(),
        program_path=str(path.resolve()), program_sha256=manifest.program_sha256 if manifest else None,
        manifest=manifest.to_dict() if manifest else None,
        model=manifest.model if manifest else path.stem, recipe=manifest.recipe if manifest else None,
        seq_len=manifest.seq_len if manifest else (specs[0].shape[-1] if specs and specs[0].shape else None),
        random_weights=manifest.random_weights if manifest else None,
        device_abi=profile.abi, transport=profile.transport, runner=st.runner,
        threads=st.threads or profile.threads, affinity=affinity,
        warmup=st.warmup, iterations=st.iterations, min_seconds=st.min_seconds, tags=dict(req.tags),
        warmup_seconds=st.warmup_seconds, max_seconds=st.max_seconds or None,
    )
    if st.runner_bin is not None:
        rec.tags["runner_bin"] = str(Path(st.runner_bin).resolve())
    if rec.program_sha256 is None:
        rec.program_sha256 = pte.sha256_file(path)
    rec.model_id = model_identity(rec.manifest, rec.model, rec.program_sha256)
    rec.campaign = req.campaign or new_campaign()
    rec.schedule = dict(req.schedule) if req.schedule else None
    rec.timing = st.timing_name()
    # Set-up: nothing has reached the device yet, so a failure here is the user's to fix and is not stored.
    store.check_writable()  # before minutes of measuring, not after
    transport = session.open()
    try:
        progress(f"reading {profile.name}'s state")
        rec.device_info_before = _info(transport)
        session.check_once(rec.device_info_before, progress)
        cores = rec.device_info_before.get("cores")
        if isinstance(cores, int) and rec.threads and rec.threads > cores and not req.device.oversubscribe:
            raise BadInput(f"--threads {rec.threads}: device {profile.name} has {cores} cores; more threads than cores "
                           "time the scheduler, not the model (pass --oversubscribe to measure it anyway)")
        if st.runner == "native" and st.runner_bin is None and not getattr(transport, "launches_app", False):
            from device_runners.build import build_bundle

            progress(f"preparing the {profile.abi} runner bundle")
            build_bundle(profile.abi)  # cached by content hash: the run below finds it ready
    except BaseException:
        session.close()
        raise
    stopped: str | None = None
    try:
        rec.emulated = bool(getattr(transport, "emulated", False))
        _execute(req, rec, transport, profile, path, manifest, run_inputs, progress, session)
    except KeyboardInterrupt as e:  # _execute stopped the runner and cleaned up; the record says how far it got
        stopped = interrupts.signame_of(e)
        rec.status, rec.error = "interrupted", rec.error or f"interrupted by {stopped}"
        session.close()
    except HarnessError as e:
        rec.status, rec.error = "failed", str(e)
    except (TransportError, TimeoutError, OSError) as e:
        rec.status, rec.error = "failed", f"device {profile.name}: {type(e).__name__}: {e}"
        session.close()  # the next run of the campaign connects again
    finally:
        rec.finished_at = _now()
    if stopped:
        with interrupts.deferred():
            store.add(rec)
        raise RunInterrupted(rec, stopped)
    store.add(rec)
    return rec


def _execute(req, rec: RunRecord, transport: Transport, profile, path: Path, manifest: ProgramManifest | None,
             run_inputs: inputs.RunInputs, progress, session: DeviceSession) -> None:
    if req.gates.max_start_temp is not None:
        rec.device_info_before["thermal_gate"] = device_state.thermal_gate(
            transport, req.gates.max_start_temp, req.gates.cooldown, profile.name, progress)
    elif req.gates.cooldown > 0:
        _cool_down(transport, req.gates.cooldown, progress)
    if req.gates.wait_for_quiet > 0:
        rec.device_info_before["quiet_gate"] = device_state.quiet_gate(transport, req.gates.wait_for_quiet, profile.name,
                                                                       progress, seen=req.gates.quiet_seen)
    rec.device_info_before["state"] = device_state.read_state(transport)
    runs = f"{transport.workdir().rstrip('/')}/runs"
    run_dir = f"{runs}/{device_folders.run_folder_prefix()}{rec.run_id}"
    device_folders.sweep_host_run_folders()
    device_folders.sweep_device_run_folders(transport, runs)
    with tempfile.TemporaryDirectory(prefix=f"harness-run-{os.getpid()}-") as tmp:
        tmp = Path(tmp)
        write_tensors(tmp / "inputs.bin", run_inputs.examples)
        job = RunJob(
            program=f"{run_dir}/program.pte", inputs=f"{run_dir}/inputs.bin", result=f"{run_dir}/result.json",
            outputs=f"{run_dir}/outputs.bin" if req.settings.score else None, warmup=req.settings.warmup,
            iterations=req.settings.iterations,
            min_seconds=req.settings.min_seconds, warmup_seconds=req.settings.warmup_seconds, max_seconds=req.settings.max_seconds,
            threads=rec.threads or 1, affinity=rec.affinity,
            etdump=f"{run_dir}/profile.etdp" if req.settings.profile else None, timeout=req.settings.timeout,
            near_cores_ns=(req.gates.near_cores_ns or 0.0) if req.settings.runner == "native" else 0.0,
            settle_seconds=req.gates.wait_for_quiet if req.gates.near_cores_ns else 0.0,
        )
        try:
            device_folders.shell_ok(transport, f"mkdir -p {shlex.quote(run_dir)}", 60, profile.name)
            progress(f"pushing program and {len(run_inputs.examples)} examples to {profile.name}")
            transport.push(path, job.program)
            transport.push(tmp / "inputs.bin", job.inputs)
            cmd = _runner_command(req, transport, profile, job, progress, rec.program_sha256, session)
            where = f"{profile.name} ({req.settings.runner} runner, {job.threads} threads)"
            progress(f"running on {where}")
            sampler = device_state.Sampler(transport).start()
            try:
                rc, out, err = transport.shell(cmd, timeout=req.settings.timeout, on_stderr=_progress_lines(progress, where))
            except KeyboardInterrupt as e:  # the transport has stopped the runner: keep what it measured
                sampler.stop()  # before the transport is used again
                with interrupts.deferred():
                    outcome.keep_partial(rec, transport, job, tmp, manifest, path, interrupts.signame_of(e))
                raise
            finally:
                samples = sampler.stop()
            err = without_progress(err)
            progress(f"collecting the results from {profile.name}")
            raw_text = device_folders.pull_text(transport, job.result, tmp / "result.json")
            if rc != 0:
                reason = outcome.runner_error(raw_text, err or out, rc)
                raise RunnerError(f"runner failed on {profile.name}: {reason}")
            if raw_text is None:
                raise RunnerError(f"runner on {profile.name} exited 0 but wrote no result file")
            raw = outcome.parse_result(raw_text, job, profile.name)
            outputs = None
            if job.outputs:
                transport.pull(job.outputs, tmp / "outputs.bin")
                try:
                    outputs = read_tensors(tmp / "outputs.bin")
                except TensorFileError as e:
                    raise RunnerError(f"runner on {profile.name} wrote a damaged outputs file: {e}") from None
            if req.settings.profile:
                transport.pull(job.etdump, tmp / "profile.etdp")
                rec.profile = outcome.profile_summary(tmp / "profile.etdp", path)
        finally:
            with interrupts.deferred():
                device_folders.cleanup(transport, run_dir)
    rec.device_info_after = _info(transport)
    rec.device_info_after["state"] = device_state.read_state(transport)
    evidence = device_state.throttle_evidence(rec.device_info_before["state"], samples,
                                              rec.device_info_after["state"], rec.affinity)
    rec.device_info_after["during"] = {"samples": samples, "throttle_evidence": evidence}
    outcome.fill_measurements(rec, raw, manifest, path)
    scored = outputs is not None and (run_inputs.task or manifest)
    rec.accuracy = outcome.score(outputs, run_inputs, manifest) if scored else None
    rec.flags = stats.validity_flags(rec.latency.to_json(), emulated=rec.emulated, info_before=rec.device_info_before,
                                     info_after=rec.device_info_after, profiled=req.settings.profile,
                                     evidence=evidence, disturbed=outcome.disturbance_reasons(rec, raw))
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
        if stage == "scoring examples":  # the accuracy pass: one example at a time, seconds each under emulation
            progress(f"{where}: {scoring_text(int(done), int(target), elapsed)}")
            return
        text = f"{where}: {stage}, {done} iterations of at least {target}, {elapsed:.0f} s elapsed"
        if min_s > 0:
            text += f", {max(min_s - elapsed, 0):.0f} s of --min-seconds {min_s:g} left"
        progress(text)

    return on_line


def scoring_text(done: int, total: int, elapsed_s: float) -> str:
    """'scoring example 13/50, about 1:30 left' (the estimate once an example has been scored)."""
    text = f"scoring example {min(done + 1, total)}/{total}" if done < total else f"scored {total}/{total} examples"
    if 0 < done < total:
        left = round(elapsed_s / done * (total - done))
        text += f", about {left // 60}:{left % 60:02d} left"
    return text


def _info(transport: Transport) -> dict:
    try:
        return transport.info()
    except (TransportError, TimeoutError, OSError) as e:
        return {"error": str(e)}


def _runner_command(req: RunRequest, transport: Transport, profile, job: RunJob, progress,
                    program_sha: str, session: DeviceSession) -> str:
    from device_runners.launch import bundle_command, python_runner_command, runner_args

    if req.settings.runner == "python":
        return python_runner_command(runner_args(job), python=sys.executable)
    args = runner_args(job)
    if req.settings.xnnpack_cache:
        # outside the run directory (which is removed after the run): one packed file per program and runner
        cache_dir = f"{transport.workdir().rstrip('/')}/xnnpack-cache"
        device_folders.shell_ok(transport, f"mkdir -p {shlex.quote(cache_dir)}", 60, profile.name)
        args += ["--xnnpack-cache", f"{cache_dir}/{program_sha[:16]}-{req.settings.runner_bin.name if req.settings.runner_bin else 'native'}.bin"]
    if getattr(transport, "launches_app", False):  # iOS: no shell; the transport launches its app with these args
        return transport.app_command(args)
    if req.settings.runner_bin is not None:
        # A runner the user built (same flags and JSON as device_runners/native/runner.cpp), pushed as it is
        own = Path(req.settings.runner_bin)
        sha = pte.sha256_file(own)

        def push() -> str:
            exe = f"{transport.workdir().rstrip('/')}/bin/{sha[:12]}/{own.name}"
            progress(f"pushing {own} to {profile.name}")
            transport.push(own, exe)
            device_folders.shell_ok(transport, f"chmod u+x {shlex.quote(exe)}", 60, profile.name)
            return exe

        return shlex.join([session.installed(f"bin:{sha}", push), *args])
    from device_runners.build import build_bundle
    from device_runners.bundle_install import install_bundle

    remote = session.installed(f"bundle:{profile.abi}", lambda: (  # verified by hash, once per connection
        progress(f"preparing the {profile.abi} runner bundle"),
        install_bundle(transport, build_bundle(profile.abi), progress, profile.name))[1])
    return bundle_command(remote, profile.abi, args, qemu=bool(getattr(transport, "qemu", False)),
                          sysroot=getattr(transport, "sysroot", None))


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

