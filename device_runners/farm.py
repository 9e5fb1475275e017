"""AWS Device Farm through boto3: a test package holding the runner bundle, a campaign plan's programs and their
inputs; a custom test spec that pushes them over adb, then runs the plan's slots in the plan's order (snapshot the
phone, run the runner, pull its result and outputs, snapshot again: files suffixed with the slot) and keeps them all
as artifacts.

The spec's commands run on Device Farm's Linux host, one adb device each ($DEVICEFARM_DEVICE_UDID); what they leave
in $DEVICEFARM_LOG_DIR comes back as the job's "Customer Artifacts" zip. The same commands run in the tests against
the loopback adb stand-in, so the spec is exercised, not only the API calls.
"""

from __future__ import annotations

import io

import shlex
import tarfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from common.errors import BadInput, DeviceError

REGION = "us-west-2"  # Device Farm's only region
REMOTE = "/data/local/tmp/harness-farm"  # on the phone: adb's shell user may write here
# A web-app Appium test needs no app upload; its custom environment still gives the host adb to each phone.
TEST_TYPE = "APPIUM_WEB_PYTHON"
PACKAGE_TYPE = "APPIUM_WEB_PYTHON_TEST_PACKAGE"
SPEC_TYPE = "APPIUM_WEB_PYTHON_TEST_SPEC"
ADB = 'adb -s "$DEVICEFARM_DEVICE_UDID"'
SCRIPTS = ("devinfo.sh", "android_info.sh")


def remote_paths() -> dict[str, str]:
    """Where the job's files are on the phone: the bundle, and run/ where the runner writes each slot's result."""
    return {"bundle": f"{REMOTE}/bundle", "run": f"{REMOTE}/run"}


def program_files(program: int) -> dict[str, str]:
    """The phone's paths of the plan's program `program`: its .pte and its inputs (pushed as payload() names them)."""
    return {"program": f"{REMOTE}/program_{program}.pte", "inputs": f"{REMOTE}/inputs_{program}.bin"}


def slot_outputs(slot: int) -> dict[str, str]:
    """Where the runner of slot `slot` writes its result and outputs on the phone (pulled into the job's logs)."""
    run = remote_paths()["run"]
    return {"result": f"{run}/result_{slot}.json", "outputs": f"{run}/outputs_{slot}.bin"}


def payload(programs: int) -> list[str]:
    """The files under harness/ in the package, pushed to the phone as they are named."""
    return ["bundle.tgz", *[f"program_{p}.pte" for p in range(programs)],
            *[f"inputs_{p}.bin" for p in range(programs)], *SCRIPTS]


def build_package(out: Path, bundle: Path, programs: list[Path], inputs: list[Path]) -> Path:
    """The test package zip: Appium Python's layout (tests/, requirements.txt, wheelhouse/) plus harness/ payload:
    the runner bundle, each program of the plan with its inputs, and the snapshot scripts."""
    from device_runners.adb import ANDROID_INFO_SCRIPT
    from device_runners.devinfo import DEVINFO_SCRIPT

    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname="bundle")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("requirements.txt", "")
        z.writestr("wheelhouse/", "")
        z.writestr("tests/test_harness.py", '"""The harness runs from the test spec\'s commands; nothing here."""\n')
        z.writestr("harness/bundle.tgz", tgz.getvalue())
        for i, (program, feed) in enumerate(zip(programs, inputs, strict=True)):
            z.write(program, f"harness/program_{i}.pte")
            z.write(feed, f"harness/inputs_{i}.bin")
        z.writestr("harness/devinfo.sh", DEVINFO_SCRIPT)
        z.writestr("harness/android_info.sh", ANDROID_INFO_SCRIPT + "\n")
    return out


