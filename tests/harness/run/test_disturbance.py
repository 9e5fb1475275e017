"""Evidence for every disturbance: the runner records what the machine did to its timed threads (CPU time and the
time they waited for a CPU, from /proc/self/task/*/schedstat; steal and iowait), the record keeps it, the run is
flagged `disturbed` with the reason, and the report prints the reason next to the row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from harness.run import disturbance


def _hog(cpu: int) -> subprocess.Popen:
    """A busy loop pinned to one CPU: whatever else is pinned there gets about half of it."""
    return subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass"])


def _pinnable_cpu() -> int:
    return sorted(os.sched_getaffinity(0))[0]


def test_a_runner_sharing_its_core_with_a_hog_says_so(bundle, tiny, tmp_path):
    from device_runners.launch import bundle_command
    from tests.support.fixtures_programs import write_token_inputs

    write_token_inputs(tmp_path / "in.bin", 2)
    cpu = _pinnable_cpu()
    hog = _hog(cpu)
    try:
        time.sleep(0.3)
        cmd = bundle_command(str(bundle), "x86_64", [str(a) for a in (
            "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json", "--warmup", 0,
            "--iterations", 5, "--min-seconds", 1, "--threads", 1, "--affinity", cpu)])
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
    finally:
        hog.kill()
        hog.wait()
    assert p.returncode == 0, p.stderr
    ev = json.loads((tmp_path / "r.json").read_text())["timing_evidence"]
    assert ev["wall_s"] >= 1
    (t,) = disturbance.timed_threads(ev)  # one timed thread; the runner's idle threads are not counted
    if t["wait_s"] is None:
        pytest.skip("this kernel keeps no schedstat (CONFIG_SCHED_INFO): no wait times to read")
    assert t["wait_s"] / ev["wall_s"] > 0.2 and t["cpu_s"] / ev["wall_s"] < 0.8  # it shared its core
    found = disturbance.reasons(ev)
    assert found and "1 of 1 timed threads waited for a CPU" in found[0]


def test_a_disturbed_run_is_flagged_and_the_report_says_why(tiny_export, tmp_path):
    results, res = tiny_export
    cpu = _pinnable_cpu()
    hog = _hog(cpu)
    try:
        time.sleep(0.3)
        run = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "r"), "run",
                              "--program", str(res.program), "--device", "host", "--threads", "1", "--affinity",
                              str(cpu), "--iterations", "20", "--warmup", "2", "--min-seconds", "1"],
                             capture_output=True, text=True, timeout=300)
    finally:
        hog.kill()
        hog.wait()
    assert run.returncode == 0, run.stderr
    from harness.store.db import ResultsStore

    (rec,) = ResultsStore(tmp_path / "r").runs()
    found = rec.device_info_after["during"]["disturbance"]
    if found["threads"] and found["threads"][0]["wait_share"] is None:
        pytest.skip("this kernel keeps no schedstat (CONFIG_SCHED_INFO): no wait times to read")
    assert "disturbed" in rec.flags and rec.status == "ok"  # a warning: the numbers stand, with their reason
    assert found["reasons"] and found["threads"][0]["wait_share"] > 0.2
    report = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path / "r"), "report"],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert f"run {rec.run_id}: 1 of 1 timed threads waited for a CPU" in report.stdout


@pytest.mark.parametrize("evidence, expect", [
    ({"wall_s": 2.0, "threads": [{"cpu_s": 1.98, "wait_s": 0.01}, {"cpu_s": 1.9, "wait_s": 0.02}]}, []),
    ({"wall_s": 2.0, "threads": [{"cpu_s": 1.98, "wait_s": 0.01}, {"cpu_s": 1.16, "wait_s": 0.8}]},
     ["1 of 2 timed threads waited for a CPU, up to 40% of the run (that one got 58% of a core)"]),
    ({"wall_s": 2.0, "threads": [{"cpu_s": 2.0, "wait_s": 0.0}, {"cpu_s": 0.0, "wait_s": 0.0}],
      "steal_share": 0.12, "iowait_share": 0.0}, ["CPU steal 12% (a neighbouring VM took the host's CPUs)"]),
    ({"wall_s": 2.0, "threads": [{"cpu_s": 2.0, "wait_s": None}]}, []),  # no schedstat: nothing to say
    (None, []), ({"wall_s": "x"}, []), ({"wall_s": 1.0, "threads": "junk"}, []),
])
def test_reasons_name_what_disturbed_the_run(evidence, expect):
    assert disturbance.reasons(evidence) == expect


def test_a_disturbed_slower_run_is_left_out_of_the_row_while_two_others_remain():
    from harness.reports.markdown import render_md
    from harness.reports.table import build_rows
    from tests.support.factories import rec

    quiet = [rec("int8", ms=10.0, seed=s, campaign="c") for s in (1, 2)]
    slow = rec("int8", ms=15.0, seed=3, campaign="c", flags=["disturbed"],
               device_info_after={"during": {"disturbance": {"reasons": ["1 of 2 timed threads waited for a CPU"]}}})
    [row] = build_rows(quiet + [slow])
    assert row["n_runs"] == 3 and row["n_left_out"] == 1 and row["p50_ms"] < 10.5  # the 15 ms run is not pooled
    assert slow.run_id in row["run_ids"]  # still listed
    md = render_md([row], quiet + [slow])
    assert f"run {slow.run_id}: 1 of 2 timed threads waited for a CPU (left out)" in md
    [alone] = build_rows([quiet[0], slow])  # the evidence and its slowness leave the disturbed one out
    assert alone["n_left_out"] == 1 and alone["ci_scope"] == "within the one run kept"
    from harness.reports.markdown import KEPT_ONE_NOTE, SINGLE_RUN_NOTE
    alone_md = render_md([alone], [quiet[0], slow])  # it says the interval is one run's, and not "runs = 1"
    assert KEPT_ONE_NOTE in alone_md and SINGLE_RUN_NOTE not in alone_md
    fast = rec("int8", ms=10.0, seed=4, campaign="c", flags=["disturbed"], device_info_after=slow.device_info_after)
    [kept] = build_rows(quiet + [fast])  # disturbed, but as fast as the others: it cost no time, so it stays
    assert kept["n_left_out"] == 0 and "kept: no slower than the others" in render_md([kept], quiet + [fast])
    assert "disturbed" not in kept["flags"] and kept["status"] == "ok"  # it cost no time: the row is not marked


@pytest.mark.parametrize("evidence, expect", [
    ({"wall_s": 2.0, "threads": [{"cpu_s": 1.98, "wait_s": 0.01}, {"cpu_s": 1.9, "wait_s": 0.02}]}, False),
    ({"wall_s": 2.0, "threads": [{"cpu_s": 1.98, "wait_s": 0.01}, {"cpu_s": 1.16, "wait_s": 0.8}]}, True),
    ({"wall_s": 2.0, "threads": [{"cpu_s": 2.0, "wait_s": 0.0}], "steal_share": 0.12}, True),
    ({"wall_s": 2.0, "threads": [{"cpu_s": 2.0, "wait_s": 0.0}], "iowait_share": 0.5}, True),
    ({"wall_s": 2.0, "threads": [{"cpu_s": 2.0, "wait_s": None}]}, None),  # no schedstat: cannot say it was quiet
    ({"wall_s": 2.0, "threads": []}, None), (None, None), ({"wall_s": "x", "threads": [{"cpu_s": 1, "wait_s": 0}]}, None),
])
def test_contended_says_whether_other_work_took_the_runs_cpus(evidence, expect):
    """What lets a campaign skip the next run's quiet probe (plan.QUIET_REUSE_S): only a definite False does."""
    assert disturbance.contended(evidence) is expect
