"""Far cores: on a cloud VM the hypervisor keeps a 2-thread run's two vCPUs on nearby cores or on far ones (another
CCD or socket) and moves them every few seconds; threads that meet after every operator run 10-35% slower while
they are far apart, with no wait, steal or clock change to show for it. The native runner measures a core-to-core
round trip before, during and after its timed loop, waits (up to a limit) for its CPUs to come close before timing,
and the report names the runs that spent their loop far apart (docs/statistics.md#far-cores)."""

from __future__ import annotations

import json
import os

import pytest

from device_runners.base import RunJob
from device_runners.launch import runner_args
from harness.run import disturbance
from harness.run.measure import RunRequest
from harness.run.plan import CampaignPlan, run_plan
from harness.store.record import RunRecord
from tests.device_runners.test_native import FIRST_CPU, run_native
from tests.support.fixtures_programs import write_token_inputs

TWO_CPUS = len(os.sched_getaffinity(0)) >= 2


def _evidence(bundle, tiny, tmp_path, *extra) -> dict:
    write_token_inputs(tmp_path / "in.bin", 2)
    p = run_native(bundle, "--program", tiny[0], "--inputs", tmp_path / "in.bin", "--result", tmp_path / "r.json",
                   "--warmup", 1, "--iterations", 3, *extra)
    assert p.returncode == 0, p.stderr
    return json.loads((tmp_path / "r.json").read_text())["timing_evidence"]


@pytest.mark.skipif(not TWO_CPUS, reason="needs two CPUs in this process's affinity")
def test_a_two_thread_run_probes_its_cores_before_during_and_after_the_loop(bundle, tiny, tmp_path):
    ev = _evidence(bundle, tiny, tmp_path, "--threads", 2, "--min-seconds", 0.8)
    cores = ev["cores"]
    assert set(cores) == {"before_ns", "after_ns", "during"}
    # about 4 probes a second through a 0.8 s loop; a probe whose two threads did not run at once (a busy machine)
    # is left out rather than guessed, so only the count's ceiling is certain
    assert len(cores["during"]) <= 4 and all(0 < t < 60 and ns > 0 for t, ns in cores["during"])
    assert all(x is None or x > 0 for x in (cores["before_ns"], cores["after_ns"]))
    assert [t for t, _ in cores["during"]] == sorted(t for t, _ in cores["during"])


def test_one_thread_or_one_cpu_measures_no_round_trip(bundle, tiny, tmp_path):
    assert "cores" not in _evidence(bundle, tiny, tmp_path, "--threads", 1)  # nothing meets: nothing to measure
    pinned = tmp_path / "pinned"
    pinned.mkdir()
    assert "cores" not in _evidence(bundle, tiny, pinned, "--threads", 2, "--affinity", FIRST_CPU)  # one CPU


@pytest.mark.skipif(not TWO_CPUS, reason="needs two CPUs in this process's affinity")
def test_the_gate_waits_for_near_cores_up_to_its_limit_and_says_what_it_saw(bundle, tiny, tmp_path):
    # a bar no real round trip meets (0.001 ns): the gate waits its whole limit, then times anyway and says so
    strict = _evidence(bundle, tiny, tmp_path, "--threads", 2, "--near-cores-ns", 0.001, "--settle-seconds", 0.3)
    lenient_dir = tmp_path / "lenient"
    lenient_dir.mkdir()
    lenient = _evidence(bundle, tiny, lenient_dir, "--threads", 2, "--near-cores-ns", 1e5, "--settle-seconds", 5)
    seen = [e["settle"] for e in (strict, lenient) if "settle" in e]  # absent only when the first probe failed
    assert seen, "neither run could probe its cores"
    if "settle" in strict:
        s = strict["settle"]
        assert s["passed"] is False and s["waited_s"] >= 0.3 and s["near_ns"] == pytest.approx(0.001)
        assert any("stayed far apart through a" in r for r in disturbance.reasons(strict))
    if "settle" in lenient:
        assert lenient["settle"]["passed"] is True and lenient["settle"]["waited_s"] == 0


def test_the_runner_is_asked_to_wait_only_with_a_bar_and_a_limit():
    job = RunJob(program="p", inputs="i", result="r")
    assert "--near-cores-ns" not in runner_args(job)  # the first run of a campaign, or a user's own older runner
    assert "--near-cores-ns" not in runner_args(RunJob(program="p", inputs="i", result="r", near_cores_ns=90.0))
    args = runner_args(RunJob(program="p", inputs="i", result="r", near_cores_ns=90.04, settle_seconds=20))
    assert args[-4:] == ["--near-cores-ns", "90.0", "--settle-seconds", "20"]


