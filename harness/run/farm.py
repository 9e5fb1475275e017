"""A campaign plan on every phone of an AWS Device Farm pool: one RunRecord per device and slot of the plan, stored
like a local adb run's.

`harness farm run` builds a CampaignPlan (harness/run/plan.py) like `harness run` does: its requests (programs,
timing settings, inputs) are validated the same way, and the scheduler's order (plan.order: interleaved rounds in a
seeded shuffle, or blocks) becomes the order every phone runs them in, one Device Farm job per phone. A job cannot
adapt once scheduled, so the plan's extra rounds (--target-ci) are not offered here. As in run_plan, each
program is scored (its outputs written and scored) in its first slot only; its later slots are timed only. device_runners/farm.py does the
AWS side (uploads, the test spec, the run, the artifacts); this module prepares the programs and inputs, and turns
each slot of each device's artifacts into a record with harness/run/measure.py's pieces.

    plan = CampaignPlan([RunRequest.of(a, "farm", iterations=30), RunRequest.of(b, "farm", iterations=30)], rounds=3)
    records = run_farm(plan, FarmPool(pool_arn), results)
"""

from __future__ import annotations

import random
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
from harness.run.plan import CampaignPlan, new_seed, order, validate_plan
from harness.run.request import RunRequest, new_campaign
from harness.store.db import ResultsStore
from harness.store.record import RunRecord, model_identity

ABI = "arm64-v8a"
THREADS = 4  # runner threads on a farm phone when the plan names none
MAX_SLOTS = 200  # runs in one job: each is a snapshot, a runner start and two pulls on a billed device minute


@dataclass
class FarmPool:
    """Where the plan runs: a Device Farm pool, and how its run is scheduled and waited for."""

    pool: str  # device pool ARN
    project: str | None = None  # default: the pool's project
    region: str = "us-west-2"
    job_timeout_minutes: int = 20
    poll_s: float = 30.0
    timeout_s: float = 7200.0


@dataclass
class Prepared:
    """What one farm run uploads (the test package and spec) and what its records are made from."""

    paths: list[Path]  # the plan's programs, checked
    manifests: list  # each program's manifest (None when it has none)
    run_inputs: list[inputs.RunInputs]
    slots: list[tuple[int, int, int, int]]  # the plan's order: (request, round, position, runs in the round)
    seed: int
    package: Path
    spec: Path


def check(plan: CampaignPlan, where: FarmPool) -> list[Path]:
    """Refuse bad options and a missing or damaged program before anything is built, uploaded or stored."""
    validate_plan(plan)
    if not plan.requests:
        raise BadInput("nothing to run: give --program")
    if plan.target_ci is not None:
        raise BadInput("--target-ci: a farm job runs its plan as scheduled and cannot add rounds; use --repeat")
    programs = [str(Path(r.program).resolve()) for r in plan.requests]
    if len(set(programs)) != len(programs):
        raise BadInput("--program: the same program is given twice (use --repeat for more runs of it)")
    if len(plan.requests) * plan.rounds > MAX_SLOTS:
        raise BadInput(f"--repeat {plan.rounds}: {len(plan.requests)} programs x {plan.rounds} rounds is more than "
                       f"{MAX_SLOTS} runs in one farm job")
    if where.job_timeout_minutes < 1:
        raise BadInput(f"--job-timeout {where.job_timeout_minutes}: must be at least 1 minute")
    for req in plan.requests:
        measure.validate(req)
    return [pte.check_file(Path(r.program)) for r in plan.requests]


def _job(req: RunRequest, program: int, slot: int, score: bool) -> RunJob:
    from device_runners import farm

    st = req.settings
    out = farm.slot_outputs(slot)
    return RunJob(**farm.program_files(program), result=out["result"], outputs=out["outputs"] if score else None,
                  warmup=st.warmup, iterations=st.iterations,
                  min_seconds=st.min_seconds, warmup_seconds=st.warmup_seconds, max_seconds=st.max_seconds,
                  threads=st.threads or THREADS, affinity=st.affinity)


def prepare(plan: CampaignPlan, paths: list[Path], tmp: Path, bundle: Path | None = None) -> Prepared:
    """Each program's inputs file, the test package (bundle + programs + inputs + snapshot scripts) and the test
    spec (the plan's slots in its order) in tmp."""
    from device_runners import farm
    from device_runners.build import build_bundle
    from device_runners.launch import bundle_command, runner_args
    from device_runners.tensorfile import write_tensors

    manifests, feeds, files = [], [], []
    for i, (req, path) in enumerate(zip(plan.requests, paths)):
        manifest = pte.manifest_for(path)
        _, _, make = measure.inputs_for(path, manifest, req.inputs)
        feed = make()  # the inputs a local run of the same request would feed
        write_tensors(tmp / f"inputs_{i}.bin", feed.examples)
        manifests.append(manifest)
        feeds.append(feed)
        files.append(tmp / f"inputs_{i}.bin")
    seed = new_seed(plan)
    slots = order(plan, random.Random(seed))
    package = farm.build_package(tmp / "harness_test_package.zip", bundle or build_bundle(ABI), paths, files)
    r = farm.remote_paths()
    first = {}  # program -> its first slot: the one that scores (accuracy once, then timing only, as run_plan)
    for s, (i, *_) in enumerate(slots):
        first.setdefault(i, s)
    cmds = [bundle_command(r["bundle"], ABI, runner_args(_job(plan.requests[i], i, s, first[i] == s)))
            for s, (i, *_) in enumerate(slots)]
    spec = tmp / "harness_test_spec.yml"
    spec.write_text(farm.test_spec(cmds, len(paths)))
    return Prepared(paths, manifests, feeds, slots, seed, package, spec)


