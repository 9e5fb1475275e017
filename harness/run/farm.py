"""A program on every phone of an AWS Device Farm pool: one RunRecord per device, stored like a local adb run's.

device_runners/farm.py does the AWS side (uploads, the test spec, the run, the artifacts); this module prepares
the program and inputs, and turns each device's artifacts into a record with harness/run/measure.py's pieces.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from device_runners.base import RawResult, RunJob
from common import versions
from common.errors import BadInput, RunnerError
from program import pte
from harness.run import inputs, measure, outcome
from harness.store.db import ResultsStore
from harness.store.record import RunRecord

ABI = "arm64-v8a"


@dataclass
class FarmRequest:
    program: Path
    pool: str  # device pool ARN
    project: str | None = None  # default: the pool's project
    region: str = "us-west-2"
    warmup: int = 10
    iterations: int = 50
    threads: int = 4
    task: str | None = None
    samples: int = 8
    job_timeout_minutes: int = 20
    poll_s: float = 30.0
    timeout_s: float = 7200.0


@dataclass
class Prepared:
    """What one farm run uploads: the test package and spec, and what the records are made from."""

    path: Path
    manifest: object
    run_inputs: inputs.RunInputs
    package: Path
    spec: Path


def check(req: FarmRequest) -> Path:
    """Refuse bad options and a missing or damaged program before anything is built, uploaded or stored."""
    measure.validate(measure.RunRequest.of(req.program, iterations=req.iterations, warmup=req.warmup,
                                        threads=req.threads, samples=req.samples))
    if req.job_timeout_minutes < 1:
        raise BadInput(f"--job-timeout {req.job_timeout_minutes}: must be at least 1 minute")
    return pte.check_file(req.program)


def prepare(req: FarmRequest, path: Path, tmp: Path, bundle: Path | None = None) -> Prepared:
    """The inputs file, the test package (bundle + program + inputs + snapshot scripts) and the test spec in tmp."""
    from device_runners import farm
    from device_runners.build import build_bundle
    from device_runners.launch import bundle_command, runner_args
    from device_runners.tensorfile import write_tensors

    manifest = pte.manifest_for(path)
    if manifest:
        specs, vocab = manifest.inputs, manifest.vocab_size
    else:
        info = pte.inspect(path)
        specs, vocab = pte.input_specs(info), info.get("vocab_size")
    run_inputs = (inputs.from_task(specs, req.task, req.samples, vocab,
                                   Path(manifest.checkpoint) if manifest and manifest.checkpoint else None)
                  if req.task else inputs.synthetic(specs, req.samples, vocab))
    r = farm.remote_paths()
    job = RunJob(program=r["program"], inputs=r["inputs"], result=r["result"], outputs=r["outputs"],
                 warmup=req.warmup, iterations=req.iterations, threads=req.threads)
    write_tensors(tmp / "inputs.bin", run_inputs.examples)
    package = farm.build_package(tmp / "harness_test_package.zip", bundle or build_bundle(ABI), path,
                                 tmp / "inputs.bin")
    spec = tmp / "harness_test_spec.yml"
    spec.write_text(farm.test_spec(bundle_command(r["bundle"], ABI, runner_args(job))))
    return Prepared(path, manifest, run_inputs, package, spec)


def run_farm(req: FarmRequest, results: Path, df=None, progress: Callable[[str], None] = lambda s: None,
             bundle: Path | None = None) -> list[RunRecord]:
    """Upload, run on the pool, store one record per device job (failed jobs too). `df`: a devicefarm client."""
    from device_runners import farm

    path = check(req)
    project = req.project or farm.project_of(req.pool)
    df = df or farm.client(req.region)  # no credentials: one line, before anything is built or stored
    pool = farm.check_pool(df, req.pool)
    with tempfile.TemporaryDirectory(prefix="harness-farm-") as tmp:
        progress(f"preparing the {ABI} runner bundle and the test package")
        prep = prepare(req, path, Path(tmp), bundle)
        progress(f"uploading the test package ({prep.package.stat().st_size / 2**20:.1f} MB) and the test spec")
        package_arn = farm.upload(df, project, prep.package, farm.PACKAGE_TYPE, req.poll_s)
        spec_arn = farm.upload(df, project, prep.spec, farm.SPEC_TYPE, req.poll_s)
    run_arn = farm.schedule(df, project, req.pool, package_arn, spec_arn, f"harness {path.stem}",
                            req.job_timeout_minutes)
    progress(f"scheduled {run_arn} on pool {pool.get('name', req.pool)}; waiting for its jobs")
    farm.wait_run(df, run_arn, req.poll_s, req.timeout_s)
    store = ResultsStore(Path(results))
    records = []
    for j in farm.jobs(df, run_arn):
        rec = _record(j, run_arn, prep, req)
        try:
            _fill(rec, j, df, prep)
        except RunnerError as e:
            rec.status, rec.error = "failed", str(e)
        rec.finished_at = measure._now()
        store.add(rec)
        records.append(rec)
    return records


def _record(j: dict, run_arn: str, prep: Prepared, req: FarmRequest) -> RunRecord:
    from device_runners import farm

    path, manifest = prep.path, prep.manifest
    device = farm.device_description(j)
    return RunRecord(
        run_id=uuid.uuid4().hex[:12], created_at=measure._now(), status="failed",
        device=f"farm:{device.get('name') or device.get('model') or 'device'}",
        harness_version=versions.stack()["harness"], harness_git_sha=versions.git_sha(),
        program_path=str(path.resolve()),
        program_sha256=manifest.program_sha256 if manifest else pte.sha256_file(path),
        manifest=manifest.to_dict() if manifest else None, model=manifest.model if manifest else path.stem,
        recipe=manifest.recipe if manifest else None, seq_len=manifest.seq_len if manifest else None,
        random_weights=manifest.random_weights if manifest else None, device_abi=ABI, transport="farm",
        runner="native", threads=req.threads, warmup=req.warmup, iterations=req.iterations, min_seconds=0.0,
        tags={"farm": "aws-device-farm", "farm_device": device, "farm_job_arn": j.get("arn"),
              "farm_run_arn": run_arn, "clocks": "not pinned (non-rooted farm phone)"})


def _fill(rec: RunRecord, j: dict, df, prep: Prepared) -> None:
    from device_runners import farm
    from device_runners.tensorfile import read_tensors

    device = rec.tags["farm_device"].get("name", rec.device)
    files = farm.job_files(df, j["arn"])
    if files is None:
        raise RunnerError(f"{device}: job {j.get('result', '?')} with no Customer Artifacts "
                          f"({j.get('message') or 'no message'})")
    art = farm.read_artifacts(files)
    rec.device_info_before = {**art.info_before, "farm_device": rec.tags["farm_device"]}
    rec.device_info_after = art.info_after
    if art.result_text is None:
        why = (art.runner_stderr.strip().splitlines() or [j.get("message") or "no output"])[-1]
        raise RunnerError(f"{device}: no result.json among the artifacts (job {j.get('result', '?')}: {why[:200]})")
    if art.runner_rc not in (0, None):
        raise RunnerError(f"{device}: runner failed: {outcome.runner_error(art.result_text, art.runner_stderr, art.runner_rc)}")
    raw = RawResult.from_json(art.result_text)
    outputs = None
    if art.outputs is not None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "outputs.bin").write_bytes(art.outputs)
            outputs = read_tensors(Path(tmp) / "outputs.bin")
    measure.record_measurements(rec, raw, prep.manifest, prep.path, outputs, prep.run_inputs)
