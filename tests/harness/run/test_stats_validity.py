"""Validity flags, the status they imply, and the two-sample comparison verdicts."""

import numpy as np
import pytest
from scipy import stats as sps

from harness.run.stats import compare_samples, status_for, summarize, throttle_evidence, validity_flags

STEADY = {"cpus": [{"cur_khz": 2_400_000, "max_khz": 2_400_000, "governor": "performance"}] * 4,
          "thermal": {"zone0 (cpu)": 41.0}, "battery_temp_c": 30.0}


def _summary(n=50, cv=0.02, seed=0):
    return summarize(np.random.default_rng(seed).normal(10.0, 10.0 * cv, n))


def _flags(summary, before=STEADY, after=STEADY, **kw):
    kw.setdefault("emulated", False)
    return validity_flags(summary, info_before=before, info_after=after, **kw)


def test_a_clean_run_has_no_flags_and_is_ok():
    flags = _flags(_summary())
    assert flags == [] and status_for(flags) == "ok"


def test_too_few_samples_invalidates():
    flags = _flags(_summary(n=5))
    assert flags == ["too_few_samples"] and status_for(flags) == "invalid"
    assert _flags(_summary(n=5), min_samples=5) == []


def test_high_cv_is_a_warning_only():
    flags = _flags(_summary(cv=0.3))
    assert flags == ["high_cv"] and status_for(flags) == "ok"
    assert _flags(_summary(cv=0.3), max_cv=0.5) == []


def test_emulated_and_profiled_are_warnings_only():
    flags = _flags(_summary(), emulated=True, profiled=True)
    assert flags == ["emulated", "profiled"] and status_for(flags) == "ok"


def test_frequency_drop_means_throttled():
    after = {**STEADY, "cpus": [{"cur_khz": 1_800_000, "max_khz": 2_400_000}] * 4}
    flags = _flags(_summary(), after=after)
    assert flags == ["throttled"] and status_for(flags) == "invalid"
    assert "2400 -> 1800 MHz" in throttle_evidence(STEADY, after)[0]


def test_small_frequency_wobble_is_not_throttling():
    after = {**STEADY, "cpus": [{"cur_khz": 2_300_000, "max_khz": 2_400_000}] * 4}
    assert _flags(_summary(), after=after) == []


def test_thermal_rise_means_throttled():
    after = {**STEADY, "thermal": {"zone0 (cpu)": 58.0}}
    assert _flags(_summary(), after=after) == ["throttled"]
    assert _flags(_summary(), after={**STEADY, "battery_temp_c": 45.0}) == ["throttled"]


@pytest.mark.parametrize("info", [{}, None, {"cpus": [{}], "thermal": {"z": None}}, {"cpus": "n/a"}])
def test_missing_device_info_never_flags(info):
    assert _flags(_summary(), before=info, after=info) == []
    assert _flags(_summary(), before=STEADY, after=info) == []


