"""Emulated runs have a timing preset of their own and are never 'invalid few' (their timings are functional checks,
never ranked), and the report prints no emulated speed-up vs fp32 (issue #28: runs with the small counts the docs
recommend were all `invalid few`, and the report still showed an emulated '6.13x')."""

from __future__ import annotations

import numpy as np

from common.timing import PRESETS, timing_name
from harness.commands.run import _default_timing
from harness.reports.report import render
from harness.run.stats import status_for, summarize, validity_flags
from harness.store.record import RunRecord


def test_emulated_devices_default_to_the_emulated_preset():
    assert _default_timing("emu-arm64", None) == "emulated" and _default_timing("host", None) == "default"
    e = PRESETS["emulated"]
    assert (e.warmup, e.iterations, e.min_seconds) == (1, 3, 0.0)
    assert timing_name(1, 3, 0.0, 0.0) == "emulated"


def test_a_few_emulated_iterations_are_valid_and_a_few_on_hardware_are_not():
    few = summarize([2500.0, 2600.0, 2550.0])
    emulated = validity_flags(few, emulated=True, info_before=None, info_after=None)
    assert emulated == ["emulated"] and status_for(emulated) == "ok"
    hardware = validity_flags(few, emulated=False, info_before=None, info_after=None)
    assert "too_few_samples" in hardware and status_for(hardware) == "invalid"


def _rec(recipe, median):
    lat = (np.full(3, median) + np.arange(3)).tolist()
    return RunRecord(run_id=f"{recipe}-emu", created_at="2026-12-05T00:00:00Z", status="ok", device="emu-arm64",
                     model="test-tiny", recipe=recipe, seq_len=16, runner="native", threads=2, emulated=True,
                     timing="emulated", random_weights=True, latencies_ms=lat, latency=summarize(lat),
                     flags=["emulated"], memory={"program_mb": 1.0})


def test_the_report_shows_no_emulated_speed_up():
    text = render([_rec("fp32", 6129.0), _rec("int8", 999.0)], "md")
    assert "6.13x" not in text and "no speed-up vs fp32" in text
