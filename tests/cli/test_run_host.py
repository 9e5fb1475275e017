"""harness run, as a user runs it: a real program on the host (native and Python runners) and on the emulated
arm64 device; one RunRecord stored per run, failures stored with their reason, earlier runs kept."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from harness.run import measure
from harness.store.db import ResultsStore
from tests.support.tools import require_tool


def _run(program, results, **kw):
    kw.setdefault("iterations", 12)
    kw.setdefault("warmup", 2)
    return measure.run(measure.RunRequest.of(program=program, **kw), results)


@pytest.fixture(scope="module")
def host_runs(tiny_export):
    results, res = tiny_export
    native = _run(res.program, results, runner="native", task="rotten_tomatoes", samples=12)
    python = _run(res.program, results, runner="python", task="rotten_tomatoes", samples=12)
    return results, res, native, python


def test_native_run_is_stored_with_measurements(host_runs):
    results, res, native, _ = host_runs
    assert native.status == "ok", native.error
    stored = ResultsStore(results).get(native.run_id)
    assert stored.program_sha256 == res.manifest.program_sha256
    assert stored.runner == "native" and stored.device == "host" and not stored.emulated
    assert len(stored.latencies_ms) >= 12 and stored.latency.n == len(stored.latencies_ms)
    assert stored.latency.ci95_median[0] <= stored.latency.median <= stored.latency.ci95_median[1]
    assert stored.load_ms > 0 and stored.first_inference_ms > 0
    assert 0 < stored.memory.peak_rss_mb < 100  # the native runner starts at a few MB, no interpreter
    assert stored.device_info_before.get("cores") and stored.harness_version


def test_device_outputs_agree_with_fp32_eager(host_runs):
    _, _, native, python = host_runs
    for rec in (native, python):
        assert rec.accuracy.n == 12
        assert rec.accuracy.agreement_fp32 == 1.0
        assert rec.accuracy.max_rel_logit_error < 1e-4
        assert "random" in rec.accuracy.note  # untrained weights say so


def test_python_runner_memory_is_the_interpreter(host_runs):
    _, _, native, python = host_runs
    assert python.runner == "python"
    assert python.memory.peak_rss_mb > 3 * native.memory.peak_rss_mb


def test_foreign_program_without_manifest_runs_on_synthetic_inputs(tiny_export, tmp_path):
    results, res = tiny_export
    foreign = tmp_path / "foreign.pte"
    shutil.copyfile(res.program, foreign)  # no foreign.json beside it
    rec = _run(foreign, results, runner="native")
    assert rec.status == "ok", rec.error
    assert rec.manifest is None and rec.seq_len == 16
    assert rec.accuracy is None  # no manifest, no task: no reference to agree with, nothing is scored


def test_timeout_is_stored_as_failed_and_next_run_works(tiny_export):
    results, res = tiny_export
    before = {r.run_id for r in ResultsStore(results).runs()}
    rec = _run(res.program, results, runner="native", iterations=10**6, min_seconds=2, timeout=3)
    assert rec.status == "failed" and "imeout" in rec.error
    stored = {r.run_id for r in ResultsStore(results).runs()}
    assert before <= stored and rec.run_id in stored
    again = _run(res.program, results, runner="native")
    assert again.status == "ok", again.error


def test_emulated_arm64_agrees_with_host(tiny_export):
    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    results, res = tiny_export
    host = _run(res.program, results, device="host", task="rotten_tomatoes", samples=8)
    emu = _run(res.program, results, device="emu-arm64", task="rotten_tomatoes", samples=8, iterations=10, warmup=1)
    assert emu.status in ("ok", "invalid"), emu.error
    assert emu.emulated and "emulated" in emu.flags
    assert emu.accuracy.agreement_fp32 == 1.0
    assert host.accuracy.agreement_fp32 == 1.0
    assert np.isclose(emu.accuracy.max_rel_logit_error, host.accuracy.max_rel_logit_error, atol=1e-4)


def test_users_own_runner_binary_is_pushed_and_used(tiny_export, tmp_path):
    from device_runners.build import build_bundle

    results, res = tiny_export
    bundle = build_bundle("x86_64")
    mine = tmp_path / "my_runner"  # stands for an NDK build of runner.cpp: same flags, same JSON
    mine.write_text(f"#!/bin/sh\nexec {bundle}/bin/harness_runner \"$@\"\n")
    rec = _run(res.program, results, runner_bin=mine)
    assert rec.status == "ok", rec.error
    assert rec.tags["runner_bin"] == str(mine.resolve())
    with pytest.raises(Exception, match="--runner-bin"):
        _run(res.program, results, runner_bin=tmp_path / "missing")


def test_profiled_run_reports_ops_and_is_flagged(tiny_export):
    results, res = tiny_export
    rec = _run(res.program, results, profile=True)
    assert rec.status in ("ok", "invalid"), rec.error
    assert "profiled" in rec.flags
    ops = rec.profile["ops"]
    assert ops and all(o["ms"] >= 0 and o["backend"] in ("XNNPACK", "portable") for o in ops)
    assert any("Fully Connected" in o["name"] and o["backend"] == "XNNPACK" for o in ops)
    # the per-op times account for (most of) the method's time, never more than it
    assert sum(o["ms"] for o in ops) <= rec.profile["method_ms_per_run"] * 1.05


def test_xnnpack_cache_is_written_then_reused_with_the_same_outputs(tiny_export):
    from device_runners.catalog import default_workdir, get_profile
    from pathlib import Path

    results, res = tiny_export
    cached = Path(default_workdir(get_profile("host"))) / "xnnpack-cache" / f"{res.manifest.program_sha256[:16]}-native.bin"
    cached.unlink(missing_ok=True)  # an earlier session on this machine may have left one
    first = _run(res.program, results, xnnpack_cache=True, task="rotten_tomatoes", samples=6)
    second = _run(res.program, results, xnnpack_cache=True, task="rotten_tomatoes", samples=6)
    assert first.status != "failed" and second.status != "failed", (first.error, second.error)
    assert (first.tags["xnnpack_cache"], second.tags["xnnpack_cache"]) == ("written", "reused")
    assert second.accuracy.max_rel_logit_error == pytest.approx(first.accuracy.max_rel_logit_error, abs=1e-6)
    with pytest.raises(Exception, match="--xnnpack-cache"):
        _run(res.program, results, xnnpack_cache=True, runner="python")


def test_piped_run_output_is_one_line_per_fact_with_progress_on_stderr(tiny_export, tmp_path):
    import subprocess
    import sys

    _, res = tiny_export  # `harness run ... | cat`: stdout is a pipe
    p = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(tmp_path), "run", "--program",
                        str(res.program), "--warmup", "0", "--iterations", "5", "--min-seconds", "1.2", "--samples", "2"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    latency = [ln for ln in p.stdout.splitlines() if ln.strip().startswith("latency p50")]
    assert len(latency) == 1 and " ms, first inference " in latency[0] and latency[0].endswith(" ms")
    timing = [ln for ln in p.stderr.splitlines() if ": timing, " in ln]
    assert timing and "s of --min-seconds 1.2 left" in timing[0]  # the runner's progress, as it ran