def test_compare_detects_a_real_speedup():
    rng = np.random.default_rng(1)
    a = rng.lognormal(np.log(10.0), 0.05, 60)
    b = rng.lognormal(np.log(8.0), 0.05, 60)
    r = compare_samples(a, b)
    assert r["verdict"] == "faster"
    assert r["ratio"] == pytest.approx(np.median(b) / np.median(a))
    assert r["ratio_ci"][0] < r["ratio"] < r["ratio_ci"][1] < 1.0
    assert r["p_value"] == pytest.approx(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    assert compare_samples(b, a)["verdict"] == "slower"


def test_compare_same_distribution_is_not_significant():
    rng = np.random.default_rng(2)
    a, b = rng.lognormal(np.log(10.0), 0.2, 50), rng.lognormal(np.log(10.0), 0.2, 50)
    assert compare_samples(a, b)["verdict"] == "no significant difference"


def test_a_small_but_consistent_difference_is_significant():
    """No fixed +-5% band: a 2% shift on quiet samples is real."""
    rng = np.random.default_rng(3)
    a = 10.0 + rng.normal(0, 0.02, 200)
    b = 9.8 + rng.normal(0, 0.02, 200)
    r = compare_samples(a, b)
    assert r["verdict"] == "faster" and 0.97 < r["ratio"] < 0.99


def test_a_large_but_noisy_difference_on_few_samples_is_not():
    rng = np.random.default_rng(4)
    a = rng.lognormal(np.log(10.0), 0.6, 4)
    b = rng.lognormal(np.log(8.0), 0.6, 4)
    assert compare_samples(a, b)["verdict"] == "no significant difference"


def test_compare_needs_two_samples_each():
    with pytest.raises(ValueError, match="at least 2"):
        compare_samples([1.0], [1.0, 2.0])


def test_devinfo_snapshot_shape_is_read_too():
    """device_runners.devinfo reports {"freq_khz": {core: khz}, "temperatures_c": {...}}."""
    before = {"freq_khz": {"0": 2_000_000, "1": 2_000_000}, "freq_max_khz": {"0": 2_000_000}, "temperatures_c": {"x": 40}}
    slow = {**before, "freq_khz": {"0": 1_000_000, "1": 1_100_000}}
    hot = {**before, "temperatures_c": {"x": 55.0}}
    assert _flags(_summary(), before=before, after=before) == []
    assert _flags(_summary(), before=before, after=slow) == ["throttled"]
    assert _flags(_summary(), before=before, after=hot) == ["throttled"]


def test_dynamic_governor_clock_dip_is_not_throttling_but_a_lower_cap_is():
    before = {"cpus": [{"cur_khz": 2_400_000, "max_khz": 2_400_000, "governor": "schedutil"}]}
    idle = {"cpus": [{"cur_khz": 600_000, "max_khz": 2_400_000, "governor": "schedutil"}]}
    capped = {"cpus": [{"cur_khz": 1_500_000, "max_khz": 1_500_000, "governor": "schedutil"}]}
    assert _flags(_summary(), before=before, after=idle) == []
    assert _flags(_summary(), before=before, after=capped) == ["throttled"]


def test_noisy_means_the_bulk_is_spread_not_a_few_interrupts():
    """A 0.1 ms program timed 10,000 times on a shared machine: a few hundred interrupt-sized outliers put the plain
    cv above 1 but leave the median where it is, so the run is not noisy; a bulk spread by +-20% is."""
    from harness.run.stats import summarize, validity_flags

    rng = np.random.default_rng(0)
    bulk = rng.normal(0.1, 0.002, 10_000)
    spiky = bulk.copy()
    spiky[rng.choice(10_000, 300, replace=False)] = 5.0
    s = summarize(spiky)
    assert s["cv"] > 1 and s["robust_cv"] < 0.05
    assert "high_cv" not in validity_flags(s, emulated=False, info_before=None, info_after=None)
    wide = summarize(rng.normal(0.1, 0.02, 10_000))
    assert wide["robust_cv"] > 0.1 and "high_cv" in validity_flags(wide, emulated=False, info_before=None,
                                                                    info_after=None)
    old = {k: v for k, v in s.items() if k != "robust_cv"}  # a record from before robust_cv: its plain cv decides
    assert "high_cv" in validity_flags(old, emulated=False, info_before=None, info_after=None)


@pytest.mark.parametrize("n,block", [(4492, 3), (1001, 7), (64, 64), (2, 2)])
def test_block_bootstrap_medians_are_numpys_medians_of_the_same_resamples(n, block):
    """The partition-based median and the wrap-around copy give exactly what np.median of the modulo-indexed
    resamples gives (the definition), for odd and even n and a block as long as the data."""
    import numpy as np

    from harness.run import stats

    x = np.random.default_rng(n).gamma(3.0, 0.2, n)
    rng = np.random.default_rng(0)
    per = -(-n // block)
    want = []
    for lo in range(0, 50, max(1, 2_000_000 // n)):
        hi = min(50, lo + max(1, 2_000_000 // n))
        starts = rng.integers(0, n, size=(hi - lo, per))
        idx = ((starts[:, :, None] + np.arange(block)) % n).reshape(hi - lo, per * block)[:, :n]
        want.append(np.median(x[idx], axis=1))
    assert np.array_equal(stats.block_bootstrap_medians(x, resamples=50, seed=0, block=block), np.concatenate(want))
