"""The clock canary: both runners time a fixed chain of dependent multiply-adds right before and right after the
timed loop, so a run whose machine was slower (a clock cap, a host that moved the VM) says so even when no thread
waited for a CPU, and compare names it when B's machine was slower than A's."""

from __future__ import annotations

import pytest

from harness.reports.compare import compare_campaigns, regressions
from harness.run import disturbance, measure
from harness.store.record import Latency, RunRecord


@pytest.mark.parametrize("runner", ["native", "python"])
def test_both_runners_time_the_canary_around_the_loop(tiny_export, runner):
    results, res = tiny_export
    rec = measure.run(measure.RunRequest.of(res.program, "host", runner=runner, warmup=1, iterations=5), results)
    assert rec.status in ("ok", "invalid"), rec.error
    before, after = rec.device_info_after["during"]["disturbance"]["canary_ns"]
    assert before > 0 and after > 0
    assert disturbance.run_canary(rec) == pytest.approx((before + after) / 2)


def _evidence(before, after):
    return {"wall_s": 1.0, "threads": [], "canary": {"before_ns": before, "after_ns": after}}


def test_a_clock_that_moves_during_the_run_is_a_reason():
    assert disturbance.reasons(_evidence(1.0, 1.2)) == [
        "the CPU's clock moved during the run: the canary took +20% after the timed loop against before it"]
    assert disturbance.reasons(_evidence(1.0, 1.01)) == []  # within the quiet spread
    assert disturbance.reasons({"wall_s": 1.0, "threads": []}) == []  # a runner without a canary: no claim


def _run(rid, canary_ns, p50=10.0, campaign="A"):
    return RunRecord(run_id=rid, created_at="", status="ok", device="host", runner="native", campaign=campaign,
                     model="m", recipe="fp32", seq_len=8, threads=1, timing="default",
                     latencies_ms=[p50 * (1 + 0.001 * i) for i in range(50)],
                     device_info_after={"during": {"disturbance": {"canary_ns": [canary_ns, canary_ns]}}})


def test_the_run_on_a_slower_machine_is_named_among_its_siblings():
    runs = [_run("r1", 1.00), _run("r2", 1.01), _run("r3", 0.99), _run("r4", 1.20)]
    slow = disturbance.slow_clock_runs(runs)
    assert list(slow) == ["r4"] and "+19%" in slow["r4"]  # 1.20 against the median 1.005
    assert disturbance.slow_clock_runs(runs[:2]) == {}  # two runs: no median to stand against


def test_compare_names_a_slower_machine_in_the_regression_line():
    a = [_run(f"a{i}", 1.0, 10.0, "A") for i in range(3)]
    b = [_run(f"b{i}", 1.15, 11.5, "B") for i in range(3)]  # everything 15% slower, the canary too
    for r in a + b:
        r.latency = Latency.from_json(measure.stats.summarize(r.latencies_ms))
    lines = regressions(compare_campaigns(a, b, "A", "B"), 0.05)
    assert len(lines) == 1 and "the machine ran slower: the clock canary took +15%" in lines[0], lines
