"""One run: put a program and its inputs on a device, start the runner, bring back what it measured, and store a
RunRecord before anything else happens with it. Failures during a run are stored as failed records."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from device_runners.base import RawResult, RunJob, Transport, TransportError
from device_runners.tensorfile import read_tensors, write_tensors
from harness.run import accuracy
from harness.run import inputs
from harness.export import program
from harness.run import stats
from harness.common import versions
from harness.common.errors import BadInput, DeviceError, HarnessError, ProgramError, RunnerError
from harness.export.manifest import ProgramManifest
from harness.store.record import RunRecord
from harness.store.db import ResultsStore

RUNNERS = ("native", "python")


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
    threads: int | None = None  # None: the device profile's default
    affinity: str | None = None
    task: str | None = None  # score real examples of this task through the program
    samples: int = 8  # examples in the inputs file (with --task: how many are scored)
    profile: bool = False
    cooldown: float = 0.0  # seconds to wait, at most, for temperatures to settle before the run
    timeout: float = 900.0
    devices_file: Path | None = None
    address: str | None = None
    serial: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)


def validate(req: RunRequest) -> None:
    if req.iterations < 1:
        raise BadInput(f"--iterations {req.iterations}: must be at least 1")
    if req.warmup < 0:
        raise BadInput(f"--warmup {req.warmup}: must be 0 or more")
    if req.min_seconds < 0:
        raise BadInput(f"--min-seconds {req.min_seconds}: must be 0 or more")
    if req.threads is not None and req.threads < 1:
        raise BadInput(f"--threads {req.threads}: must be at least 1")
    if req.samples < 1:
        raise BadInput(f"--samples {req.samples}: must be at least 1")
    if req.runner not in RUNNERS:
        raise BadInput(f"unknown --runner {req.runner!r}; known: {', '.join(RUNNERS)}")
    if req.xnnpack_cache and req.runner == "python":
        raise BadInput("--xnnpack-cache needs the native runner (ExecuTorch's Python runtime takes no backend options)")
    if req.runner_bin is not None and not Path(req.runner_bin).is_file():
        raise BadInput(f"--runner-bin {req.runner_bin}: no such file")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run(req: RunRequest, results: Path, progress: Callable[[str], None] = lambda s: None) -> RunRecord:
    """Run one program on one device and store the record (failed runs included). Returns the stored record."""
    from device_runners.catalog import get_profile, make_transport

    validate(req)
    path = program.check_file(req.program)
    manifest = program.manifest_for(path)
    profile = get_profile(req.device, extra=req.devices_file, address=req.address, serial=req.serial)
    if req.runner == "python" and profile.transport != "local":
        raise BadInput(f"--runner python runs only on the host; device {profile.name} needs --runner native")
    store = ResultsStore(Path(results))
    if manifest:
        specs, vocab = manifest.inputs, manifest.vocab_size
    else:
        info = program.inspect(path)
        specs, vocab = program.input_specs(info), info.get("vocab_size")
    if req.task:
        run_inputs = inputs.from_task(specs, req.task, req.samples, vocab,
                                      Path(manifest.checkpoint) if manifest and manifest.checkpoint else None)
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
        threads=req.threads or profile.threads, affinity=req.affinity or profile.affinity,
        warmup=req.warmup, iterations=req.iterations, min_seconds=req.min_seconds, tags=dict(req.tags),
    )
    if req.runner_bin is not None:
        rec.tags["runner_bin"] = str(Path(req.runner_bin).resolve())
    if rec.program_sha256 is None:
        rec.program_sha256 = program.sha256_file(path)
    transport: Transport | None = None
    try:
        transport = make_transport(profile)
        rec.emulated = bool(getattr(transport, "emulated", False))
        _execute(req, rec, transport, profile, path, manifest, run_inputs, progress)
    except HarnessError as e:
        rec.status, rec.error = "failed", str(e)
    except (TransportError, TimeoutError, OSError) as e:
        rec.status, rec.error = "failed", f"device {profile.name}: {type(e).__name__}: {e}"
    finally:
        rec.finished_at = _now()
        if transport is not None:
            transport.close()
    store.add(rec)
    return rec


def _execute(req, rec: RunRecord, transport: Transport, profile, path: Path, manifest: ProgramManifest | None,
             run_inputs: inputs.RunInputs, progress) -> None:
    progress(f"reading {profile.name}'s state")
    if req.cooldown > 0:
        _cool_down(transport, req.cooldown, progress)
    rec.device_info_before = _info(transport)
    run_dir = f"{transport.workdir().rstrip('/')}/runs/{rec.run_id}"
    with tempfile.TemporaryDirectory(prefix="harness-run-") as tmp:
        tmp = Path(tmp)
        write_tensors(tmp / "inputs.bin", run_inputs.examples)
        job = RunJob(
            program=f"{run_dir}/program.pte", inputs=f"{run_dir}/inputs.bin", result=f"{run_dir}/result.json",
            outputs=f"{run_dir}/outputs.bin", warmup=req.warmup, iterations=req.iterations,
            min_seconds=req.min_seconds, threads=rec.threads or 1, affinity=rec.affinity,
            etdump=f"{run_dir}/profile.etdp" if req.profile else None, timeout=req.timeout,
        )
        try:
            _shell(transport, f"mkdir -p {shlex.quote(run_dir)}", 60, profile.name)
            progress(f"pushing program and {len(run_inputs.examples)} examples to {profile.name}")
            transport.push(path, job.program)
            transport.push(tmp / "inputs.bin", job.inputs)
            cmd = _runner_command(req, transport, profile, job, progress, rec.program_sha256)
            progress(f"running on {profile.name} ({req.runner} runner, {job.threads} threads)")
            rc, out, err = transport.shell(cmd, timeout=req.timeout)
            raw_text = _pull_text(transport, job.result, tmp / "result.json")
            if rc != 0:
                reason = _runner_error(raw_text, err or out, rc)
                raise RunnerError(f"runner failed on {profile.name}: {reason}")
            if raw_text is None:
                raise RunnerError(f"runner on {profile.name} exited 0 but wrote no result file")
            raw = RawResult.from_json(raw_text)
            transport.pull(job.outputs, tmp / "outputs.bin")
            outputs = read_tensors(tmp / "outputs.bin")
            if req.profile:
                transport.pull(job.etdump, tmp / "profile.etdp")
                rec.profile = _profile_summary(tmp / "profile.etdp", path)
        finally:
            _cleanup(transport, run_dir)
    rec.device_info_after = _info(transport)
    _fill_measurements(rec, raw, manifest, path)
    rec.accuracy = _score(outputs, run_inputs, manifest) if run_inputs.task or manifest else None
    rec.flags = stats.validity_flags(rec.latency, emulated=rec.emulated, info_before=rec.device_info_before,
                                     info_after=rec.device_info_after, profiled=req.profile)
    rec.status = stats.status_for(rec.flags)


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
    if req.runner_bin is not None:
        # A runner the user built (same flags and JSON as device_runners/native/runner.cpp), pushed as it is
        remote = f"{transport.workdir().rstrip('/')}/bin/{program.sha256_file(req.runner_bin)[:12]}"
        progress(f"pushing {req.runner_bin} to {profile.name}")
        transport.push(Path(req.runner_bin), f"{remote}/{Path(req.runner_bin).name}")
        exe = f"{remote}/{Path(req.runner_bin).name}"
        _shell(transport, f"chmod u+x {shlex.quote(exe)}", 60, profile.name)
        return shlex.join([exe, *args])
    from device_runners.build import build_bundle

    progress(f"preparing the {profile.abi} runner bundle")
    bundle = build_bundle(profile.abi)
    remote = f"{transport.workdir().rstrip('/')}/bundles/{bundle.name}"
    rc, _, _ = transport.shell(f"test -f {shlex.quote(remote)}/.complete", timeout=60)
    if rc != 0:
        progress(f"pushing the runner bundle to {profile.name}")
        for f in sorted(p for p in bundle.rglob("*") if p.is_file()):
            transport.push(f, f"{remote}/{f.relative_to(bundle).as_posix()}")
        _shell(transport, f"chmod -R u+x {shlex.quote(remote)}/bin {shlex.quote(remote)}/lib && "
                          f"touch {shlex.quote(remote)}/.complete", 60, profile.name)
    return bundle_command(remote, profile.abi, args, qemu=bool(getattr(transport, "qemu", False)),
                          sysroot=getattr(transport, "sysroot", None))


def _pull_text(transport: Transport, remote: str, local: Path) -> str | None:
    rc, _, _ = transport.shell(f"test -f {shlex.quote(remote)}", timeout=60)
    if rc != 0:
        return None
    transport.pull(remote, local)
    return local.read_text()


def _runner_error(raw_text: str | None, stderr: str, rc: int) -> str:
    if raw_text:
        try:
            err = json.loads(raw_text).get("error")
            if err:
                return str(err)
        except ValueError:
            pass
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if rc < 0 or rc > 128:
        sig = -rc if rc < 0 else rc - 128
        return f"runner crashed (signal {sig})" + (f": {lines[-1]}" if lines else "")
    return (lines[-1] if lines else f"exit code {rc}")[:300]


def _cleanup(transport: Transport, run_dir: str) -> None:
    try:
        transport.shell(f"rm -rf {shlex.quote(run_dir)}", timeout=60)
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
                                     info_after=rec.device_info_after)
    rec.status = stats.status_for(rec.flags)


def _fill_measurements(rec: RunRecord, raw: RawResult, manifest: ProgramManifest | None, path: Path) -> None:
    rec.runner = raw.runner or rec.runner
    rec.runner_version = raw.runner_version
    rec.threads = raw.threads or rec.threads
    rec.load_ms, rec.first_inference_ms = raw.load_ms, raw.first_inference_ms
    if raw.extra.get("xnnpack_cache"):
        rec.tags["xnnpack_cache"] = raw.extra["xnnpack_cache"].get("state")  # "written" | "reused": load_ms differs
    rec.latencies_ms = [float(x) for x in raw.latencies_ms]
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


def _score(outputs: list[list[np.ndarray]], run_inputs: inputs.RunInputs, manifest: ProgramManifest | None) -> dict | None:
    if not outputs:
        return None
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
