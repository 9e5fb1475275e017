"""`harness compare` gates CI (exit 1 on a significant regression over the threshold), compares campaigns and a
baseline store, and refuses unlike comparisons; `harness runs list|show|rm` manage what is stored."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.store.db import ResultsStore
from tests.support.factories import manifest, rec


def invoke(*args):
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False, standalone_mode=False)
    return res


def main(*args):
    """The CLI as a user runs it: exit code, stdout, stderr (HarnessError -> one line, exit 2)."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def stores(tmp_path):
    base, pr = tmp_path / "main", tmp_path / "pr"
    for s, ms in ((1, 10.0), (2, 10.0), (3, 10.1)):
        ResultsStore(base).add(rec("int8", ms=ms, seed=s, campaign="main-1"))
        ResultsStore(base).add(rec("fp32", ms=3 * ms, seed=s + 10, campaign="main-1"))
    for s in (4, 5, 6):
        ResultsStore(pr).add(rec("int8", ms=11.5, seed=s, campaign="pr-42"))  # 15% slower
        ResultsStore(pr).add(rec("fp32", ms=30.2, seed=s + 10, campaign="pr-42"))  # the same
        ResultsStore(pr).add(rec("int8", ms=10.0, seed=s + 20, campaign="pr-43"))
    return base, pr


def test_regression_against_a_baseline_store_exits_1_and_says_so(stores):
    base, pr = stores
    rc, out, err = main("--results", str(pr), "compare", "--baseline", str(base), "pr-42",
                        "--fail-on", "regression", "--threshold", "5%")
    assert rc == 1, (out, err)
    [line] = err.strip().splitlines()
    assert line.startswith("regression: mobilebert cls2 int8") and "slower than A" in line and "5% threshold" in line
    assert "fp32" in out and "same" in out  # the fp32 group compared too, and found unchanged
    rc, _, err = main("--results", str(pr), "compare", "--baseline", str(base), "pr-42", "--fail-on", "regression",
                      "--threshold", "20%")
    assert rc == 0, err  # 15% slower is within a 20% tolerance
    rc, out, _ = main("--results", str(pr), "compare", "--baseline", str(base), "pr-43", "--fail-on", "regression")
    assert rc == 0 and "In B only" not in out


def test_two_campaigns_in_one_store_and_json(stores):
    _, pr = stores
    rc, out, err = main("--results", str(pr), "compare", "pr-42", "pr-43", "--format", "json")
    assert rc == 0, err
    res = json.loads(out)
    [pair] = res["pairs"]  # pr-43 has no fp32: only int8 pairs
    assert pair["recipe"] == "int8" and pair["latency"]["verdict"] == "faster"


def test_unlike_comparisons_are_refused(tmp_path):
    store = ResultsStore(tmp_path)
    a = rec(seed=1)
    b = rec(seed=2, manifest=manifest("fp32", "/ck/other", "d" * 64))
    c = rec(seed=3, device="pixel7")
    for r in (a, b, c):
        store.add(r)
    rc, _, err = main("--results", str(tmp_path), "compare", a.run_id, b.run_id)
    assert rc == 2 and "different models (mobilebert cls2 vs other@dddddddd cls2)" in err
    rc, _, err = main("--results", str(tmp_path), "compare", a.run_id, c.run_id)
    assert rc == 2 and "different devices (host vs pixel7)" in err
    rc, _, err = main("--results", str(tmp_path), "compare", a.run_id, "c1")
    assert rc == 2 and "compare two runs or two campaigns" in err
    rc, _, err = main("--results", str(tmp_path), "compare", a.run_id, "zzz")
    assert rc == 2 and "no run 'zzz'" in err and "known campaigns: c1" in err
    rc, _, err = main("--results", str(tmp_path), "compare", a.run_id, a.run_id, "--threshold", "lots")
    assert rc == 2 and "--threshold" in err and "Traceback" not in err


def test_runs_list_show_rm(tmp_path):
    store = ResultsStore(tmp_path)
    keep = rec(seed=1, campaign="keep", tags={"branch": "main"})
    gone = [rec(seed=s, campaign="junk") for s in (2, 3)]
    for r in [keep, *gone]:
        store.add(r)
    rc, out, _ = main("--results", str(tmp_path), "runs", "list", "--tag", "branch=main")
    assert rc == 0 and keep.run_id in out and "1 run" in out and gone[0].run_id not in out
    rc, out, _ = main("--results", str(tmp_path), "runs", "show", keep.run_id)
    assert rc == 0 and json.loads(out)["campaign"] == "keep"
    rc, _, err = main("--results", str(tmp_path), "runs", "rm")
    assert rc == 2 and "needs a selection" in err
    rc, _, err = main("--results", str(tmp_path), "runs", "rm", "--campaign", "nope")
    assert rc == 2 and "no runs with --campaign 'nope'" in err and "known: junk, keep" in err
    rc, out, _ = main("--results", str(tmp_path), "runs", "rm", "--campaign", "junk")
    assert rc == 0 and "removed 2 runs" in out
    assert [r.run_id for r in ResultsStore(tmp_path).runs()] == [keep.run_id]
    rc, _, err = main("--results", str(tmp_path), "runs", "rm", "--campaign", "keep", "--status", "failed")
    assert rc == 2 and "nothing removed" in err


def test_report_selects_by_campaign_tag_date_and_timing(tmp_path):
    store = ResultsStore(tmp_path)
    for r in (rec(seed=1, campaign="a", tags={"k": "v"}), rec(seed=2, campaign="b", timing="mlperf")):
        store.add(r)
    rc, out, _ = main("--results", str(tmp_path), "report", "--campaign", "a")
    assert rc == 0 and "1 run, 1 group" in out
    rc, out, _ = main("--results", str(tmp_path), "report", "--timing", "mlperf", "--format", "csv")
    assert rc == 0 and out.count("\n") == 2
    rc, _, err = main("--results", str(tmp_path), "report", "--tag", "k=w")
    assert rc == 2 and "no runs tagged k=w" in err and "known values: v" in err
    rc, out, _ = main("--results", str(tmp_path), "report", "--until", "2026-11-30")
    assert rc == 0 and "no runs yet" in out
    rc, _, err = main("--results", str(tmp_path), "report", "--since", "yesterday")
    assert rc == 2 and "--since 'yesterday': not a date" in err
