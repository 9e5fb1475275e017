"""`harness farm run` (AWS Device Farm): every boto3 call through botocore's Stubber with its parameters checked,
the presigned PUT and the artifact download against a local http.server, and the generated test spec's commands
run for real (bash + Debian's adb client) against the loopback adb stand-in, whose artifacts become the records."""

from __future__ import annotations

import http.server
import io
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import botocore.session
import pytest
import yaml
from botocore.stub import ANY, Stubber

from tests.support.adb_standin import AdbStandin
from tests.support.tools import require_tool
from device_runners import farm
from common.errors import BadInput, DeviceError
from harness.run.farm import FarmPool, check, prepare, run_farm
from harness.run.plan import CampaignPlan, order
from harness.run.request import RunRequest
from harness.store.db import ResultsStore
from program.manifest import sha256_file
from tests.support.fixtures_programs import cached_tiny_program

ACCOUNT, PROJECT_ID, POOL_ID = "123456789012", "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
POOL = f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:devicepool:{PROJECT_ID}/{POOL_ID}"
PROJECT = f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:project:{PROJECT_ID}"
RUN = f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:run:{PROJECT_ID}/run-1"


class _Files(http.server.BaseHTTPRequestHandler):
    """S3 stand-in: PUT stores the body under the path, GET returns it."""

    store: dict[str, bytes] = {}
    puts: list[tuple[str, str]] = []

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.store[self.path] = body
        self.puts.append((self.path, self.headers.get("Content-Type")))
        self.send_response(200)
        self.end_headers()

    def do_GET(self):
        body = self.store.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def s3():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Files.store.clear()
    _Files.puts.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Files
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def tiny_program():
    pte, _ = cached_tiny_program(seq_len=8)
    return pte


@pytest.fixture(scope="module")
def tiny_int8_program():
    pte, _ = cached_tiny_program(seq_len=8, int8=True)
    return pte


@pytest.fixture(scope="module")
def arm64_bundle():
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++", "adb")
    from device_runners.build import build_bundle

    return build_bundle("arm64-v8a")


def _plan(*programs, rounds=1, **kw):
    """The plan `harness farm run --program A [--program B] --repeat ROUNDS` builds, with tiny timing."""
    return CampaignPlan([RunRequest.of(p, warmup=1, iterations=4, threads=1, samples=2, min_seconds=0.0,
                                       warmup_seconds=0.0, campaign="farm-test") for p in programs],
                        rounds=rounds, campaign="farm-test", **kw)


WHERE = FarmPool(pool=POOL, poll_s=0)


@pytest.fixture(scope="module")
def device_logs(tmp_path_factory, tiny_program, tiny_int8_program, arm64_bundle):
    """The spec's phases run as Device Farm's host would: bash, adb -s $DEVICEFARM_DEVICE_UDID, on the stand-in."""
    os.environ["ADBUTILS_ADB_PATH"] = "/bin/false"
    d = tmp_path_factory.mktemp("farmhost")
    plan = _plan(tiny_program, tiny_int8_program, rounds=2, seed=7)
    prep = prepare(plan, check(plan, WHERE), d, arm64_bundle)
    pkg = d / "package"
    zipfile.ZipFile(prep.package).extractall(pkg)
    logs = d / "logs"
    logs.mkdir()
    spec = yaml.safe_load(prep.spec.read_text())
    assert spec["artifacts"] == ["$DEVICEFARM_LOG_DIR"]
    with AdbStandin(d / "sandbox") as phone:
        env = {**os.environ, "DEVICEFARM_DEVICE_UDID": phone.serial, "DEVICEFARM_TEST_PACKAGE_PATH": str(pkg),
               "DEVICEFARM_LOG_DIR": str(logs), "ANDROID_ADB_SERVER_PORT": str(phone.port)}
        for phase in ("install", "pre_test", "test", "post_test"):
            for cmd in spec["phases"][phase]["commands"]:
                r = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=300,
                                   stdin=subprocess.DEVNULL)
                assert r.returncode == 0, (phase, cmd, r.stdout, r.stderr)
        left = list((phone.sandbox).iterdir())
    assert not left, f"post_test left {left} on the phone"
    return logs, prep


