"""A host that is busy before a run starts waits for quiet, up to a limit, and says so; the record keeps what the
gate saw. A busy loop on every CPU is the other work."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from harness.run.device_state import QUIET_BUSY, busy_share, quiet_gate


def _hogs() -> list[subprocess.Popen]:
    return [subprocess.Popen(["taskset", "-c", str(c), sys.executable, "-c", "while True: pass"])
            for c in sorted(os.sched_getaffinity(0))]


def test_a_busy_host_is_waited_for_then_run_anyway_and_the_record_says_so(tiny_export, tmp_path):
    from device_runners.local import LocalTransport

    hogs = _hogs()
    try:
        time.sleep(0.3)
        assert busy_share(LocalTransport(str(tmp_path / "w"))) > QUIET_BUSY
        said = []
        gate = quiet_gate(LocalTransport(str(tmp_path / "w")), 1.0, "host", said.append)
        assert gate["passed"] is False and gate["waited_s"] >= 1.0 and len(gate["readings"]) >= 2
        assert any("waiting for host to be quiet" in s for s in said) and "running anyway" in said[-1]
        results, res = tiny_export
        run = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "r"), "run",
                              "--program", str(res.program), "--wait-for-quiet", "1", "--timing", "quick"],
                             capture_output=True, text=True, timeout=300)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert run.returncode == 0, run.stderr
    from harness.store.db import ResultsStore

    (rec,) = ResultsStore(tmp_path / "r").runs()
    assert rec.device_info_before["quiet_gate"]["passed"] is False
    assert "waiting for host to be quiet" in run.stderr + run.stdout


def test_bad_wait_is_one_line(tiny, tmp_path):
    run = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "r"), "run",
                          "--program", str(tiny[0]), "--wait-for-quiet", "-3"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and "--wait-for-quiet -3" in run.stderr and "Traceback" not in run.stderr
