"""compare_runs / render_comparison: verdicts, deltas, caveats, and refusals."""

import numpy as np
import pytest

from harness.reports.compare import compare_runs, render_comparison
from common.errors import BadInput
from tests.support.factories import run


def test_faster_with_deltas():
    a = run("fp32", median_ms=12.0, seed=1, accuracy={"metric": "accuracy", "value": 0.90})
    b = run("int8", median_ms=9.0, seed=2, accuracy={"metric": "accuracy", "value": 0.88,
                                                      "gate": {"ratio": 0.99, "passed": False}})
    r = compare_runs(a, b)
    assert r["latency"]["verdict"] == "faster"
    assert r["latency"]["ratio"] == pytest.approx(np.median(b.latencies_ms) / np.median(a.latencies_ms))
    assert r["load_ms"] == {"a": 41.0, "b": 42.0, "diff": 1.0, "ratio": pytest.approx(42 / 41)}
    assert r["accuracy"]["diff"] == pytest.approx(-0.02)
    assert r["gate"] == {"a": "", "b": "fail"}
    text = render_comparison(r)
    assert text.startswith(f"A: {a.run_id}") and "**B is faster: 1.3" in text and "-0.0200" in text


def test_same_program_twice_is_no_difference():
    a, b = run("int8", median_ms=6.0, seed=3), run("int8", median_ms=6.0, seed=4)
    r = compare_runs(a, b)
    assert r["latency"]["verdict"] == "no significant difference"
    assert "not measurably different" in render_comparison(r)


def test_caveats_name_what_differs():
    a = run("fp32", threads=1, seed=5, random=False)
    b = run("int8", threads=4, seed=6, status="invalid", flags=["throttled"], random=False)
    caveats = compare_runs(a, b)["caveats"]
    assert "different threads: 1 vs 4" in caveats
    assert any("is invalid (throttled)" in c for c in caveats)
    assert not any("random" in c for c in caveats)


def test_refusals_name_the_run():
    hw, emu = run("fp32", seed=7), run("fp32", device="emu-arm64", seed=8, emulated=True)
    with pytest.raises(BadInput, match=f"run {emu.run_id} is emulated and {hw.run_id} ran on hardware"):
        compare_runs(hw, emu)
    failed = run("int8", status="failed", error="boom")
    with pytest.raises(BadInput, match=f"run {failed.run_id} failed \\(boom\\)"):
        compare_runs(hw, failed)
    few = run("int8", seed=9, n=1)
    with pytest.raises(BadInput, match=f"run {few.run_id} has 1 latency samples"):
        compare_runs(few, hw)


def test_two_emulated_runs_compare_with_a_caveat():
    a = run("fp32", device="emu-arm64", median_ms=9000.0, seed=10, emulated=True)
    b = run("int8", device="emu-arm64", median_ms=3000.0, seed=11, emulated=True)
    r = compare_runs(a, b)
    assert r["latency"]["verdict"] == "faster"
    assert "both runs are emulated: functional timings only" in r["caveats"]
