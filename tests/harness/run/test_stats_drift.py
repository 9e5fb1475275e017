"""Latencies drift: the block bootstrap, the run-pooled CI and compare_samples stay honest when samples are not
independent, and reduce to the plain bootstrap when they are."""

import numpy as np
import pytest

from harness.run.stats import (block_bootstrap_medians, block_length, bootstrap_medians, compare_samples, replications_ci,
                           summarize)


def ar1(n: int, phi: float, rng: np.random.Generator, level: float = 30.0, sd: float = 0.3) -> np.ndarray:
    """A latency series whose neighbours are alike (machine state drifting), stationary around `level`."""
    e = rng.normal(0, sd, n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return level + x


@pytest.mark.parametrize("n", [8, 10, 20, 50, 400])
@pytest.mark.parametrize("kind", ["iid", "ar0.5", "ar0.9", "step", "spiky"])
def test_block_length_matches_arch(kind, n):
    from arch.bootstrap import optimal_block_length

    for seed in range(20 if n < 100 else 2):  # short series hit the degenerate branches: try many
        rng = np.random.default_rng(seed)
        x = {"iid": lambda: rng.normal(30, 1, n), "ar0.5": lambda: ar1(n, 0.5, rng), "ar0.9": lambda: ar1(n, 0.9, rng),
             "step": lambda: np.r_[rng.normal(30, 0.2, n // 2), rng.normal(31, 0.2, n - n // 2)],
             "spiky": lambda: rng.normal(30, 0.2, n) + (rng.random(n) < 0.03) * 20}[kind]()
        assert block_length(x) == pytest.approx(float(optimal_block_length(x)["circular"].iloc[0]), rel=1e-9)


def test_drift_gets_longer_blocks_than_noise():
    rng = np.random.default_rng(0)
    assert block_length(rng.normal(30, 1, 500)) < 2 < 5 < block_length(ar1(500, 0.9, rng))


def test_block_of_one_is_the_plain_bootstrap_and_noise_costs_little_width():
    rng = np.random.default_rng(1)
    x = rng.normal(30, 1, 200)
    assert np.array_equal(block_bootstrap_medians(x, seed=4, block=1), bootstrap_medians(x, seed=4))
    widths = []
    for i in range(40):  # on independent samples the block length is noisy, but the interval stays about as tight
        y = rng.normal(30, 1, 200)
        plain = np.diff(np.percentile(bootstrap_medians(y, seed=i), [2.5, 97.5]))[0]
        widths.append(np.diff(summarize(y, seed=i)["ci95_median"])[0] / plain)
    assert np.mean(widths) < 1.3


def test_block_ci_covers_the_median_of_a_drifting_series_where_the_plain_one_does_not():
    rng = np.random.default_rng(7)
    plain = block = 0
    reps = 150
    for i in range(reps):
        x = ar1(200, 0.85, rng)  # true median 30 (symmetric, stationary)
        lo, hi = np.percentile(bootstrap_medians(x, seed=i), [2.5, 97.5])
        plain += lo <= 30.0 <= hi
        lo, hi = summarize(x, seed=i)["ci95_median"]
        block += lo <= 30.0 <= hi
    assert plain / reps < 0.6  # independent resampling is overconfident on drift
    assert block / reps > 0.8


def test_runs_pooled_into_one_row_carry_the_spread_between_runs():
    """Five runs, each steady inside but at its own level (the machine's state moved between them): the pooled CI
    of a report row must cover the level the runs scatter around; pooling them as one sample would not."""
    rng = np.random.default_rng(5)
    hits_pooled = hits_runs = 0
    reps = 100
    for i in range(reps):
        runs = [rng.normal(30 + rng.normal(0, 0.4), 0.15, 100) for _ in range(5)]
        x = np.concatenate(runs)
        lo, hi = np.percentile(bootstrap_medians(x, seed=i), [2.5, 97.5])
        hits_pooled += lo <= 30.0 <= hi
        s = summarize(x, seed=i, clusters=[100] * 5)
        hits_runs += s["ci95_median"][0] <= 30.0 <= s["ci95_median"][1]
        assert s["bootstrap"]["clusters"] == [100] * 5
    assert hits_pooled / reps < 0.5
    assert hits_runs / reps > 0.9


def test_clusters_must_add_up():
    with pytest.raises(ValueError, match="add up"):
        summarize([1.0, 2.0, 3.0], clusters=[1, 1])
    with pytest.raises(ValueError, match="positive"):
        summarize([1.0, 2.0, 3.0, 4.0], clusters=[5, -3, 2])
    with pytest.raises(ValueError, match="2 runs"):
        replications_ci([30.0])


def test_replications_interval_is_students_t_over_run_medians():
    from scipy import stats as sps

    m = [30.1, 29.6, 30.4, 29.9]
    ref = sps.t.interval(0.95, 3, loc=np.mean(m), scale=sps.sem(m))
    assert replications_ci(m) == pytest.approx(ref)
    assert replications_ci(m, center=30.0) == pytest.approx((30.0 - (ref[1] - ref[0]) / 2, 30.0 + (ref[1] - ref[0]) / 2))


def test_a_pooled_row_holds_its_p50_and_the_spread_between_runs():
    rng = np.random.default_rng(0)
    # one long run at 10 ms and four short ones at 12 ms: p50 is the long run's, the runs disagree
    x = np.concatenate([rng.normal(10, 0.05, 1000)] + [rng.normal(12, 0.05, 10) for _ in range(4)])
    s = summarize(x, clusters=[1000, 10, 10, 10, 10])
    lo, hi = s["ci95_median"]
    t_lo, t_hi = replications_ci([10, 12, 12, 12, 12], center=s["p50"])
    assert lo <= s["p50"] <= hi
    # at least the t interval around p50, cut to the samples' range (a median cannot lie outside the data)
    assert lo <= max(t_lo, x.min()) + 0.05 and hi >= min(t_hi, x.max()) - 0.05
    assert x.min() <= lo and hi <= x.max()


def test_runs_whose_medians_tie_still_get_an_interval():
    rng = np.random.default_rng(1)
    runs = [r - np.median(r) + 11.0 for r in (rng.normal(11, 0.2, 41) for _ in range(3))]
    x = np.concatenate(runs)  # every run's median is exactly 11.0: the t interval alone has zero width
    lo, hi = summarize(x, clusters=[41, 41, 41])["ci95_median"]
    assert lo <= 11.0 <= hi and hi - lo > 0


def test_compare_does_not_call_two_halves_of_one_drifting_stream_different_too_often():
    """A/A: the same program, two runs cut from one drifting stream. Mann-Whitney alone flags most of them."""
    rng = np.random.default_rng(9)
    verdicts = [compare_samples(*np.split(ar1(400, 0.9, rng), 2), seed=i)["verdict"] for i in range(40)]
    wrong = sum(v != "no significant difference" for v in verdicts)
    assert wrong / len(verdicts) <= 0.2


def test_compare_still_sees_a_real_speedup_through_drift():
    rng = np.random.default_rng(4)
    a, b = ar1(300, 0.8, rng, level=30.0), ar1(300, 0.8, rng, level=24.0)
    assert compare_samples(a, b)["verdict"] == "faster"


def _block_medians_from_values(x: np.ndarray, resamples: int, seed: int, b: int) -> np.ndarray:
    """The circular block bootstrap as written before it moved to ranks: gather the float values, take each median."""
    n = x.size
    rng = np.random.default_rng(seed)
    per = -(-n // b)
    wrapped = np.concatenate([x, x[:b]])
    out = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for lo in range(0, resamples, chunk):
        hi = min(resamples, lo + chunk)
        starts = rng.integers(0, n, size=(hi - lo, per))
        out[lo:hi] = np.median(wrapped[(starts[:, :, None] + np.arange(b)).reshape(hi - lo, per * b)[:, :n]], axis=1)
    return out


@pytest.mark.parametrize("n", [2, 3, 8, 101, 1000, 40_000])
@pytest.mark.parametrize("b", [2, 5, 31])
def test_block_bootstrap_on_ranks_gives_the_medians_of_the_values(n, b):
    """Ranks (int16 below 32,768 samples, int32 above) name the same middle values, ties and all, from the same draws."""
    x = np.random.default_rng(n + b).gamma(2.0, 1.0, n).round(1)  # rounding makes ties
    assert np.array_equal(block_bootstrap_medians(x, 300, 7, b), _block_medians_from_values(x, 300, 7, min(n, b)))
