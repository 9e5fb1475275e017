"""The paper's table as a view of stored runs (harness/reports/paper.py): its verdicts, and what it says of a row
that has no run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.reports import paper
from harness.store.record import Latency, Memory


@pytest.mark.parametrize("key,ratio,holds", [
    ("bert-base", 5.0, True), ("bert-base", 3.0, False), ("noopt", 2.6, True), ("noopt", 1.2, False),
    ("mobilebert-tiny", 0.7, True), ("mobilebert-tiny", 0.95, False)])
def test_verdict_names_the_measured_and_claimed_ratio(key, ratio, holds):
    row = next(r for r in paper.ROWS if r.key == key)
    v = paper.verdict(row, ratio)
    assert v.startswith("holds" if holds else "does not hold here")
    assert "measured" in v and "paper" in v


def test_verdict_is_unclear_when_the_intervals_straddle_the_threshold():
    row = next(r for r in paper.ROWS if r.key == "bert-base")
    assert paper.verdict(row, 5.0, (4.6, 5.4)).startswith("holds: MobileBERT faster by 5.00x [4.60-5.40]")
    assert paper.verdict(row, 5.0, (2.9, 8.8)).startswith("unclear here")
    assert paper.verdict(row, 3.0, (2.5, 3.5)).startswith("does not hold here")
    tiny = next(r for r in paper.ROWS if r.key == "mobilebert-tiny")
    assert paper.verdict(tiny, 0.5, (0.4, 0.6)).startswith("holds: MobileBERT-TINY faster by 2.00x [1.67-2.50]")


def test_a_row_that_cannot_run_says_why_and_the_others_still_show():
    rows = [r for r in paper.ROWS if r.key in ("bert-base", "mobilebert")]
    rec = SimpleNamespace(tags={"paper": "mobilebert"}, recipe="fp32", status="ok", threads=2, emulated=False,
                          latency=Latency(median=10.0, p50=10.0), memory=Memory(peak_rss_mb=40.0), error=None, flags=[],
                          manifest={"program_bytes": 100_000_000}, campaign="c1", device="pixel7", seq_len=128,
                          timing="default")
    text = paper.paper_table([rec], rows=rows, recipes=["fp32"],
                             counts={"bert-base": (109e6, 22e9), "mobilebert": (25e6, 5e9)},
                             why_not={("bert-base", "fp32"): "not exported: out of memory"}).to_markdown()
    assert "not measured: not exported: out of memory" in text
    assert "| MobileBERT | 25.0M (25.3M) | 5.0G (5.7G) | 10.00 | 62 | 1.00x (1.00x) | 100.0 | 40.0 | 1 |" in text
    assert "MobileBERT is 5.5x faster than BERT-base: not measured (not exported: out of memory)" in text


def test_the_table_reads_its_counts_sizes_and_settings_from_the_runs_alone():
    def run(key, ms, run_id):
        return SimpleNamespace(
            tags={"paper": key, "paper_params": "25000000" if key == "mobilebert" else "109000000",
                  "paper_flops": "5000000000" if key == "mobilebert" else "22000000000"},
            recipe="int8", status="ok", threads=4, emulated=False, latency=Latency(median=ms, p50=ms), flags=[],
            memory=Memory(peak_rss_mb=50.0), error=None, manifest={"program_bytes": 30_000_000}, campaign="c9",
            device="pixel7", seq_len=128, timing="default", run_id=run_id)

    runs = [run("bert-base", 40.0, "a"), run("mobilebert", 10.0, "b"), run("bert-base", 42.0, "c"),
            run("mobilebert", 10.5, "d")]
    (table,) = paper.paper_tables(runs + [SimpleNamespace(tags={}, campaign="other")])
    text = table.to_markdown()
    assert text.startswith("# The MobileBERT paper on pixel7\n")
    assert "device pixel7, 4 threads, seq_len 128" in text and "campaign c9" in text and "## int8" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| BERT-base") or ln.startswith("| MobileBERT |")]
    assert rows[0].startswith("| BERT-base | 109.0M (109.0M) | 22.0G (22.5G) | 42.00 [")
    assert "| 30.0 | 50.0 | 2 |" in rows[0]
    assert "4.3x smaller than BERT-base: holds: 4.36x fewer parameters counted" in text
    # the ratio is row / MobileBERT from the medians of the runs' medians: 42 / 10.5 = 4.00
    assert "| 4.00x (5.52x) |" in rows[0]
    assert "MobileBERT is 5.5x faster than BERT-base: " in text


def test_a_run_the_report_leaves_out_is_left_out_of_the_paper_row_too():
    def run(ms):
        return SimpleNamespace(tags={"paper": "mobilebert"}, recipe="fp32", status="ok", threads=2, emulated=False,
                               latency=Latency(median=ms, p50=ms), flags=[], memory=Memory(), error=None,
                               manifest={}, campaign="c", device="host", seq_len=128, timing="default")

    (row,) = paper.paper_table([run(10.0), run(10.1), run(13.0)]).recipes["fp32"]["rows"]
    assert row["runs"] == 2 and row["left_out"] == 1 and row["ms"] == 10.1
    assert paper.cells(row)[-1] == "2 (+1 left out)"