def spec_commands(runner_cmds: list[str], programs: int = 1) -> dict[str, list[str]]:
    """The commands of each phase (bash on the farm host): push; then for each slot of the plan, in the plan's order,
    snapshot, run, pull, snapshot (every file suffixed with the slot); clean. runner_cmds[s] is slot s's command."""
    pkg, log = '"$DEVICEFARM_TEST_PACKAGE_PATH/harness"', '"$DEVICEFARM_LOG_DIR"'
    r = remote_paths()

    def snapshot(when: str, slot: int) -> list[str]:
        return [f"{ADB} shell sh {REMOTE}/devinfo.sh > {log}/devinfo_{when}_{slot}.txt",
                f"{ADB} shell sh {REMOTE}/android_info.sh > {log}/android_{when}_{slot}.txt"]

    test: list[str] = []
    for slot, cmd in enumerate(runner_cmds):
        out = slot_outputs(slot)
        test += [*snapshot("before", slot),
                 f"{ADB} shell {shlex.quote(cmd)} > {log}/runner_stdout_{slot}.txt 2> {log}/runner_stderr_{slot}.txt; "
                 f"echo $? > {log}/runner_rc_{slot}.txt",
                 f"{ADB} pull {out['result']} {log}/result_{slot}.json || true",
                 f"{ADB} pull {out['outputs']} {log}/outputs_{slot}.bin || true",
                 *snapshot("after", slot)]
    return {
        "pre_test": [f"{ADB} shell rm -rf {REMOTE}", f"{ADB} shell mkdir -p {r['run']}",
                     *[f"{ADB} push {pkg}/{name} {REMOTE}/{name}" for name in payload(programs)],
                     f"{ADB} shell {shlex.quote(f'cd {REMOTE} && tar xzf bundle.tgz && rm bundle.tgz && chmod -R u+x bundle/bin bundle/lib')}"],
        "test": test,
        "post_test": [f"{ADB} shell rm -rf {REMOTE}"],
    }


def test_spec(runner_cmds: list[str], programs: int = 1) -> str:
    """The custom test spec (YAML) Device Farm runs for each device of the pool."""
    import yaml

    phases = {"install": {"commands": ["adb version"]}}
    phases.update({k: {"commands": v} for k, v in spec_commands(runner_cmds, programs).items()})
    return yaml.safe_dump({"version": 0.1, "phases": phases, "artifacts": ["$DEVICEFARM_LOG_DIR"]},
                          sort_keys=False, width=1000)


@dataclass
class Artifacts:
    """What one slot of a device's job left in $DEVICEFARM_LOG_DIR, parsed."""

    result_text: str | None
    runner_rc: int | None
    runner_stderr: str
    info_before: dict[str, Any] = field(default_factory=dict)
    info_after: dict[str, Any] = field(default_factory=dict)
    outputs: bytes | None = None


def read_artifacts(files: dict[str, bytes], slot: int = 0) -> Artifacts:
    """Parse one slot of a job's files (name -> bytes) with the same parsers as a local adb run's snapshot."""
    from device_runners.adb import parse_android_info
    from device_runners.devinfo import parse_devinfo

    def text(name):
        return files[name].decode("utf-8", "replace") if name in files else None

    def info(when):
        if f"devinfo_{when}_{slot}.txt" not in files:
            return {}
        snap = parse_devinfo(text(f"devinfo_{when}_{slot}.txt"))
        if "os" in snap:
            snap["os_build"] = snap.pop("os")  # on Android the snippet reports ro.build.description
        snap.update(parse_android_info(text(f"android_{when}_{slot}.txt") or ""))
        return snap

    rc = (text(f"runner_rc_{slot}.txt") or "").strip()
    return Artifacts(result_text=text(f"result_{slot}.json"),
                     runner_rc=int(rc) if rc.lstrip("-").isdigit() else None,
                     runner_stderr=text(f"runner_stderr_{slot}.txt") or "", info_before=info("before"),
                     info_after=info("after"), outputs=files.get(f"outputs_{slot}.bin"))


def unzip_artifacts(blob: bytes) -> dict[str, bytes]:
    """The files of a Customer Artifacts zip by base name (Device Farm nests them under host folders)."""
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        for item in z.infolist():
            if not item.is_dir():
                out[Path(item.filename).name] = z.read(item)
    return out


# --- the AWS side -----------------------------------------------------------------------------------------------


def client(region: str = REGION):
    """A devicefarm client, or a one-line DeviceError when no AWS credentials are configured."""
    import boto3

    session = boto3.Session()
    if session.get_credentials() is None:
        raise DeviceError("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
                          "(docs/devices.md lists the IAM permissions harness farm run needs)")
    return session.client("devicefarm", region_name=region)


def _aws_error(exc) -> tuple[str, str]:
    err = getattr(exc, "response", {}).get("Error", {})
    return err.get("Code", type(exc).__name__), err.get("Message", str(exc))


def project_of(pool_arn: str) -> str:
    """A pool ARN (arn:aws:devicefarm:REGION:ACCOUNT:devicepool:PROJECT/POOL) names its project."""
    head, _, ids = pool_arn.partition(":devicepool:")
    if not head.startswith("arn:aws:devicefarm:") or "/" not in ids:
        raise BadInput(f"--pool {pool_arn!r} is not a Device Farm pool ARN "
                       "(arn:aws:devicefarm:us-west-2:ACCOUNT:devicepool:PROJECT_ID/POOL_ID)")
    return f"{head}:project:{ids.split('/')[0]}"


