"""build_table: groups, pooled latencies, speed-up and accuracy delta vs fp32, sections, failures."""

import numpy as np
import pandas as pd
import pytest

from harness.reports.table import build_rows, columns
from tests.support.factories import run


def build_table(records) -> pd.DataFrame:
    """build_rows as a DataFrame, to select rows by value (the reports themselves do without pandas)."""
    return pd.DataFrame(build_rows(records), columns=columns())


def _row(df, **match):
    sel = df
    for k, v in match.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def test_speedup_and_accuracy_delta_vs_fp32_on_the_same_device():
    fp32 = run("fp32", median_ms=12.0, seed=1, accuracy={"metric": "accuracy", "value": 0.90, "gate": None})
    int8 = run("int8", median_ms=5.0, seed=2,
               accuracy={"metric": "accuracy", "value": 0.88, "gate": {"ratio": 0.99, "passed": False}})
    df = build_table([fp32, int8])
    r8, r32 = _row(df, recipe="int8"), _row(df, recipe="fp32")
    assert r8["speedup_vs_fp32"] == pytest.approx(np.median(fp32.latencies_ms) / np.median(int8.latencies_ms))
    assert 2.2 < r8["speedup_vs_fp32"] < 2.6
    assert r32["speedup_vs_fp32"] == pytest.approx(1.0)
    assert r8["accuracy_delta_vs_fp32"] == pytest.approx(-0.02)
    assert r8["accuracy_gate"] == "fail" and r32["accuracy_gate"] == ""
    assert (r8["rank"], r32["rank"]) == (1, 2)
    assert r8["p50_ci_low"] < r8["p50_ms"] < r8["p50_ci_high"]
    assert (r8["program_mb"], r8["peak_rss_mb"], r8["load_ms"]) == (7.0, 92.0, 42.0)
    assert r8["weights"] == "random"
    assert r8["rss_method"] == "native runner process, getrusage"
    assert list(df["recipe"]) == ["int8", "fp32"]  # fastest first


def test_runs_of_a_group_are_pooled():
    a, b = run("int8", median_ms=5.0, seed=3), run("int8", median_ms=6.0, seed=4)
    r = _row(build_table([a, b]), recipe="int8")
    pooled = a.latencies_ms + b.latencies_ms
    assert r["n_runs"] == 2 and r["n_samples"] == 80
    assert r["p50_ms"] == pytest.approx(np.median(pooled))
    assert r["p90_ms"] == pytest.approx(np.percentile(pooled, 90))
    assert r["load_ms"] == pytest.approx(np.median([a.load_ms, b.load_ms]))


def test_speedup_compares_only_like_with_like():
    """Another device's fp32, or another thread count's, is not the baseline."""
    df = build_table([run("fp32", device="pixel7", median_ms=20.0, seed=5),
                      run("fp32", device="pixel8pro", threads=1, median_ms=30.0, seed=6),
                      run("fp32", device="pixel8pro", threads=4, median_ms=12.0, seed=7),
                      run("int8", device="pixel8pro", threads=4, median_ms=6.0, seed=8)])
    r8 = _row(df, recipe="int8")
    assert r8["speedup_vs_fp32"] == pytest.approx(2.0, rel=0.05)
    df = build_table([run("fp32", device="pixel7", median_ms=20.0, seed=5), run("int8", median_ms=6.0, seed=8)])
    assert pd.isna(_row(df, recipe="int8")["speedup_vs_fp32"])


def test_emulated_groups_are_a_section_of_their_own_and_never_ranked():
    hw = run("fp32", device="rpi5", median_ms=40.0, seed=9)
    emu = run("int8", device="emu-arm64", median_ms=9000.0, seed=10, emulated=True)
    emu32 = run("fp32", device="emu-arm64", median_ms=20000.0, seed=11, emulated=True)
    df = build_table([emu, hw, emu32])
    assert list(df["section"]) == ["hardware", "emulated", "emulated"]
    e8 = _row(df, recipe="int8")
    assert pd.isna(e8["rank"])
    assert pd.isna(e8["speedup_vs_fp32"])  # an emulator's kernel costs are not a device's (issue #28: "6.13x")
    assert "emulated" in e8["flags"]
    # an emulated fp32 is never the baseline of a hardware run, nor the other way round
    df = build_table([emu32, run("int8", device="emu-arm64", median_ms=1.0, seed=12)])
    assert pd.isna(_row(df, section="hardware")["speedup_vs_fp32"])


