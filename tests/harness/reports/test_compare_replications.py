"""A gate that does not cry wolf: `compare` of campaigns takes runs, not samples, as the replications, fails only
when the whole interval of B/A lies above 1 + threshold, warns under 3 runs a side and names B's disturbance.

The run medians here follow what this machine's runs do (docs/statistics.md): a 1-3% spread between quiet runs
of one program, and now and then a run whose second thread lacked a core for its whole length (1.5x slower)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.run.stats import compare_runs_of, compare_samples

THRESHOLD = 0.05


def _campaign(rng, runs: int, median_ms: float, spread: float, disturbed_share: float = 0.0) -> list[float]:
    meds = median_ms * np.exp(rng.normal(0.0, spread, runs))
    slow = rng.random(runs) < disturbed_share
    return list(np.where(slow, meds * 1.5, meds))


def _fails(a, b) -> bool:
    return compare_runs_of(a, b)["ratio_ci"][0] > 1 + THRESHOLD


@pytest.mark.parametrize("spread, disturbed", [(0.01, 0.0), (0.03, 0.0), (0.02, 0.1)])
def test_identical_programs_in_quiet_or_bumpy_campaigns_never_fail_the_gate(spread, disturbed):
    """200 A/A comparisons of 3 runs each; with one unflagged run in ten at 1-thread speed too (what the runner's
    evidence then leaves out is the next test's)."""
    rng = np.random.default_rng(7)
    fails = sum(_fails(_campaign(rng, 3, 11.0, spread, disturbed), _campaign(rng, 3, 11.0, spread, disturbed))
                for _ in range(200))
    assert fails == 0


@pytest.mark.parametrize("spread", [0.01, 0.02, 0.03])
def test_a_15_percent_slowdown_fails_the_gate(spread):
    rng = np.random.default_rng(11)
    caught = sum(_fails(_campaign(rng, 3, 11.0, spread), _campaign(rng, 3, 11.0 * 1.15, spread)) for _ in range(200))
    assert caught >= 190 if spread <= 0.02 else caught >= 150  # a wider spread costs some power, never a false fail


def test_pooled_samples_cry_wolf_where_runs_do_not():
    """Why runs are the replications: three runs of one program each 1-2% apart, 500 samples each, pooled, give an
    interval so narrow that a 5% gap between two such campaigns looks certain."""
    rng = np.random.default_rng(3)
    a_meds, b_meds = [10.0, 10.1, 10.2], [10.5, 10.6, 10.55]  # B's runs 5% above A's: within the machine's swing
    a = np.concatenate([m * (1 + rng.normal(0, 0.02, 500)) for m in a_meds])
    b = np.concatenate([m * (1 + rng.normal(0, 0.02, 500)) for m in b_meds])
    pooled = compare_samples(a, b)
    runs = compare_runs_of(a_meds, b_meds)
    assert pooled["ratio_ci"][1] - pooled["ratio_ci"][0] < runs["ratio_ci"][1] - runs["ratio_ci"][0]
    assert runs["unit"] == "runs" and pooled["unit"] == "samples"


def test_one_disturbed_run_moves_the_ratio_little():
    quiet, bumpy = [10.0, 10.1, 10.05], [10.0, 10.1, 15.0]  # one of B's runs at 1-thread speed
    res = compare_runs_of(quiet, bumpy)
    assert res["ratio"] == pytest.approx(10.1 / 10.05)  # the median of the runs' medians
    assert res["ratio_ci"][0] < 1 + THRESHOLD  # its interval is wide: no failure on one bad run


def test_bad_input_to_the_run_comparison():
    with pytest.raises(ValueError, match="at least 2 runs"):
        compare_runs_of([10.0], [10.0, 11.0])
    with pytest.raises(ValueError, match="positive"):
        compare_runs_of([10.0, 0.0], [10.0, 11.0])
    same = compare_runs_of([10.0, 10.0], [10.0, 10.0])
    assert same["ratio_ci"] == [1.0, 1.0] and same["verdict"] == "no significant difference"


def _group_runs(rng, runs, ms, campaign, disturbed_share=0.0):
    from tests.support.factories import rec

    out = []
    for m in _campaign(rng, runs, ms, 0.02):
        slow = rng.random() < disturbed_share
        out.append(rec("int8", ms=m * (1.5 if slow else 1.0), seed=int(rng.integers(1 << 30)), campaign=campaign,
                       flags=["disturbed"] if slow else []))
    return out


def test_disturbed_runs_are_left_out_of_the_gate_and_named():
    from harness.reports.compare import compare_campaigns, regressions

    rng = np.random.default_rng(5)
    fails = 0
    for i in range(100):  # identical programs; one run in five at 1-thread speed, each seen by the runner
        a, b = _group_runs(rng, 3, 11.0, f"a{i}", 0.2), _group_runs(rng, 3, 11.0, f"b{i}", 0.2)
        fails += bool(regressions(compare_campaigns(a, b, f"a{i}", f"b{i}"), THRESHOLD))
    assert fails == 0
    a, b = _group_runs(rng, 3, 11.0, "a"), _group_runs(rng, 4, 11.0 * 1.15, "b")
    b[0] = _group_runs(rng, 1, 11.0 * 1.15 * 1.5, "b")[0]  # at 1-thread speed
    b[0].flags = ["disturbed"]
    b[0].device_info_after = {"during": {"disturbance": {"reasons": ["1 of 2 timed threads waited for a CPU"]}}}
    res = compare_campaigns(a, b, "a", "b")
    [pair] = res["pairs"]
    assert f"run {b[0].run_id} left out (disturbed" in pair["latency"]["warning"]
    [line] = regressions(res, THRESHOLD)  # a real slow-down still fails, and says what disturbed B
    assert "wholly over the 5% threshold" in line and f"run {b[0].run_id}: 1 of 2 timed threads" in line


def test_fewer_than_three_runs_warn():
    from harness.reports.compare import compare_campaigns, render_campaigns

    rng = np.random.default_rng(9)
    res = compare_campaigns(_group_runs(rng, 2, 11.0, "a"), _group_runs(rng, 3, 11.0, "b"), "a", "b")
    assert "2 runs on one side: fewer than 3" in render_campaigns(res)
    res = compare_campaigns(_group_runs(rng, 1, 11.0, "a"), _group_runs(rng, 3, 11.0, "b"), "a", "b")
    assert "compared sample by sample" in res["pairs"][0]["latency"]["warning"]


def _scheduled(rng, ms: float, campaign: str, slow_share: float = 0.4) -> list:
    """One program's runs as the demo's scheduler makes them on the AVX2 EPYC (docs/statistics.md#pooling): three
    rounds, then more while the runs its row pools are unsettled (plan.needs_more, target 2%), at most six; each run
    falls in an epoch of interference with probability slow_share and is then 15-35% slower throughout, with no
    evidence the runner could see."""
    from harness.run.plan import needs_more
    from tests.support.factories import rec

    runs = []
    for rnd in range(6):
        if rnd >= 3 and not needs_more(runs, 0.02):
            break
        m = ms * float(np.exp(rng.normal(0.0, 0.01)))
        m *= float(rng.uniform(1.15, 1.35)) if rng.random() < slow_share else 1.0
        runs.append(rec("int8", ms=m, seed=int(rng.integers(1 << 30)), campaign=campaign, n=200, spread=0.03))
    return runs


def test_epochs_of_interference_neither_fail_identical_programs_nor_hide_a_slow_down():
    """The issue's goal for the gate (0 false fails in 20 A/A comparisons; a 15% slow-down still fails), as rates
    over 60 pairs of campaigns on a host whose runs fall in slow epochs 40% of the time (the rate measured here):
    at most one false fail in 60, and at least 50 of 60 slow-downs caught."""
    from harness.reports.compare import compare_campaigns, regressions

    rng = np.random.default_rng(11)
    same = slower = 0
    for i in range(60):
        a, b = _scheduled(rng, 11.0, f"a{i}"), _scheduled(rng, 11.0, f"b{i}")
        same += bool(regressions(compare_campaigns(a, b, f"a{i}", f"b{i}"), THRESHOLD))
        a, b = _scheduled(rng, 11.0, f"c{i}"), _scheduled(rng, 11.0 * 1.15, f"d{i}")
        slower += bool(regressions(compare_campaigns(a, b, f"c{i}", f"d{i}"), THRESHOLD))
    assert same <= 1
    assert slower >= 50  # two of B's runs in a quiet epoch within six rounds are enough to see it
