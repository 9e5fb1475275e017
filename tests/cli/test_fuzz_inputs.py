"""Fuzzing: random values through the CLI's option parser and through the runner-result parser. Whatever
comes in: no traceback (only the user-error family, click's usage errors or a clean exit), a non-zero exit for what
is refused, and nothing written outside --results."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from device_runners.base import MalformedResult, RawResult
from harness.cli import cli
from common.errors import HarnessError
from harness.store.db import ResultsStore
from tests.support.factories import rec

numbers = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["nan", "inf", "-1", "0", "1e400", "abc", "", "1,2", "99999999999"]))
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


def _invoke(args: list[str], root: Path):
    """The CLI in-process, as `harness` runs it: HarnessError is a user error (exit 2 in main())."""
    res = CliRunner().invoke(cli, ["--results", str(root / "results"), *args], catch_exceptions=True)
    exc = res.exception
    ok = exc is None or isinstance(exc, (HarnessError, SystemExit))
    assert ok, f"{args!r} raised {type(exc).__name__}: {exc}"
    if isinstance(exc, HarnessError):
        return exc.exit_code, str(exc)  # what main() prints after "error: "
    return res.exit_code, res.output


def _outside(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "results" not in p.relative_to(root).parts}


def _number(value, kind):
    """The value as click reads it (int() or float() of the text), or None when it does not parse."""
    try:
        return kind(str(value))
    except (ValueError, OverflowError):
        return None


def _bad_run_flags(it, warm, mins, thr, samples, timeout, campaign) -> set[str]:
    """The flags whose values docs/runner.md's bounds refuse (empty: every value is one a run accepts)."""
    import re

    from harness.run import measure

    ok = {
        "--iterations": (v := _number(it, int)) is not None and 1 <= v <= measure.MAX_ITERATIONS,
        "--warmup": (v := _number(warm, int)) is not None and 0 <= v <= measure.MAX_WARMUP,
        "--min-seconds": (m := _number(mins, float)) is not None and math.isfinite(m) and
                         0 <= m <= measure.MAX_MIN_SECONDS,
        "--timeout": (t := _number(timeout, float)) is not None and math.isfinite(t) and 0 < t <= 7 * 24 * 3600,
        "--threads": all((n := _number(x, int)) is not None and 1 <= n <= measure.MAX_THREADS
                         for x in str(thr).split(",")),
        "--samples": (v := _number(samples, int)) is not None and 1 <= v <= measure.MAX_SAMPLES,
        "--campaign": re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}", campaign) is not None,
    }
    bad = {flag for flag, good in ok.items() if not good}
    if ok["--min-seconds"] and ok["--timeout"] and m >= t:
        bad |= {"--min-seconds", "--timeout"}  # the run would be killed before it could finish
    return bad


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(it=numbers, warm=numbers, mins=numbers, thr=numbers, samples=numbers, timeout=numbers, name=text)
@example(it=3, warm=0, mins=0.0, thr="1,2", samples=8, timeout=60.0, name="x")  # all accepted: the program is named
@example(it=3, warm=0, mins=60.0, thr=1, samples=8, timeout=60.0, name="x")  # killed before it could finish
@example(it=1, warm=0, mins=1, thr=1, samples=0, timeout=1, name="")  # that, named before --samples
def test_run_options_never_crash(tmp_path_factory, it, warm, mins, thr, samples, timeout, name):
    """Refused with exit 2, for the right reason: a value out of its documented bounds is named before anything else
    (the missing program is named only when every value is one a run accepts)."""
    root = tmp_path_factory.mktemp("fuzz")
    before = _outside(root)
    campaign = name or "x"
    args = ["run", "--program", str(root / "missing.pte"), "--iterations", str(it), "--warmup", str(warm),
            "--min-seconds", str(mins), "--threads", str(thr), "--samples", str(samples), "--timeout", str(timeout),
            "--campaign", campaign]
    code, said = _invoke(args, root)
    assert code == 2  # the program does not exist: refused, whatever else was given
    bad = _bad_run_flags(it, warm, mins, thr, samples, timeout, campaign)
    if bad:
        assert any(flag in said for flag in bad) and "missing.pte" not in said, (bad, said)
    else:
        assert "missing.pte" in said, said
    assert _outside(root) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=text, group=numbers, agree=numbers, nsamp=numbers)
def test_export_options_never_crash_nor_escape(tmp_path_factory, name, group, agree, nsamp):
    root = tmp_path_factory.mktemp("fuzz")
    before = _outside(root)
    # an unknown preset makes every accepted combination stop before any model is built
    args = ["export", "--model", "no-such-preset", "--quant", "int4", "--name", name or ".", "--group-size",
            str(group), "--min-agreement", str(agree), "--numerics-samples", str(nsamp)]
    cwd = os.getcwd()
    os.chdir(root)
    try:
        code, _ = _invoke(args, root)
    finally:
        os.chdir(cwd)
    assert code != 0
    assert _outside(root) == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(campaign=text, tag=text, since=text, timing=text, threshold=text)
@example(campaign="nightly", tag="branch=main", since="2026-12-01", timing="default", threshold="0.05")  # all valid:
# each command reaches its body and selects the stored run, so its exit code is its answer, not a refusal
def test_selection_options_never_crash(tmp_path_factory, campaign, tag, since, timing, threshold):
    root = tmp_path_factory.mktemp("fuzz")
    ResultsStore(root / "results").add(rec("fp32", campaign="nightly", timing="default", tags={"branch": "main"}))
    before = _outside(root)
    for args in (["report", "--campaign", campaign, "--tag", tag, "--since", since, "--timing", timing],
                 ["runs", "list", "--since", since, "--tag", tag],
                 ["runs", "rm", "--campaign", campaign],
                 ["compare", campaign or "a", tag or "b", "--threshold", threshold]):
        code, said = _invoke(args, root)
        # 0: nothing matched is an answer too; 2: a value the option refuses (docs: exit codes). Never 1 or 3 here.
        assert code in (0, 2), f"{args!r} exited {code}: {said}"
    assert _outside(root) == before  # nothing written outside --results, whatever the values


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12)
fields = st.fixed_dictionaries({}, optional={
    "runner": json_values, "load_ms": json_values, "first_inference_ms": json_values,
    "latencies_ms": st.one_of(json_values, st.lists(st.one_of(st.floats(), st.integers(-5, 5)), max_size=6)),
    "peak_rss_kb": json_values, "threads": json_values, "num_examples": json_values, "runner_version": json_values})


@settings(max_examples=150, deadline=None)
@given(d=st.one_of(fields, json_values), garble=st.booleans())
def test_runner_result_parser_accepts_only_what_a_run_can_use(d, garble):
    text = json.dumps(d)
    if garble:
        text = text[: len(text) // 2]
    try:
        raw = RawResult.from_json(text)
    except MalformedResult:
        return  # refused, with a reason: the run is stored as failed
    assert raw.latencies_ms and all(math.isfinite(x) and x >= 0 for x in raw.latencies_ms)
    assert math.isfinite(raw.load_ms) and raw.load_ms >= 0 and math.isfinite(raw.first_inference_ms)