def test_failed_runs_show_with_their_error():
    ok = run("fp32", seed=13)
    crashed = run("fp32", status="failed", error="runner failed on pixel8pro: runner crashed (signal 11)\ntrace")
    only_failed = run("int4", status="failed", error="export: heavy ops left outside XNNPACK")
    df = build_table([ok, crashed, only_failed])
    r32, r4 = _row(df, recipe="fp32"), _row(df, recipe="int4")
    assert (r32["status"], r32["n_runs"], r32["n_failed"]) == ("ok", 1, 1)
    assert r32["error"] == "runner failed on pixel8pro: runner crashed (signal 11)"
    assert (r4["status"], r4["n_runs"], r4["error"]) == ("failed", 0, "export: heavy ops left outside XNNPACK")
    assert pd.isna(r4["p50_ms"])


def test_invalid_runs_count_only_when_no_run_is_ok():
    good = run("int8", median_ms=5.0, seed=14)
    throttled = run("int8", median_ms=9.0, seed=15, status="invalid", flags=["throttled"])
    r = _row(build_table([good, throttled]), recipe="int8")
    assert r["p50_ms"] == pytest.approx(np.median(good.latencies_ms)) and r["flags"] == ""
    r = _row(build_table([throttled]), recipe="int8")
    assert r["status"] == "invalid" and r["flags"] == "throttled"
    assert r["p50_ms"] == pytest.approx(np.median(throttled.latencies_ms))


def test_weights_column():
    df = build_table([run("fp32", random=False, seed=16), run("int8", random=None, seed=17,
                                                          manifest={"random_weights": True})])
    assert _row(df, recipe="fp32")["weights"] == "from checkpoint"
    assert _row(df, recipe="int8")["weights"] == "random"


def test_empty():
    df = build_table([])
    assert df.empty and "p50_ms" in df.columns and "speedup_vs_fp32" in df.columns


def test_a_row_of_several_runs_gets_an_interval_across_runs():
    """Five runs at levels 11.0-12.8 ms (the machine moved between them): the two more than 6% above the
    second-fastest (12.6 and 12.8 ms) were slowed throughout and are left out, named; the row's CI is Student's t over the
    three it pools, which still disagree (CV > 3%), and a single run's CI says it only covers that run."""
    from scipy import stats as sps

    runs = [run("fp32", median_ms=m, seed=i) for i, m in enumerate([11.0, 12.8, 11.8, 11.4, 12.6])]
    r = _row(build_table(runs), recipe="fp32")
    meds = [np.median(x.latencies_ms) for x in runs if np.median(x.latencies_ms) < 12.3]
    assert len(meds) == 3
    lo, hi = sps.t.interval(0.95, 2, loc=r["p50_ms"], scale=sps.sem(meds))
    pooled = np.concatenate([x.latencies_ms for x in runs if np.median(x.latencies_ms) < 12.3])
    lo, hi = max(lo, pooled.min()), min(hi, pooled.max())  # t over the pooled medians, within the samples' range
    assert r["p50_ci_low"] <= lo + 1e-9 and r["p50_ci_high"] >= hi - 1e-9
    assert r["p50_ci_low"] <= min(meds) and r["p50_ci_high"] >= max(meds) - 0.2
    assert r["ci_scope"] == "across 3 runs" and r["n_runs"] == 5 and r["n_left_out"] == 2
    assert f"2 of 5 runs slowed throughout (runs {runs[1].run_id}, {runs[4].run_id}:" in r["slowed"]
    assert r["run_cv"] == pytest.approx(np.std(meds, ddof=1) / np.mean(meds))
    assert r["run_cv"] > 0.03 and "runs_disagree" in r["flags"]
    one = _row(build_table([runs[0]]), recipe="fp32")
    assert one["ci_scope"] == "within one run" and pd.isna(one["run_cv"])


def test_runs_that_agree_are_not_flagged():
    runs = [run("fp32", median_ms=m, seed=i) for i, m in enumerate([12.0, 12.05, 11.98])]
    r = _row(build_table(runs), recipe="fp32")
    assert r["run_cv"] < 0.03 and "runs_disagree" not in r["flags"]


def test_markdown_says_when_a_ci_comes_from_one_run_only():
    from harness.reports.report import render
    from harness.reports.markdown import SINGLE_RUN_NOTE

    assert SINGLE_RUN_NOTE in render([run("fp32", seed=1)], "md")
    repeated = [run("fp32", median_ms=m, seed=i) for i, m in enumerate([11.0, 12.8, 12.0])]
    text = render(repeated, "md")
    assert SINGLE_RUN_NOTE not in text and "runs_disagree" in text