def _ev(before, during, after, wall=1.0):
    return {"wall_s": wall, "threads": [],
            "cores": {"before_ns": before, "after_ns": after, "during": [[0.25 * (i + 1), x] for i, x in enumerate(during)]}}


def test_a_run_far_apart_for_part_of_its_loop_says_for_how_much():
    [reason] = disturbance.reasons(_ev(90, [95, 450, 460, 100, 92, 88, 91, 93], 90))
    assert reason.startswith("its two CPUs were far apart for 20% of the timed loop") and "460 ns against 92 ns" in reason
    assert disturbance.reasons(_ev(63, [95, 100, 130, 92], 110)) == []  # near throughout: the spread of near probes
    assert disturbance.reasons(_ev(None, [], None)) == []  # no probe: no claim
    assert disturbance.summary(_ev(90, [450] * 300, 90))["cores_ns"][:2] == [90, 450]  # kept, thinned
    assert len(disturbance.summary(_ev(90, [450] * 300, 90))["cores_ns"]) == 121


def _run(rid, probes, p50=1.0):
    return RunRecord(run_id=rid, created_at="", status="ok", device="host", runner="native", campaign="c", model="m",
                     recipe="int8", seq_len=8, threads=2, latency={"p50": p50},
                     device_info_after={"during": {"disturbance": {"cores_ns": probes}}})


def test_a_run_far_apart_throughout_is_named_against_its_siblings():
    runs = [_run("near1", [90, 95, 88]), _run("near2", [100, 92, 97]), _run("far", [450, 470, 460], 1.2)]
    far = disturbance.far_core_runs(runs)
    assert list(far) == ["far"] and "far apart for 100% of the timed loop" in far["far"]
    assert "460 ns against 95 ns near in these runs" in far["far"]  # the median of the near probes 88-100
    assert disturbance.far_core_runs(runs[:2]) == {}


def test_the_campaign_passes_the_nearest_round_trip_seen_to_the_next_runs(tmp_path):
    seen = []

    def device(req, results, label, session=None):
        seen.append(req.gates.near_cores_ns)
        probes = {1: [300, 310], 2: [95, 90], 3: [120, 130]}.get(len(seen), [])
        return RunRecord(run_id=f"r{len(seen)}", created_at="", status="ok", device="host", campaign=req.campaign,
                         latency={"p50": 1.0}, schedule=req.schedule,
                         device_info_after={"during": {"disturbance": {"cores_ns": probes}}})

    run_plan(CampaignPlan([RunRequest.of(program="A"), RunRequest.of(program="B")], rounds=2, seed=1), tmp_path,
             measure=device)
    # the near level of the probes so far: 300-310 alone are near to each other; then 90-95 show what near is
    assert seen == [None, 310, 95, 120]


def test_compare_names_b_runs_whose_cores_were_far_against_a(tmp_path):
    from harness.reports.compare import compare_campaigns
    from harness.run import stats
    from harness.store.record import Latency

    def run(rid, campaign, probes, p50):
        r = _run(rid, probes, p50)
        r.campaign, r.latencies_ms = campaign, [p50 * (1 + 0.001 * i) for i in range(50)]
        r.latency = Latency.from_json(stats.summarize(r.latencies_ms))
        return r

    a = [run(f"a{i}", "A", [90, 95, 92], 1.0) for i in range(3)]
    b = [run(f"b{i}", "B", [450, 470, 460], 1.2) for i in range(3)]  # all of B far apart: B alone cannot tell
    [pair] = compare_campaigns(a, b, "A", "B")["pairs"]
    assert len(pair["disturbed_b"]) == 3 and all("near in the runs of A and B" in x for x in pair["disturbed_b"])


def test_a_device_whose_cores_stay_far_through_a_wait_is_not_waited_for_again(tmp_path):
    seen, said = [], []

    def device(req, results, label, session=None):
        seen.append(req.gates.near_cores_ns)
        settle = {"near_ns": 90, "first_ns": 450, "waited_s": 20, "passed": False} if len(seen) == 2 else None
        return RunRecord(run_id=f"r{len(seen)}", created_at="", status="ok", device="host", campaign=req.campaign,
                         latency={"p50": 1.0}, schedule=req.schedule,
                         device_info_after={"during": {"disturbance": {"cores_ns": [90, 95], "settle": settle}}})

    gates = dict(wait_for_quiet=20)
    run_plan(CampaignPlan([RunRequest.of(program="A", **gates), RunRequest.of(program="B", **gates)], rounds=2,
                          seed=1), tmp_path, measure=device, say=said.append)
    assert seen == [None, 95, None, None]  # waited once, in vain: the rest of the campaign runs without the gate
    assert any("stayed far apart for 20 s" in s for s in said)