def _zip(logs: Path, drop: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(logs.iterdir()):
            if f.name not in drop:
                z.write(f, f"Host_Machine_Files/$DEVICEFARM_LOG_DIR/{f.name}")  # Device Farm nests them
    return buf.getvalue()


def test_the_spec_runs_the_plan_on_the_phone_in_its_order_and_keeps_its_state(device_logs):
    logs, prep = device_logs
    files = {f.name: f.read_bytes() for f in logs.iterdir()}
    assert prep.slots == order(_plan(*prep.paths, rounds=2, seed=7), random.Random(7))  # run_plan's own order
    assert sorted((i, rnd) for i, rnd, _, _ in prep.slots) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    spec = yaml.safe_load(prep.spec.read_text())["phases"]["test"]["commands"]
    runs = [c for c in spec if "harness_runner" in c]
    assert [f"program_{i}.pte" in c and f"result_{s}.json" in c for s, (c, (i, *_)) in
            enumerate(zip(runs, prep.slots))] == [True] * 4  # slot s runs its program, in the plan's order
    for slot in range(4):
        assert (logs / f"runner_rc_{slot}.txt").read_text().strip() == "0", files.get(f"runner_stderr_{slot}.txt")
        art = farm.read_artifacts(files, slot)
        result = json.loads(art.result_text)
        assert result["runner"] == "native" and len(result["latencies_ms"]) == 4
        for snap in (art.info_before, art.info_after):  # the same snapshot a local adb run stores, once per run
            assert snap["abi"] == "arm64-v8a" and snap["model"] == "Pixel 7" and snap["os"] == "Android 14"
            assert snap["battery_temp_c"] == 31.2 and snap["devinfo_complete"]
    first = [next(s for s, (i, *_) in enumerate(prep.slots) if i == p) for p in (0, 1)]
    for slot, cmd in enumerate(runs):  # each program's first slot writes its outputs (scored once), the rest time only
        assert ("--outputs" in cmd) == (slot in first)
        assert (f"outputs_{slot}.bin" in files) == (slot in first)
    assert files[f"outputs_{first[0]}.bin"] != files[f"outputs_{first[1]}.bin"]  # each slot ran its own program


def _client():
    return botocore.session.get_session().create_client(
        "devicefarm", region_name="us-west-2", aws_access_key_id="AKIDTEST", aws_secret_access_key="secret")


def _stub_uploads(stub, base, fail_spec: str | None = None):
    stub.add_response("get_device_pool", {"devicePool": {"arn": POOL, "name": "three phones"}}, {"arn": POOL})
    for i, (name, kind) in enumerate((("harness_test_package.zip", farm.PACKAGE_TYPE),
                                      ("harness_test_spec.yml", farm.SPEC_TYPE))):
        arn = f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:upload:{PROJECT_ID}/u{i}"
        stub.add_response("create_upload", {"upload": {"arn": arn, "url": f"{base}/up/{name}", "status": "INITIALIZED"}},
                          {"projectArn": PROJECT, "name": name, "type": kind, "contentType": "application/octet-stream"})
        stub.add_response("get_upload", {"upload": {"arn": arn, "status": "PROCESSING"}}, {"arn": arn})
        if fail_spec and kind == farm.SPEC_TYPE:
            stub.add_response("get_upload", {"upload": {"arn": arn, "status": "FAILED", "metadata": fail_spec}},
                              {"arn": arn})
            return
        stub.add_response("get_upload", {"upload": {"arn": arn, "status": "SUCCEEDED"}}, {"arn": arn})


def _job(n, result, name, model, form="PHONE", os_="14"):
    return {"arn": f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:job:{PROJECT_ID}/run-1/{n}", "name": name,
            "result": result, "message": "Tests errored" if result == "ERRORED" else "",
            "device": {"arn": f"arn:aws:devicefarm:us-west-2::device:{n}", "name": name, "manufacturer": "Google",
                       "model": model, "formFactor": form, "platform": "ANDROID", "os": os_}}


def test_a_pool_run_stores_one_record_per_device_and_slot_of_the_plan(tmp_path, s3, device_logs, arm64_bundle):
    logs, prep = device_logs
    base, files = s3
    files.store["/art/pixel7.zip"] = _zip(logs)
    files.store["/art/tablet.zip"] = _zip(logs, drop=("result_1.json",))  # the runner of slot 1 wrote nothing
    df = _client()
    jobs = [_job("00000", "PASSED", "Google Pixel 7", "Pixel 7"), _job("00001", "ERRORED", "Google Pixel 8", "Pixel 8"),
            _job("00002", "FAILED", "Galaxy Tab S9", "SM-X710", form="TABLET")]
    plan = _plan(*prep.paths, rounds=2, seed=7)
    with Stubber(df) as stub:
        _stub_uploads(stub, base)
        stub.add_response("schedule_run", {"run": {"arn": RUN, "status": "SCHEDULING"}}, {
            "projectArn": PROJECT, "devicePoolArn": POOL, "name": f"harness {prep.paths[0].stem} +1",
            "test": {"type": "APPIUM_WEB_PYTHON", "testPackageArn": ANY, "testSpecArn": ANY},
            "executionConfiguration": {"jobTimeoutMinutes": 20}})
        stub.add_response("get_run", {"run": {"arn": RUN, "status": "RUNNING"}}, {"arn": RUN})
        stub.add_response("get_run", {"run": {"arn": RUN, "status": "COMPLETED", "result": "ERRORED"}}, {"arn": RUN})
        stub.add_response("list_jobs", {"jobs": jobs[:2], "nextToken": "page2"}, {"arn": RUN})
        stub.add_response("list_jobs", {"jobs": jobs[2:]}, {"arn": RUN, "nextToken": "page2"})
        for j, art in ((jobs[0], "pixel7"), (jobs[1], None), (jobs[2], "tablet")):
            arts = [{"arn": j["arn"] + "/a", "name": "Customer Artifacts", "type": "CUSTOMER_ARTIFACT",
                     "extension": "zip", "url": f"{base}/art/{art}.zip"}] if art else \
                [{"arn": j["arn"] + "/l", "name": "Logcat", "type": "DEVICE_LOG", "extension": "txt",
                  "url": f"{base}/art/none"}]
            stub.add_response("list_artifacts", {"artifacts": arts}, {"arn": j["arn"], "type": "FILE"})
        records = run_farm(plan, WHERE, tmp_path / "results", df=df, bundle=arm64_bundle)
        stub.assert_no_pending_responses()
    assert [p for p, _ in files.puts[-2:]] == ["/up/harness_test_package.zip", "/up/harness_test_spec.yml"]
    assert {t for _, t in files.puts} == {"application/octet-stream"}
    package = zipfile.ZipFile(io.BytesIO(files.store["/up/harness_test_package.zip"]))
    assert [package.read(f"harness/program_{i}.pte") for i in (0, 1)] == [p.read_bytes() for p in prep.paths]
    assert "devicefarm" not in package.namelist() and "tests/test_harness.py" in package.namelist()
    spec = yaml.safe_load(files.store["/up/harness_test_spec.yml"])["phases"]["test"]["commands"]
    assert sum("harness_runner" in c for c in spec) == 4

    stored = {r.run_id: r for r in ResultsStore(tmp_path / "results").runs()}
    assert {r.run_id for r in records} == set(stored) and len(stored) == 12  # 3 phones x 4 slots
    assert {r.campaign for r in records} == {"farm-test"}
    pixel, errored, tablet = records[:4], records[4:8], records[8:]
    seed = pixel[0].schedule["seed"]
    for recs in (pixel, errored, tablet):  # each phone's records: the plan's slots, in its order
        assert [(r.program_sha256, r.schedule["round"], r.schedule["position"]) for r in recs] == \
            [(sha256_file(prep.paths[i]), rnd, pos) for i, rnd, pos, _ in prep.slots]
        assert {r.schedule["seed"] for r in recs} == {seed} and {r.schedule["schedule"] for r in recs} == {"interleaved"}
    for ok in pixel:
        assert ok.status in ("ok", "invalid") and ok.error is None and len(ok.latencies_ms) == 4
        assert ok.device == "farm:Google Pixel 7" and ok.transport == "farm" and ok.timing == "custom"
        assert ok.tags["farm_job_arn"] == jobs[0]["arn"] and ok.tags["farm_run_arn"] == RUN
        assert ok.tags["farm_device"] == {k: jobs[0]["device"][k] for k in
                                          ("arn", "name", "manufacturer", "model", "formFactor", "platform", "os")}
        assert ok.device_info_before["battery_temp_c"] == 31.2 and ok.device_info_after["abi"] == "arm64-v8a"
        assert ok.latency.p50 > 0 and ok.memory.peak_rss_mb
    assert len({r.model_id for r in pixel}) == 2  # two programs, two rows in the report
    for r in errored:
        assert r.status == "failed" and "no Customer Artifacts" in r.error and "Tests errored" in r.error
    assert [r.status == "failed" for r in tablet] == [False, True, False, False]
    assert "no result_1.json" in tablet[1].error and tablet[1].tags["farm_device"]["formFactor"] == "TABLET"


def test_an_upload_that_fails_processing_stores_nothing(tmp_path, s3, tiny_program, arm64_bundle):
    base, _ = s3
    df = _client()
    with Stubber(df) as stub:
        _stub_uploads(stub, base, fail_spec='{"errorMessage": "The test spec is invalid"}')
        with pytest.raises(DeviceError, match=r"could not process harness_test_spec.yml .*test spec is invalid"):
            run_farm(_plan(tiny_program), WHERE, tmp_path / "results", df=df, bundle=arm64_bundle)
        stub.assert_no_pending_responses()
    assert ResultsStore(tmp_path / "results").runs() == []


def test_a_pool_that_does_not_exist_is_named(tmp_path, tiny_program):
    df = _client()
    with Stubber(df) as stub:
        stub.add_client_error("get_device_pool", "NotFoundException", "Device pool was not found",
                              http_status_code=404, expected_params={"arn": POOL})
        with pytest.raises(BadInput, match=rf"--pool {POOL}: no such device pool \(Device pool was not found\)"):
            run_farm(_plan(tiny_program), WHERE, tmp_path / "results", df=df)
    with pytest.raises(BadInput, match="not a Device Farm pool ARN"):
        run_farm(_plan(tiny_program), FarmPool(pool="my-pool"), tmp_path / "results", df=df)
    assert not (tmp_path / "results").exists()


def test_no_credentials_is_one_line_and_exit_2(tmp_path, tiny_program):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "results"), "farm", "run",
                        "--program", str(tiny_program), "--pool", POOL], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: no AWS credentials found")
    assert not (tmp_path / "results").exists()