def check_pool(df, pool_arn: str) -> dict:
    """The pool's description, or BadInput naming the ARN when Device Farm does not know it."""
    from botocore.exceptions import ClientError

    try:
        return df.get_device_pool(arn=pool_arn)["devicePool"]
    except ClientError as exc:
        code, msg = _aws_error(exc)
        if code in ("NotFoundException", "ArgumentException"):
            raise BadInput(f"--pool {pool_arn}: no such device pool ({msg})") from None
        raise DeviceError(f"Device Farm refused get_device_pool: {code}: {msg}") from None


def put(url: str, path: Path, content_type: str = "application/octet-stream", timeout: float = 600) -> None:
    """PUT a file to a presigned S3 URL (the upload step of create_upload)."""
    req = urllib.request.Request(url, data=Path(path).read_bytes(), method="PUT",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
    except OSError as exc:
        raise DeviceError(f"uploading {Path(path).name} to Device Farm failed: {exc}") from None


def download(url: str, timeout: float = 600) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except OSError as exc:
        raise DeviceError(f"downloading a Device Farm artifact failed: {exc}") from None


def _poll(fetch: Callable[[], dict], done: Callable[[dict], bool], what: str, poll_s: float, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        got = fetch()
        if done(got):
            return got
        if time.monotonic() > deadline:
            raise DeviceError(f"{what} still {got.get('status')} after {timeout_s:g} s")
        time.sleep(poll_s)


def upload(df, project_arn: str, path: Path, kind: str, poll_s: float = 5.0, timeout_s: float = 900) -> str:
    """create_upload, PUT the file, poll get_upload until processed; returns the upload ARN."""
    path = Path(path)
    up = df.create_upload(projectArn=project_arn, name=path.name, type=kind,
                          contentType="application/octet-stream")["upload"]
    put(up["url"], path)
    done = _poll(lambda: df.get_upload(arn=up["arn"])["upload"], lambda u: u["status"] in ("SUCCEEDED", "FAILED"),
                 f"upload {path.name}", poll_s, timeout_s)
    if done["status"] == "FAILED":
        why = done.get("metadata") or done.get("message") or "no reason given"
        raise DeviceError(f"Device Farm could not process {path.name} ({kind}): {why}")
    return up["arn"]


def schedule(df, project_arn: str, pool_arn: str, package_arn: str, spec_arn: str, name: str,
             job_timeout_minutes: int) -> str:
    """schedule_run of the custom test on every device of the pool; returns the run ARN."""
    return df.schedule_run(projectArn=project_arn, devicePoolArn=pool_arn, name=name,
                           test={"type": TEST_TYPE, "testPackageArn": package_arn, "testSpecArn": spec_arn},
                           executionConfiguration={"jobTimeoutMinutes": job_timeout_minutes})["run"]["arn"]


def wait_run(df, run_arn: str, poll_s: float = 30.0, timeout_s: float = 7200) -> dict:
    return _poll(lambda: df.get_run(arn=run_arn)["run"], lambda r: r["status"] == "COMPLETED",
                 f"run {run_arn}", poll_s, timeout_s)


def _pages(call, key: str, **kwargs) -> list[dict]:
    out, token = [], None
    while True:
        page = call(**kwargs, **({"nextToken": token} if token else {}))
        out += page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return out


def jobs(df, run_arn: str) -> list[dict]:
    """One job per device of the pool: device description, result, message."""
    return _pages(df.list_jobs, "jobs", arn=run_arn)


def job_files(df, job_arn: str) -> dict[str, bytes] | None:
    """The files the spec left in $DEVICEFARM_LOG_DIR for one job, or None when the job has no such artifact."""
    arts = _pages(df.list_artifacts, "artifacts", arn=job_arn, type="FILE")
    found = [a for a in arts if a.get("type") == "CUSTOMER_ARTIFACT"]
    if not found:
        return None
    files: dict[str, bytes] = {}
    for a in found:
        blob = download(a["url"])
        if a.get("extension") == "zip" or blob[:2] == b"PK":
            files.update(unzip_artifacts(blob))
        else:
            files[f"{a['name']}.{a['extension']}" if a.get("extension") else a["name"]] = blob
    return files


def device_description(job: dict) -> dict[str, Any]:
    """The farm's description of a job's phone, as stored with the record."""
    d = job.get("device", {})
    keys = ("arn", "name", "manufacturer", "model", "modelId", "formFactor", "platform", "os", "cpu",
            "resolution", "memory")
    return {k: d[k] for k in keys if k in d}


