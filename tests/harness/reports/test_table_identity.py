"""Comparisons that cannot mislead: rows pool only runs of one model, recipe, device, settings, timing
preset and campaign; speed-up and accuracy delta compare with the same model's fp32 only; intervals stay in the data."""

from __future__ import annotations

from harness.reports.markdown import render_md
from harness.reports.table import build_rows
from tests.support.factories import acc, manifest, rec


def test_two_checkpoints_are_two_rows_and_int8_compares_with_its_own_fp32():
    a, b = manifest("fp32", "/ck/student-a", "a" * 64), manifest("fp32", "/ck/student-b", "b" * 64)
    a8 = manifest("int8", "/ck/student-a", "a" * 64)
    runs = [rec(manifest=a, accuracy=acc(0.777), seed=1), rec(manifest=b, accuracy=acc(0.569), seed=2),
            rec("int8", ms=4.0, manifest=a8, accuracy=acc(0.765), seed=3)]
    rows = build_rows(runs)
    fp32 = sorted(r["model"] for r in rows if r["recipe"] == "fp32")
    assert fp32 == ["student-a@aaaaaaaa cls2", "student-b@bbbbbbbb cls2"]
    [int8] = [r for r in rows if r["recipe"] == "int8"]
    assert int8["model"] == "student-a@aaaaaaaa cls2"
    assert round(int8["accuracy_delta_vs_fp32"], 4) == -0.012  # vs student-a's 0.777, never the pooled 0.61
    assert 2.2 < int8["speedup_vs_fp32"] < 2.8
    assert all(r["weights"] == "from checkpoint" for r in rows)


def test_a_run_of_another_timing_preset_or_campaign_never_joins_a_row():
    demo = [rec("int8", ms=10.0, seed=s, campaign="demo") for s in range(3)]
    busy = rec("int8", ms=28.0, seed=9, campaign="later", timing="mlperf")
    rows = build_rows(demo + [busy])
    assert len(rows) == 2
    [d] = [r for r in rows if r["campaign"] == "demo"]
    assert d["n_runs"] == 3 and 9.5 < d["p50_ms"] < 10.5 and d["p50_ci_high"] < 11
    again = rec("int8", ms=10.0, seed=7, campaign="other")  # same settings, another invocation: its own row
    assert len(build_rows(demo + [again])) == 2


def test_speedup_only_against_fp32_of_the_same_model_device_and_settings():
    runs = [rec("fp32", ms=30.0, device="pixel7", seed=1), rec("int8", ms=10.0, seed=2),
            rec("fp32", ms=30.0, seed=3, timing="quick")]
    [int8] = [r for r in build_rows(runs) if r["recipe"] == "int8"]
    assert int8["speedup_vs_fp32"] is None  # fp32 ran elsewhere or with another timing preset
    runs.append(rec("fp32", ms=30.0, seed=4, campaign="yesterday"))
    [int8] = [r for r in build_rows(runs) if r["recipe"] == "int8"]
    assert 2.7 < int8["speedup_vs_fp32"] < 3.3 and int8["fp32_campaign"] == "yesterday"


def test_recipe_options_are_part_of_the_row():
    g32 = rec("int4", ms=8.0, seed=1, manifest=manifest("int4", group_size=32))
    g64 = rec("int4", ms=7.0, seed=2, manifest=manifest("int4", group_size=64, quant_embedding="4w"))
    row = rec("int4", ms=7.5, seed=3, manifest=manifest("int4", group_size=0))  # --group-size row
    assert sorted(r["recipe"] for r in build_rows([g32, g64, row])) == ["int4 g32", "int4 g64 emb4w", "int4 per-row"]


def test_pooled_interval_never_leaves_the_data():
    # two wildly different runs: Student t over 2 medians is huge, but a median lies within the samples
    runs = [rec("fp32", ms=1.0, seed=1, n=20, spread=0.01), rec("fp32", ms=3.0, seed=2, n=20, spread=0.01)]
    [row] = build_rows(runs)
    samples = [x for r in runs for x in r.latencies_ms]
    assert min(samples) <= row["p50_ci_low"] <= row["p50_ms"] <= row["p50_ci_high"] <= max(samples)
    assert row["p50_ci_low"] > 0 and "runs_disagree" in row["flags"]


def test_random_weights_note_only_where_it_applies():
    trained = rec(manifest=manifest("fp32", "/ck/sst2", "c" * 64), seed=1, campaign="x")
    md = render_md(build_rows([trained]), [trained])
    assert "untrained" not in md
    rnd = rec(seed=2, campaign="y")
    rows = build_rows([trained, rnd])
    assert {r["model"]: r["weights"] for r in rows} == {"sst2@cccccccc cls2": "from checkpoint", "mobilebert cls2": "random"}
    assert "untrained (random) weights" in render_md(rows, [trained, rnd])


def test_pooled_summaries_are_cached_in_the_store_and_follow_the_runs(tmp_path, monkeypatch):
    from harness.reports import table
    from harness.store.db import ResultsStore

    store = ResultsStore(tmp_path)
    store.add_many([rec("fp32", seed=s, campaign="c") for s in (1, 2, 3)])
    first = build_rows(store.runs(), store.summary_cache())
    calls = []
    real = table.summarize
    monkeypatch.setattr(table, "summarize", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = build_rows(store.runs(), store.summary_cache())
    assert again == first and calls == []  # the pooled row came from the cache
    store.add(rec("fp32", seed=4, campaign="c"))  # the row now pools another run: summarised afresh
    grown = build_rows(store.runs(), store.summary_cache())
    assert calls == [1] and grown[0]["n_runs"] == 4


def test_a_row_that_pools_programs_with_different_bytes_says_so():
    """Same model, recipe and options, two program files (re-exported by another version): one row, and a note."""
    one = [rec("int8", ms=10.0, seed=i, program_sha256="a" * 64) for i in range(2)]
    other = rec("int8", ms=10.5, seed=3, program_sha256="b" * 64)
    assert len(build_rows(one + [other])) == 1
    md = render_md(build_rows(one + [other]), one + [other])
    assert ("- mixed programs (mobilebert cls2 int8 on host): its runs measured 2 program files with different bytes "
            f"(sha256 {'a' * 12}, {'b' * 12}), pooled as one row") in md
    assert "mixed programs" not in render_md(build_rows(one), one)