def run_farm(plan: CampaignPlan, where: FarmPool, results: Path, df=None,
             progress: Callable[[str], None] = lambda s: None, bundle: Path | None = None) -> list[RunRecord]:
    """Upload, run the plan on every phone of the pool, store one record per device job and slot (failed ones too),
    each with its place in the plan (rec.schedule). `df`: a devicefarm client."""
    from device_runners import farm

    paths = check(plan, where)
    project = where.project or farm.project_of(where.pool)
    df = df or farm.client(where.region)  # no credentials: one line, before anything is built or stored
    pool = farm.check_pool(df, where.pool)
    with tempfile.TemporaryDirectory(prefix="harness-farm-") as tmp:
        progress(f"preparing the {ABI} runner bundle and the test package "
                 f"({len(paths)} programs x {plan.rounds} rounds, {plan.schedule})")
        prep = prepare(plan, paths, Path(tmp), bundle)
        progress(f"uploading the test package ({prep.package.stat().st_size / 2**20:.1f} MB) and the test spec")
        package_arn = farm.upload(df, project, prep.package, farm.PACKAGE_TYPE, where.poll_s)
        spec_arn = farm.upload(df, project, prep.spec, farm.SPEC_TYPE, where.poll_s)
    name = f"harness {paths[0].stem}" + (f" +{len(paths) - 1}" if len(paths) > 1 else "")
    run_arn = farm.schedule(df, project, where.pool, package_arn, spec_arn, name, where.job_timeout_minutes)
    progress(f"scheduled {run_arn} on pool {pool.get('name', where.pool)}; waiting for its jobs")
    farm.wait_run(df, run_arn, where.poll_s, where.timeout_s)
    campaign = plan.campaign or plan.requests[0].campaign or new_campaign("farm")
    store = ResultsStore(Path(results))
    records = []
    for j in farm.jobs(df, run_arn):
        files = farm.job_files(df, j["arn"])
        scored: dict[int, str] = {}  # program -> the run on this phone that scored it
        for slot, (i, rnd, pos, _) in enumerate(prep.slots):
            rec = _record(j, run_arn, prep, plan.requests[i], i, campaign)
            rec.schedule = {"schedule": plan.schedule, "seed": prep.seed, "round": rnd, "position": pos}
            if i in scored:
                rec.schedule["accuracy_from"] = scored[i]
            try:
                _fill(rec, j, files, prep, i, slot)
            except RunnerError as e:
                rec.status, rec.error = "failed", str(e)
            if rec.accuracy and i not in scored:
                scored[i] = rec.run_id
            rec.finished_at = measure._now()
            store.add(rec)
            records.append(rec)
    return records


def _record(j: dict, run_arn: str, prep: Prepared, req: RunRequest, i: int, campaign: str) -> RunRecord:
    from device_runners import farm

    path, manifest = prep.paths[i], prep.manifests[i]
    device = farm.device_description(j)
    st = req.settings
    rec = RunRecord(
        run_id=uuid.uuid4().hex[:12], created_at=measure._now(), status="failed",
        device=f"farm:{device.get('name') or device.get('model') or 'device'}",
        harness_version=versions.stack()["harness"], harness_git_sha=versions.git_sha(),
        program_path=str(path.resolve()),
        program_sha256=manifest.program_sha256 if manifest else pte.sha256_file(path),
        manifest=manifest.to_dict() if manifest else None, model=manifest.model if manifest else path.stem,
        recipe=manifest.recipe if manifest else None, seq_len=manifest.seq_len if manifest else None,
        random_weights=manifest.random_weights if manifest else None, device_abi=ABI, transport="farm",
        runner="native", threads=st.threads or THREADS, warmup=st.warmup, iterations=st.iterations,
        min_seconds=st.min_seconds, warmup_seconds=st.warmup_seconds, max_seconds=st.max_seconds or None,
        timing=st.timing_name(),
        campaign=campaign,
        tags={**req.tags, "farm": "aws-device-farm", "farm_device": device, "farm_job_arn": j.get("arn"),
              "farm_run_arn": run_arn, "clocks": "not pinned (non-rooted farm phone)"})
    rec.model_id = model_identity(rec.manifest, rec.model, rec.program_sha256)
    return rec


def _fill(rec: RunRecord, j: dict, files: dict[str, bytes] | None, prep: Prepared, i: int, slot: int) -> None:
    from device_runners import farm
    from device_runners.tensorfile import read_tensors

    device = rec.tags["farm_device"].get("name", rec.device)
    if files is None:
        raise RunnerError(f"{device}: job {j.get('result', '?')} with no Customer Artifacts "
                          f"({j.get('message') or 'no message'})")
    art = farm.read_artifacts(files, slot)
    rec.device_info_before = {**art.info_before, "farm_device": rec.tags["farm_device"]}
    rec.device_info_after = art.info_after
    if art.result_text is None:
        why = (art.runner_stderr.strip().splitlines() or [j.get("message") or "no output"])[-1]
        raise RunnerError(f"{device}: no result_{slot}.json among the artifacts (job {j.get('result', '?')}: "
                          f"{why[:200]})")
    if art.runner_rc not in (0, None):
        raise RunnerError(f"{device}: runner failed: {outcome.runner_error(art.result_text, art.runner_stderr, art.runner_rc)}")
    raw = RawResult.from_json(art.result_text)
    outputs = None
    if art.outputs is not None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "outputs.bin").write_bytes(art.outputs)
            outputs = read_tensors(Path(tmp) / "outputs.bin")
    measure.record_measurements(rec, raw, prep.manifests[i], prep.paths[i], outputs, prep.run_inputs[i])
