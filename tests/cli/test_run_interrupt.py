"""Ctrl-C, SIGTERM and SIGKILL of `harness run` as a user (or a CI supervisor) sends them: a long run on a tiny
program, started as a real process on every transport; within 3 s nothing of the run is left (checked by pid), the
work folder is gone, the exit code is 130 and the store holds the run as `interrupted` with its partial samples."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from device_runners.workdir import host_default

from tests.support.adb_standin import AdbStandin
from tests.support.tools import require_tool
from harness.store.db import ResultsStore
from tests.support.sshd_fixture import Sshd, require_sshd

FIRST_CPU = str(min(os.sched_getaffinity(0)))  # CPU 0 may be outside a cpuset

GONE_WITHIN_S = 30  # half the runs' --min-seconds: what is gone by then was ended by the signal, on any CPU
LONG = ["--min-seconds", "60", "--iterations", "1000000", "--warmup", "0", "--samples", "2"]


class HarnessRun:
    """`harness run ... --min-seconds 60` in the background; stderr is read as it comes."""

    def __init__(self, results: Path, program: Path, args: list[str], env: dict[str, str]):
        cmd = [sys.executable, "-m", "harness.cli", "--results", str(results), "run", "--program", str(program),
               *LONG, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **env})
        self.err: list[str] = []
        self.out = ""
        self._timing = threading.Event()
        self._reader = threading.Thread(target=self._read_err, daemon=True)
        self._reader.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)
            if ": timing, " in line:  # the runner's progress line, streamed from the device
                self._timing.set()

    def wait_timing(self, timeout: float = 120) -> None:
        if not self._timing.wait(timeout):
            self.proc.kill()
            pytest.fail(f"the runner never reported timing progress:\n{''.join(self.err)}")

    def finish(self, timeout: float = 30) -> int:
        self.out = self.proc.stdout.read()
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        return rc


def run_pids(harness_pid: int, marker: str) -> list[psutil.Process]:
    """The run's processes: descendants of harness, and processes on the 'device' whose command line holds marker
    (sshd's and the adb stand-in's children are not harness's descendants)."""
    procs = {p.pid: p for p in psutil.Process(harness_pid).children(recursive=True)}
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []) and p.pid != harness_pid:
            procs[p.pid] = p
    return list(procs.values())


def alive(procs: list[psutil.Process]) -> list[str]:
    """Those still running (a zombie waiting for init to reap it runs nothing); is_running() checks the pid's
    start time too, so a reused pid is not mistaken for ours."""
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return left


def interrupt_and_check(run: HarnessRun, sig: int, marker: str, results: Path) -> "RunRecord":  # noqa: F821
    run.wait_timing()
    time.sleep(0.5)  # some samples measured
    procs = run_pids(run.proc.pid, marker)
    assert any("harness_runner" in " ".join(p.cmdline()) or "python_runner" in " ".join(p.cmdline())
               for p in procs if p.is_running()), [p.cmdline() for p in procs]
    t0 = time.monotonic()
    run.proc.send_signal(sig)
    rc = run.finish()
    # A guard, not a speed test: the run times for --min-seconds 60, so everything gone well before that means the
    # signal ended it (on one loaded core the teardown of sshd's or the adb stand-in's children can take seconds).
    deadline = t0 + GONE_WITHIN_S
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(procs) == [], f"left behind {time.monotonic() - t0:.1f} s after {signal.Signals(sig).name}"
    assert rc == 130, "".join(run.err)
    assert f"interrupted by {signal.Signals(sig).name}" in "".join(run.err)
    recs = ResultsStore(results).runs()
    assert len(recs) == 1
    rec = recs[0]
    assert rec.status == "interrupted" and signal.Signals(sig).name in rec.error
    assert "interrupted run" in run.out and rec.run_id in run.out
    return rec


def assert_partial(rec) -> None:
    assert "partial" in rec.flags and rec.latencies_ms, rec.error
    assert rec.latency.n == len(rec.latencies_ms) and "timed iterations (partial)" in rec.error


@pytest.fixture(scope="module")
def program(tiny_export):
    return tiny_export[1].program  # a harness program (with its manifest): test-tiny, seq 16


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_host_run_interrupted(program, tmp_path, sig):
    run = HarnessRun(tmp_path / "results", program, ["--device", "host"], {})
    rec = interrupt_and_check(run, sig, str(program), tmp_path / "results")
    assert_partial(rec)
    runs = Path(host_default()) / "runs"  # the host profile's work folder
    assert not any(d.name.endswith(rec.run_id) for d in runs.glob("*"))


