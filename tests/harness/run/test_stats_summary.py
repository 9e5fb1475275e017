"""harness.run.stats against numpy/scipy references, on fixed-seed draws and on latencies timed here."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from common.errors import BadInput
from harness.run.stats import PRESETS, TimingPreset, bootstrap_medians, median, percentiles, preset, summarize


def _timed_samples(n: int) -> list[float]:
    """Real latencies: a small matmul timed on this machine."""
    a = np.random.default_rng(0).standard_normal((48, 48))
    out = []
    for _ in range(n):
        t = time.perf_counter()
        a @ a
        out.append((time.perf_counter() - t) * 1000)
    return out


@pytest.mark.parametrize("n", [1, 2, 9, 50, 1001])
def test_summary_matches_numpy_and_scipy(n):
    x = np.random.default_rng(n).lognormal(mean=2.0, sigma=0.4, size=n)
    s = summarize(x)
    assert s["n"] == n
    assert s["mean"] == pytest.approx(x.mean())
    assert s["median"] == s["p50"] == pytest.approx(np.median(x))
    assert s["p90"] == pytest.approx(np.percentile(x, 90))
    assert s["p99"] == pytest.approx(np.percentile(x, 99))
    assert s["std"] == pytest.approx(x.std(ddof=1) if n > 1 else 0.0)
    assert (s["min"], s["max"]) == (x.min(), x.max())
    assert s["trimmed_mean"] == pytest.approx(sps.trim_mean(x, 0.1))
    assert s["cv"] == pytest.approx(s["std"] / s["mean"])
    lo, hi = s["ci95_median"]
    assert x.min() <= lo <= s["median"] <= hi <= x.max()


def test_trimmed_mean_ignores_outliers_but_mean_does_not():
    x = np.r_[np.full(90, 10.0), np.full(10, 1000.0)]
    s = summarize(x)
    assert s["trimmed_mean"] == pytest.approx(10.0)
    assert s["mean"] == pytest.approx(109.0)


@pytest.mark.parametrize("n", [7, 8, 40])
def test_bootstrap_draw_matches_plain_resampling(n):
    """The order-statistic draw must give the same distribution as resampling with replacement."""
    x = np.random.default_rng(42).gamma(2.0, 3.0, size=n)
    fast = bootstrap_medians(x, resamples=100_000, seed=1)
    idx = np.random.default_rng(2).integers(0, n, size=(100_000, n))
    plain = np.median(x[idx], axis=1)
    for q in (2.5, 25, 50, 75, 97.5):
        assert np.percentile(fast, q) == pytest.approx(np.percentile(plain, q), rel=0.02)
    assert sps.ks_2samp(fast, plain).pvalue > 1e-3


def test_ci_agrees_with_scipy_bootstrap():
    x = np.random.default_rng(5).normal(20.0, 2.0, size=300)
    ref = sps.bootstrap((x,), np.median, method="percentile", n_resamples=20_000, random_state=0).confidence_interval
    lo, hi = summarize(x)["ci95_median"]
    assert lo == pytest.approx(ref.low, abs=0.15)
    assert hi == pytest.approx(ref.high, abs=0.15)


def test_ci_is_reproducible_and_seeded():
    x = _timed_samples(60)
    assert summarize(x)["ci95_median"] == summarize(x)["ci95_median"]
    assert summarize(x, seed=0)["bootstrap"]["seed"] == 0


def test_ci_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    true_median = np.exp(1.0)  # lognormal(mu=1): median e
    hits = sum(
        lo <= true_median <= hi
        for lo, hi in (summarize(rng.lognormal(1.0, 0.5, 101), seed=i)["ci95_median"] for i in range(300))
    )
    assert 0.90 <= hits / 300 <= 0.99


def test_summarize_10k_samples_costs_a_fraction_of_a_plain_bootstrap():
    """The exact order-statistic draw and the block bootstrap beat a plain numpy resampling bootstrap of the same
    samples by far: a ratio of CPU times (thread_time: immune to sharing the core) in one run, on any CPU."""
    x = np.random.default_rng(0).lognormal(2.0, 0.3, 10_000)
    summarize(x)  # warm imports
    t = time.thread_time()
    summarize(x)
    ours = time.thread_time() - t
    rng = np.random.default_rng(1)
    t = time.thread_time()
    np.median(x[rng.integers(0, x.size, (200, x.size))], axis=1)  # a tenth of summarize's 2,000 resamples
    plain = (time.thread_time() - t) * 10
    assert ours < 0.2 * plain, (ours, plain)


def test_empty_and_bad_samples():
    assert summarize([])["n"] == 0 and summarize([])["median"] is None
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


def test_presets():
    # every preset has an iteration floor and a time floor for warmup and for timing (docs/statistics.md)
    assert PRESETS["quick"] == TimingPreset("quick", 3, 20, 0.5, warmup_seconds=0.2)
    assert PRESETS["rounds"] == TimingPreset("rounds", 5, 20, 0.75, warmup_seconds=0.2)
    assert PRESETS["default"] == TimingPreset("default", 10, 50, 2.0, warmup_seconds=0.5)
    assert PRESETS["mlperf"] == TimingPreset("mlperf", 10, 1024, 60.0, warmup_seconds=0.5)
    # the emulated preset has none: under qemu one inference takes seconds, and its timings are never ranked
    assert PRESETS["emulated"] == TimingPreset("emulated", 1, 3, 0.0, warmup_seconds=0.0)
    assert all(p.min_seconds > 0 and p.warmup_seconds > 0 for p in PRESETS.values() if p.name != "emulated")
    assert preset("mlperf").iterations == 1024
    with pytest.raises(BadInput, match="unknown timing preset 'fast'.*quick"):
        preset("fast")


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 10, 29, 30, 100, 999])
def test_t_quantile_matches_scipy(df):
    from harness.run.stats import t_quantile

    for p in (0.6, 0.9, 0.95, 0.975, 0.995, 0.9999, 0.025, 0.3):
        assert t_quantile(p, df) == pytest.approx(sps.t.ppf(p, df), rel=1e-8)


def test_trim_mean_matches_scipy():
    from harness.run.stats import trim_mean

    rng = np.random.default_rng(3)
    for n in range(1, 60):
        x = rng.lognormal(size=n)
        assert trim_mean(x, 0.1) == pytest.approx(sps.trim_mean(x, 0.1), rel=1e-12)


finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.lists(st.floats(0, 100), max_size=5))
def test_percentiles_and_median_are_numpys_numbers(xs, pcts):
    """Written out to skip numpy.ma's import (14 ms of every run), they must give numpy's numbers bit for bit."""
    x = np.array(xs)
    pcts = [*pcts, 0, 2.5, 50, 90, 97.5, 99, 100]
    assert percentiles(x, pcts) == [float(v) for v in np.percentile(x, pcts)]
    assert median(x) == float(np.median(x))
