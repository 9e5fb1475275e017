"""Stats that scale: one stored run of 98,609 samples made every `harness report` take 3.4 s instead of
0.9 s, because the report bootstrapped the raw samples again. A run's summary is computed once, when it is stored,
and the report reuses it; a pooled row's summary is computed by the first report and read from the store's cache by
every later one. Checked without a clock: a report that summarises stored samples again fails the test."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.store.db import ResultsStore
from tests.support.factories import rec


def _report(results) -> str:
    res = CliRunner().invoke(cli, ["--results", str(results), "report"], catch_exceptions=False,
                             standalone_mode=False)
    return res.output


@pytest.fixture
def no_summaries(monkeypatch):
    """Every way a report could summarise samples (table's own name and the stats module's) raises instead."""
    from harness.reports import table
    from harness.run import stats

    def again(samples, **kw):
        raise AssertionError(f"the report summarised {len(samples)} stored samples again")

    def forbid():
        monkeypatch.setattr(table, "summarize", again)
        monkeypatch.setattr(stats, "summarize", again)

    return forbid


def test_a_report_reuses_the_summary_stored_with_a_run(tmp_path, no_summaries):
    """A 100k-sample run reports as fast as a 1k one: the report never bootstraps a stored run again. (A wall-time
    ratio of two reports cannot show it where the bootstrap of 100k samples takes 60 ms beside a 0.5 s report, and
    fails by load alone: it was removed.)"""
    stored = rec("fp32", ms=10.0, seed=2, n=100_000, campaign="c")
    ResultsStore(tmp_path).add(stored)
    no_summaries()
    out = _report(tmp_path)
    assert "1 run" in out


def test_a_pooled_row_is_summarised_by_the_first_report_only(tmp_path, no_summaries):
    """Three runs of one program pool into one row: the first report summarises the pooled samples (and keeps the
    result in the store), the second reads it back and prints the same row."""
    store = ResultsStore(tmp_path)
    for seed in (1, 2, 3):
        store.add(rec("fp32", ms=10.0, seed=seed, n=20_000, campaign="c"))
    first = _report(tmp_path)
    assert "3 runs" in first, first
    no_summaries()
    assert _report(tmp_path) == first