def test_python_runner_interrupted_keeps_its_samples(program, tmp_path):
    run = HarnessRun(tmp_path / "results", program, ["--device", "host", "--runner", "python"], {})
    rec = interrupt_and_check(run, signal.SIGINT, str(program), tmp_path / "results")
    assert_partial(rec)
    assert rec.runner == "python"


def test_sigkill_of_harness_takes_the_runner_with_it(program, tmp_path):
    run = HarnessRun(tmp_path / "results", program, ["--device", "host"], {})
    run.wait_timing()
    procs = run_pids(run.proc.pid, str(program))
    assert procs
    t0 = time.monotonic()
    run.proc.kill()
    run.finish()
    while alive(procs) and time.monotonic() < t0 + GONE_WITHIN_S:
        time.sleep(0.05)
    assert alive(procs) == []  # the watchdog saw harness's end of its pipe close
    import tempfile

    left = list(Path(tempfile.gettempdir()).glob(f"harness-run-{run.proc.pid}-*"))
    assert left  # kill -9 gave harness no chance to remove its scratch folder (issue #18, class 6) ...
    p = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "next"), "run", "--program",
                        str(program), "--iterations", "2", "--warmup", "0"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert not any(d.exists() for d in left)  # ... the next run swept it: its harness is gone


def test_emulated_arm64_run_interrupted(program, tmp_path):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    run = HarnessRun(tmp_path / "results", program, ["--device", "emu-arm64"], {})
    run.wait_timing(timeout=300)
    sandboxes = {a for p in run_pids(run.proc.pid, "harness-qemu-") for a in p.cmdline() if "harness-qemu-" in a}
    rec = interrupt_and_check(run, signal.SIGINT, "harness-qemu-", tmp_path / "results")
    assert_partial(rec)
    roots = {Path("/tmp") / a.split("/tmp/", 1)[1].split("/", 1)[0] for a in sandboxes if "/tmp/" in a}
    assert roots and not any(r.exists() for r in roots)  # the emulated device's files, work folder included


def test_ssh_board_run_interrupted(program, tmp_path):
    require_sshd()
    board = tmp_path / "board"
    with Sshd(tmp_path / "sshd") as sshd:
        catalog = tmp_path / "lab.toml"
        catalog.write_text(f'[board]\nabi = "x86_64"\ntransport = "ssh"\naddress = "{sshd.address}"\nthreads = 1\n'
                           f'workdir = "{board}"\noptions = {{ key_file = "{sshd.key}" }}\n')
        run = HarnessRun(tmp_path / "results", program, ["--device", "board", "--devices-file", str(catalog)],
                         {"XDG_CONFIG_HOME": str(tmp_path / "config")})
        rec = interrupt_and_check(run, signal.SIGTERM, str(board), tmp_path / "results")
        assert_partial(rec)
        assert list((board / "runs").iterdir()) == []


def test_adb_phone_run_interrupted(program, tmp_path):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    with AdbStandin(tmp_path / "phone", serial="28121FDH2000AB") as phone:
        env = {"ADBUTILS_ADB_PATH": "/bin/false", "ANDROID_ADB_SERVER_PORT": str(phone.port),
               "HARNESS_PIXEL7_SERIAL": phone.serial}
        run = HarnessRun(tmp_path / "results", program, ["--device", "pixel7", "--threads", "1", "--affinity", FIRST_CPU],
                         env)
        # the phone-like stand-in runs commands chrooted: their command lines hold device paths, not host ones
        marker = "/data/local/tmp/harness" if phone.root.joinpath("system", "bin").exists() else str(phone.sandbox)
        rec = interrupt_and_check(run, signal.SIGINT, marker, tmp_path / "results")
        assert_partial(rec)
        assert list((phone.sandbox / "harness" / "runs").iterdir()) == []


def test_a_signal_during_shutdown_ends_quietly_with_the_chosen_code():
    """torchrun stops a failed rank with SIGTERM while the interpreter runs its atexit handlers (torch's imports a
    module then): the process must end with the code it chose, without a traceback after its one error line."""
    code = ("import atexit, os, signal, time\n"
            "from common import interrupts\n"
            "interrupts.install()\n"
            "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(5)))\n"
            "interrupts.exiting(2)\n"
            "raise SystemExit(2)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
