"""How latencies are summarised, judged valid, and compared. Apart from the runners and the data (loadgen-style).

`summarize` returns the dict stored as RunRecord.latency (milliseconds throughout):
    n, mean, median, p50 (= median), p90, p99, std (sample, ddof=1; 0 for one sample), min, max,
    trimmed_mean (mean of the middle 80%), cv (std / mean), robust_cv (1.4826 MAD / median), ci95_median [low, high] (percentile bootstrap in circular
    blocks; over runs when the samples come from several, see `replications_ci`),
    run_cv (CV of the runs' medians when `clusters` gives two or more, else None),
    bootstrap {"resamples", "seed", "method", "block", "clusters"}.
Percentiles use numpy's default linear interpolation.

Validity flags (RunRecord.flags) and what they do to RunRecord.status, see `status_for`:
    too_few_samples  fewer than `min_samples` timed iterations (never on an emulator: not ranked) -> "invalid"
    throttled        between the before/after snapshots: the highest
                     frequency cap fell >10%, a temperature rose >10 °C, or
                     (performance/userspace/unknown governor only) the
                     fastest core's current clock fell >10%; or, from the
                     state sampled during the run (run/device_state.py),
                     a scaling_max_freq cap below its start value, or a
                     pinned cluster's time_in_state mostly below 90% of
                     its cap (the reasons: device_info_after["during"])  -> status "invalid"
    high_cv          robust_cv (1.4826 MAD / median; records from before
                     it: cv) above `max_cv`: noisy, but the median and its CI
                     still say how noisy                                  -> warning only
    disturbed        the runner's evidence (harness/run/disturbance.py): a
                     timed thread waited for a CPU, CPU steal, iowait;
                     the reasons: device_info_after["during"]
                     ["disturbance"]                                      -> warning only
    emulated         timed under an emulator: functional timings only,
                     valid but never ranked against hardware              -> warning only
    profiled         ETDump profiling was on: timings include its overhead -> warning only
A report row pooling several runs adds runs_disagree when their medians' CV exceeds MAX_RUN_CV (harness/reports/report.py).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np

from common.errors import BadInput
from common.timing import PRESETS, TimingPreset, preset  # noqa: F401  (re-exported: callers time with them)

BOOTSTRAP_RESAMPLES = 2000
MIN_SAMPLES = 10
MAX_CV = 0.10
MAX_RUN_CV = 0.03  # report rows: runs of one program whose medians spread more than this disagree
FREQ_DROP = 0.10  # fractional drop of the fastest core's clock that counts as throttling
THERMAL_RISE_C = 10.0

INVALIDATING_FLAGS = frozenset({"too_few_samples", "throttled"})
WARNING_FLAGS = frozenset({"high_cv", "disturbed", "emulated", "profiled"})


def _as_samples(samples_ms: Sequence[float]) -> np.ndarray:
    x = np.asarray(samples_ms, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError("latency samples must be finite numbers")
    return x


def percentiles(samples: np.ndarray, pcts: Sequence[float]) -> list[float]:
    """np.percentile(samples, pcts) with its default linear method: the same numbers (the same arithmetic: Hyndman &
    Fan's 7th, lerped from the nearer end), without the 14 ms import of numpy.ma its np.unique call pulls into every
    `harness run`. Finite samples only (as `_as_samples` gives)."""
    s = np.sort(np.asarray(samples, dtype=np.float64))
    n = s.size
    out = []
    for pct in pcts:
        v = (n - 1) * (float(pct) / 100)
        if v >= n - 1:
            out.append(float(s[-1]))
            continue
        i = max(0, math.floor(v))
        a, b = s[i], s[i + 1]
        g = v - i
        d = b - a
        out.append(float(b - d * (1 - g) if g >= 0.5 else a + d * g))
    return out


def median(samples: np.ndarray) -> float:
    """np.median of finite samples, the same number, without the numpy.ma import its NaN check pulls in."""
    s = np.asarray(samples, dtype=np.float64).ravel()
    n = s.size
    k = n // 2
    if n % 2:
        return float(np.partition(s, k)[k])
    part = np.partition(s, (k - 1, k))
    return float((part[k - 1] + part[k]) / 2)


def bootstrap_medians(samples_ms: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Medians of `resamples` bootstrap resamples, drawn exactly through order statistics in O(resamples).

    Resampling n values with replacement picks indices floor(n*U) for uniform U; floor is monotone, so the k-th
    smallest index is floor(n*U_(k)) and U_(k) ~ Beta(k, n-k+1). For even n the (k+1)-th is U_(k) plus the minimum of
    the n-k uniforms left above it: (1-U_(k)) * Beta(1, n-k). Same distribution as np.median(x[rng.integers(...)]),
    without the n x resamples matrix (10k samples: ~1 ms instead of ~1 s).
    """
    x = np.sort(_as_samples(samples_ms))
    n = x.size
    if n == 0:
        raise ValueError("cannot bootstrap an empty sample")
    rng = np.random.default_rng(seed)
    k = (n + 1) // 2  # 1-based rank of the (lower) median
    u_k = rng.beta(k, n - k + 1, size=resamples)
    lo = x[np.minimum((n * u_k).astype(np.int64), n - 1)]
    if n % 2:
        return lo
    u_k1 = u_k + (1.0 - u_k) * rng.beta(1, n - k, size=resamples)
    hi = x[np.minimum((n * u_k1).astype(np.int64), n - 1)]
    return (lo + hi) / 2.0


def block_length(samples_ms: Sequence[float]) -> float:
    """Politis & White's (2004, corrected 2009) automatic block length for the circular block bootstrap.

    Latencies are a time series: the machine drifts (frequency, neighbours, caches) over seconds, so neighbouring
    iterations are alike. The block length is about how far that likeness reaches; 1 means the samples behave as
    independent draws. Same algorithm and tuning as arch.bootstrap.optimal_block_length (the tests compare), written
    out here because importing arch costs ~1.2 s per command.
    """
    x = _as_samples(samples_ms)
    n = x.size
    if n < 8 or np.ptp(x) == 0:
        return 1.0
    eps = x - x.mean()
    b_max = math.ceil(min(3 * math.sqrt(n), n / 3))
    kn = max(5, int(math.log10(n)))
    m_max = math.ceil(math.sqrt(n)) + kn
    band = 2 * math.sqrt(math.log10(n) / n)  # autocorrelations inside it count as insignificant
    acv = np.zeros(m_max + 1)
    abs_acorr = np.zeros(m_max + 1)
    opt_m = None
    with np.errstate(divide="ignore", invalid="ignore"):  # lags past the data give NaN: never "insignificant"
        for i in range(m_max + 1):
            v1, v2 = eps[i + 1:] @ eps[i + 1:], eps[: -(i + 1)] @ eps[: -(i + 1)]
            cross = eps[i:] @ eps[: n - i]
            acv[i] = cross / n
            abs_acorr[i] = np.abs(cross) / np.sqrt(v1 * v2)
            if i >= kn and opt_m is None and np.all(abs_acorr[i - kn: i] < band):
                opt_m = i - kn
    m = min(2 * max(opt_m, 1) if opt_m is not None else m_max, m_max)
    k = np.arange(1, m + 1)
    lam = np.where(k / m <= 0.5, 1.0, 2 * (1 - k / m))
    g = float(np.sum(2 * lam * k * acv[1: m + 1]))
    long_run = float(acv[0] + np.sum(2 * lam * acv[1: m + 1]))
    with np.errstate(divide="ignore", invalid="ignore"):  # a degenerate estimate gives the longest blocks, as arch
        b = ((2 * g**2) / (4 / 3 * long_run**2)) ** (1 / 3) * n ** (1 / 3)
    return float(b_max if not math.isfinite(b) else min(b, b_max))


def _block(samples_ms: Sequence[float]) -> int:
    return max(1, int(block_length(samples_ms)))  # below 2: no block structure worth the name


def block_bootstrap_medians(samples_ms: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                            block: int | None = None) -> np.ndarray:
    """Medians of circular-block-bootstrap resamples (blocks of `block` consecutive samples, wrapping around).

    block None: chosen by `block_length`. A block of 1 is the plain bootstrap, drawn exactly (`bootstrap_medians`).

    Works on the samples' ranks (int16 up to 32,767 samples) rather than their values: a resample's middle ranks name
    its middle values, so the medians are the same numbers, from the same random draws, as partitioning the float
    values, at a third of the time (a `harness run --timing quick` of a 1 ms program spent 0.2 s here).
    """
    x = _as_samples(samples_ms)
    n = x.size
    b = _block(x) if block is None else min(n, max(1, int(block)))
    if b <= 1 or n < 2:
        return bootstrap_medians(x, resamples, seed)
    from numpy.lib.stride_tricks import sliding_window_view

    rng = np.random.default_rng(seed)
    per = -(-n // b)  # blocks per resample
    order = np.argsort(x, kind="stable")
    ranks = np.empty(n, np.int16 if n <= np.iinfo(np.int16).max else np.int32)
    ranks[order] = np.arange(n, dtype=ranks.dtype)
    ordered = x[order]
    # a block that runs past the end wraps around: row s is the block starting at sample s
    blocks = sliding_window_view(np.concatenate([ranks, ranks[:b]]), b)
    out = np.empty(resamples)
    chunk = max(1, (1 << 20) // n)  # ~1M ranks per step: stays in cache, bounds memory
    k = n // 2
    for lo in range(0, resamples, chunk):
        hi = min(resamples, lo + chunk)
        starts = rng.integers(0, n, size=(hi - lo, per))
        values = np.take(blocks, starts, axis=0).reshape(hi - lo, per * b)[:, :n]
        if n % 2:  # the median as np.median computes it, without its checks
            out[lo:hi] = ordered[np.partition(values, k, axis=1)[:, k]]
        else:
            part = np.partition(values, (k - 1, k), axis=1)
            out[lo:hi] = (ordered[part[:, k - 1]] + ordered[part[:, k]]) / 2
    return out


def trim_mean(x: np.ndarray, proportion: float) -> float:
    """Mean after cutting `proportion` of the samples off each end (scipy.stats.trim_mean's definition)."""
    n = x.size
    cut = int(proportion * n)
    part = np.partition(x, (cut, n - cut - 1))[cut:n - cut]
    return float(part.mean())


@functools.lru_cache(maxsize=1024)  # a report asks for the same few (p, df) once per pooled row
def t_quantile(p: float, df: int) -> float:
    """Student's t quantile for integer df, as scipy.stats.t.ppf to 1e-8 relative (tested), without its 1.3 s import.

    Bisects the closed-form CDF for integer degrees of freedom (Abramowitz & Stegun 26.7.3-26.7.4).
    """
    if df < 1 or int(df) != df:
        raise ValueError(f"df must be a positive integer, got {df}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    target = 2.0 * p - 1.0  # P(|T| <= t)

    def two_sided(theta: float) -> float:  # P(|T| <= sqrt(df) tan(theta))
        c2, s = math.cos(theta) ** 2, math.sin(theta)
        if df % 2:
            term, total = math.cos(theta), 0.0
            for k in range(1, (df - 1) // 2 + 1):
                total += term
                term *= c2 * (2 * k) / (2 * k + 1)
            return 2.0 / math.pi * (theta + s * total) if df > 1 else 2.0 * theta / math.pi
        term, total = 1.0, 0.0
        for k in range(1, df // 2 + 1):
            total += term
            term *= c2 * (2 * k - 1) / (2 * k)
        return s * total

    lo, hi = 0.0, math.pi / 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if two_sided(mid) < target else (lo, mid)
    return math.sqrt(df) * math.tan(0.5 * (lo + hi))


def replications_ci(run_medians: Sequence[float], level: float = 0.95,
                    center: float | None = None) -> tuple[float, float]:
    """Interval from several runs' medians: center +- t(k-1) * s / sqrt(k), s their sample SD, each run one
    replication (the method of independent replications). center: the runs' mean median unless given (a report
    row centres it on its pooled p50, so the headline always sits inside its own interval).

    Runs of one program differ by more than their own samples show (the machine's state moves between them, by
    several percent on a shared machine), so a report row that pools runs counts each run once. Few runs give a wide
    interval, which is the honest answer.
    """
    m = _as_samples(run_medians)
    if m.size < 2:
        raise ValueError("need at least 2 runs for an interval across runs")
    half = float(t_quantile(0.5 + level / 2, m.size - 1) * m.std(ddof=1) / math.sqrt(m.size))
    mid = float(m.mean()) if center is None else float(center)
    return mid - half, mid + half


def summarize(samples_ms: Sequence[float], seed: int = 0, clusters: Sequence[int] | None = None,
              ci: bool = True) -> dict[str, Any]:
    """Summary statistics of per-iteration latencies (ms, in the order they were timed), with a 95% CI of the median.

    The CI is a circular block bootstrap's, so drift within the run widens it (block 1: the plain bootstrap).
    `clusters` gives the sizes of consecutive stretches of samples that came from separate runs (the runs pooled
    into a report row); with two or more the CI is `replications_ci` over their medians centred on the pooled p50,
    carrying the spread between runs, never narrower than the pooled samples' plain bootstrap interval (runs whose
    medians tie), and never outside the samples' range.

    `ci=False`: no interval (ci95_median None, no bootstrap), for the partial samples of an interrupted run, which are
    never pooled or ranked: the block bootstrap of 100,000 samples takes seconds, and Ctrl-C must not wait for it.
    """
    x = _as_samples(samples_ms)
    sizes = [int(c) for c in clusters or []]
    if any(c < 1 for c in sizes):
        raise ValueError(f"cluster sizes must be positive, got {sizes}")
    if sizes and sum(sizes) != x.size:
        raise ValueError(f"cluster sizes add up to {sum(sizes)}, not to the {x.size} samples")
    n = int(x.size)
    if n == 0:
        keys = ("mean", "median", "p50", "p90", "p99", "std", "min", "max", "trimmed_mean", "cv", "robust_cv",
                "ci95_median",
                "run_cv")
        return {"n": 0, **{k: None for k in keys}}
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    p50, p90, p99 = percentiles(x, [50, 90, 99])
    if not ci:
        lo = hi = run_cv = block = method = None
    elif len(sizes) >= 2:
        # centred on the pooled median; runs whose medians tie (a coarse timer) would give a zero-width t interval
        run_medians = np.array([median(part) for part in np.split(x, np.cumsum(sizes)[:-1])])
        run_cv = float(run_medians.std(ddof=1) / run_medians.mean())
        t_lo, t_hi = replications_ci(run_medians, center=p50)
        # the floor guards a degenerate t interval only (tied medians): the pooled samples' plain bootstrap, drawn
        # exactly from order statistics, does that at O(resamples) (the spread between runs is the t interval's job)
        b_lo, b_hi = percentiles(bootstrap_medians(x, BOOTSTRAP_RESAMPLES, seed), [2.5, 97.5])
        # ...and never outside the data: a median lies between the smallest and largest sample (so never below 0)
        lo, hi = max(min(t_lo, b_lo), float(x.min())), min(max(t_hi, b_hi), float(x.max()))
        block, method = None, (f"p50 +- Student t over the {len(sizes)} runs' medians (independent replications), "
                               "at least the pooled samples' bootstrap interval, within the samples' range")
    else:
        run_cv, block = None, _block(x)
        boot = block_bootstrap_medians(x, BOOTSTRAP_RESAMPLES, seed, block)
        method = f"percentile, circular blocks of {block}" if block > 1 else "percentile, order-statistic draw"
        lo, hi = percentiles(boot, [2.5, 97.5])
    return {
        "n": n,
        "mean": mean,
        "median": p50,
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "std": std,
        "min": float(x.min()),
        "max": float(x.max()),
        "trimmed_mean": trim_mean(x, 0.1),
        "cv": std / mean if mean > 0 else None,
        # 1.4826 MAD / median: the spread of the bulk of the samples, which is what moves the median; a handful of
        # interrupt-sized outliers in 10,000 samples of a 0.1 ms program put the plain cv above 1 and move nothing
        "robust_cv": float(1.4826 * median(np.abs(x - p50)) / p50) if p50 > 0 else None,
        "ci95_median": [float(lo), float(hi)] if ci else None,
        "run_cv": run_cv,  # CV of the clusters' (runs') medians; None from one run
        **({"bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": seed, "method": method, "block": block,
                          "clusters": sizes if len(sizes) >= 2 else None}}  # resamples/seed: the block bootstrap's
           if ci else {}),
    }


def _numbers(values) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _fastest_khz(info: dict[str, Any] | None, key: str) -> float | None:
    """Highest per-core frequency of a snapshot. Two shapes are read: {"cpus": [{"cur_khz", "max_khz"}, ...]} and
    device_runners.devinfo's {"freq_khz": {core: khz}, "freq_max_khz": {core: khz}}."""
    info = info if isinstance(info, dict) else {}
    cpus = info.get("cpus")
    vals = _numbers(c.get(key) for c in cpus if isinstance(c, dict)) if isinstance(cpus, list) else []
    table = info.get({"cur_khz": "freq_khz", "max_khz": "freq_max_khz"}[key])
    if isinstance(table, dict):
        vals += _numbers(table.values())
    vals = [v for v in vals if v > 0]
    return max(vals) if vals else None


def _temperatures(info: dict[str, Any] | None) -> dict[str, float]:
    info = info if isinstance(info, dict) else {}
    temps: dict[str, float] = {}
    for key in ("thermal", "temperatures_c"):
        if isinstance(info.get(key), dict):
            temps.update({str(k): float(v) for k, v in info[key].items() if _numbers([v])})
    if _numbers([info.get("battery_temp_c")]):
        temps["battery"] = float(info["battery_temp_c"])
    return temps


def _clock_is_fixed(info: dict[str, Any] | None) -> bool:
    """True unless the snapshot names a governor other than performance/userspace (unknown counts as fixed)."""
    info = info if isinstance(info, dict) else {}
    govs = [c.get("governor") for c in info.get("cpus") or [] if isinstance(c, dict)]
    g = info.get("governor")
    govs += list(g.values()) if isinstance(g, dict) else [g]
    govs = {x for x in govs if isinstance(x, str)}
    return govs <= {"performance", "userspace"}


def throttle_evidence(info_before: dict | None, info_after: dict | None) -> list[str]:
    """Why a run looks throttled, one phrase per reason; empty when nothing points that way or data is missing."""
    reasons = []
    # Under a dynamic governor the current clock follows load (the after-snapshot is taken at rest), so only the cap
    # and the temperatures speak for throttling there; a fixed-clock governor's current clock speaks too.
    keys = (("cur_khz", "fastest core clock"),) if _clock_is_fixed(info_before) else ()
    for key, what in keys + (("max_khz", "frequency cap"),):
        b, a = _fastest_khz(info_before, key), _fastest_khz(info_after, key)
        if b and a and a < b * (1 - FREQ_DROP):
            reasons.append(f"{what} {b / 1000:.0f} -> {a / 1000:.0f} MHz")
    before, after = _temperatures(info_before), _temperatures(info_after)
    for zone in sorted(before.keys() & after.keys()):
        if after[zone] - before[zone] > THERMAL_RISE_C:
            reasons.append(f"{zone} {before[zone]:.1f} -> {after[zone]:.1f} °C")
    return reasons


def validity_flags(
    summary: dict[str, Any],
    *,
    emulated: bool,
    info_before: dict | None,
    info_after: dict | None,
    min_samples: int = MIN_SAMPLES,
    max_cv: float = MAX_CV,
    profiled: bool = False,
    evidence: Sequence[str] = (),
    disturbed: Sequence[str] = (),
) -> list[str]:
    """The validity flags of a measured run (see the module docstring for what each one means). `evidence`: reasons
    for throttling found by harness/run/device_state.py (caps and time_in_state during the run); `disturbed`: what
    the runner saw the machine do to its timed threads (harness/run/disturbance.py)."""
    flags = []
    if (summary.get("n") or 0) < min_samples and not emulated:
        flags.append("too_few_samples")  # emulated timings are never ranked: a few iterations check the program
    cv = summary.get("robust_cv", summary.get("cv"))  # records made before robust_cv keep their plain cv
    if cv is not None and cv > max_cv:
        flags.append("high_cv")
    if evidence or throttle_evidence(info_before, info_after):
        flags.append("throttled")
    if disturbed:
        flags.append("disturbed")
    if emulated:
        flags.append("emulated")
    if profiled:
        flags.append("profiled")
    return flags


def status_for(flags: Sequence[str]) -> str:
    """"invalid" when a flag makes the numbers untrustworthy, else "ok" (warnings stay visible in the flags)."""
    return "invalid" if INVALIDATING_FLAGS.intersection(flags) else "ok"


MIN_GATE_RUNS = 3  # fewer runs a side: compare warns that the run-to-run spread is barely known


def compare_runs_of(a_medians: Sequence[float], b_medians: Sequence[float], alpha: float = 0.05,
                    resamples: int = 4000, seed: int = 0) -> dict:
    """Is B faster than A, with runs (not samples) as the replications? Each side is its runs' medians.

    What varies between two campaigns of one program is the machine's state from run to run, which the samples of
    one run never show: pooling the samples gave intervals of +-1% around campaigns that differed by 5%. So the
    ratio is median(B's run medians) / median(A's), and its interval a percentile bootstrap over runs (each side's
    run medians resampled with replacement): one disturbed run moves neither much, few runs give a wide interval
    (the honest answer), and a shift that every run shows gives one that excludes 1.
    """
    a, b = _as_samples(a_medians), _as_samples(b_medians)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"need at least 2 runs on each side to compare runs (got {a.size} and {b.size})")
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("run medians must be positive")
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, a.size, (resamples, a.size))], axis=1)
    rb = np.median(b[rng.integers(0, b.size, (resamples, b.size))], axis=1)
    ratios = rb / ra
    lo, hi = (float(v) for v in np.percentile(ratios, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
    med_a, med_b = float(np.median(a)), float(np.median(b))
    ratio = med_b / med_a
    # two-sided: twice the share of resampled ratios on the far side of 1 (bounded by 1)
    p = float(min(1.0, 2 * min(np.mean(ratios <= 1.0), np.mean(ratios >= 1.0))))
    verdict = "faster" if hi < 1.0 else "slower" if lo > 1.0 else "no significant difference"
    return {
        "n_a": int(a.size), "n_b": int(b.size), "median_a": med_a, "median_b": med_b, "ratio": ratio,
        "ratio_ci": [lo, hi], "ci_level": 1 - alpha, "speedup": 1.0 / ratio, "p_value": p, "alpha": alpha,
        "test": f"percentile bootstrap over runs ({resamples} resamples of each side's run medians)",
        "verdict": verdict, "unit": "runs",
    }


def compare_samples(a_ms: Sequence[float], b_ms: Sequence[float], alpha: float = 0.05, seed: int = 0) -> dict:
    """Is B faster than A? Ratio of medians B/A with a block-bootstrap CI, and a two-sided Mann-Whitney U test.

    The verdict needs both: p < alpha and a (1 - alpha) CI that excludes 1. A ratio below 1 means B is faster.
    Mann-Whitney assumes independent samples, and drift within a run breaks that (its p-value is then too small);
    the CI resamples each side by blocks (`block_length`), so drift widens it and keeps the verdict honest.
    """
    a, b = _as_samples(a_ms), _as_samples(b_ms)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"need at least 2 samples on each side to compare (got {a.size} and {b.size})")
    med_a, med_b = float(np.median(a)), float(np.median(b))
    ratios = block_bootstrap_medians(b, seed=seed + 1) / block_bootstrap_medians(a, seed=seed)
    lo, hi = (float(v) for v in np.percentile(ratios, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
    from scipy import stats as sps  # 1.3 s to import: only comparisons pay for it

    p = float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    ratio = med_b / med_a if med_a > 0 else math.inf
    if p < alpha and hi < 1.0:
        verdict = "faster"
    elif p < alpha and lo > 1.0:
        verdict = "slower"
    else:
        verdict = "no significant difference"
    return {
        "n_a": int(a.size),
        "n_b": int(b.size),
        "median_a": med_a,
        "median_b": med_b,
        "ratio": ratio,
        "ratio_ci": [lo, hi],
        "ci_level": 1 - alpha,
        "speedup": 1.0 / ratio if ratio > 0 else math.inf,
        "p_value": p,
        "alpha": alpha,
        "test": "Mann-Whitney U, two-sided",
        "verdict": verdict,
        "unit": "samples",
    }