def test_help_shows_a_complete_example():
    r = subprocess.run([sys.executable, "-m", "harness.cli", "farm", "run", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0
    assert "harness farm run --program" in r.stdout and "--pool arn:aws:devicefarm:us-west-2:" in r.stdout


@pytest.mark.parametrize("flags, message", [
    (["--program", "{p}", "--program", "{p}"], "error: --program: the same program is given twice (use --repeat"),
    (["--program", "{p}", "--repeat", "0"], "error: --repeat 0: between 1 and 1000"),
    (["--program", "{p}", "--program", "{q}", "--repeat", "101"], "error: --repeat 101: 2 programs x 101 rounds is "
                                                                 "more than 200 runs in one farm job"),
    (["--program", "{p}", "--iterations", "0"], "error: --iterations 0: between 1 and"),
    (["--program", "{p}", "--schedule", "nonsense"], "Invalid value for '--schedule'"),
])
def test_a_bad_plan_is_one_line_and_exit_2_before_any_aws_call(tmp_path, tiny_program, tiny_int8_program, flags,
                                                               message):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # no credentials: the plan is refused first
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    argv = [f.format(p=tiny_program, q=tiny_int8_program) for f in flags]
    r = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "results"), "farm", "run",
                        *argv, "--pool", POOL], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "results").exists()
