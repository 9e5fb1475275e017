"""From what a runner wrote to a record's numbers: the result checked, latency and memory filled in, the
disturbance evidence kept, the outputs scored for accuracy, an interrupted run's partial samples kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from device_runners.base import MalformedResult, RawResult, RunJob, Transport, TransportError
from common.errors import RunnerError
from program.manifest import ProgramManifest
from harness.run import accuracy, inputs, stats
from harness.run.device_folders import pull_text
from harness.store.record import Accuracy, Latency, Memory, RunRecord

def parse_result(text: str, job: RunJob, device: str) -> RawResult:
    """The runner's result, checked: a malformed one fails the run (stored, with the reason), never the CLI."""
    try:
        raw = RawResult.from_json(text)
    except MalformedResult as e:
        raise RunnerError(f"runner on {device} wrote a malformed result: {e}") from None
    if len(raw.latencies_ms) < job.iterations and not (job.max_seconds and raw.extra.get("max_seconds_reached")):
        raise RunnerError(f"runner on {device} reported {len(raw.latencies_ms)} timed iterations, fewer than the "
                          f"{job.iterations} asked for")
    return raw


def runner_error(raw_text: str | None, stderr: str, rc: int) -> str:
    if raw_text:
        try:
            d = json.loads(raw_text)
            if isinstance(d, dict) and d.get("error"):
                return str(d["error"])[:300]
        except ValueError:
            pass
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if rc < 0 or rc > 128:
        sig = -rc if rc < 0 else rc - 128
        return f"runner crashed (signal {sig})" + (f": {lines[-1]}" if lines else "")
    return (lines[-1] if lines else f"exit code {rc}")[:300]


def keep_partial(rec: RunRecord, transport: Transport, job: RunJob, tmp: Path, manifest: ProgramManifest | None,
                  path: Path, signame: str) -> None:
    """After an interrupt: the samples the runner wrote before it stopped (flagged partial), or none."""
    try:
        raw_text = pull_text(transport, job.result, tmp / "result.json", timeout=15)
        data = json.loads(raw_text) if raw_text else {}
    except (TransportError, TimeoutError, OSError, ValueError):
        data = {}
    try:
        raw = RawResult.from_json(raw_text) if data.get("latencies_ms") else None
    except MalformedResult:
        raw = None  # what it wrote cannot be trusted: keep the interruption, not the numbers
    if raw is not None:
        fill_measurements(rec, raw, manifest, path, partial=True)
        rec.flags = ["partial", *stats.validity_flags(rec.latency.to_json(), emulated=rec.emulated,
                                                      info_before=rec.device_info_before, info_after=None)]
        rec.error = f"interrupted by {signame} after {len(rec.latencies_ms)} timed iterations (partial)"
    else:
        rec.error = f"interrupted by {signame}" + (f" while {data['stage']}" if data.get("stage") else "")


def record_measurements(rec: RunRecord, raw: RawResult, manifest: ProgramManifest | None, path: Path,
                        outputs: list | None = None, run_inputs: inputs.RunInputs | None = None) -> None:
    """Measurements, accuracy, validity flags and status of `rec` from a raw result run elsewhere (a device farm)."""
    fill_measurements(rec, raw, manifest, path)
    if outputs is not None and run_inputs is not None and (run_inputs.task or manifest):
        rec.accuracy = score(outputs, run_inputs, manifest)
    rec.flags = stats.validity_flags(rec.latency.to_json(), emulated=rec.emulated, info_before=rec.device_info_before,
                                     info_after=rec.device_info_after, disturbed=disturbance_reasons(rec, raw))
    rec.status = stats.status_for(rec.flags)


def disturbance_reasons(rec: RunRecord, raw: RawResult) -> list[str]:
    """Keep the runner's evidence of what the machine did during the timed loop; the reasons it was disturbed."""
    from harness.run import disturbance

    found = disturbance.summary(raw.extra.get("timing_evidence"))
    if found is None:
        return []
    rec.device_info_after = rec.device_info_after or {}
    rec.device_info_after.setdefault("during", {})["disturbance"] = found
    return found["reasons"]


def fill_measurements(rec: RunRecord, raw: RawResult, manifest: ProgramManifest | None, path: Path,
                      partial: bool = False) -> None:
    """`partial`: an interrupted run's samples, summarized without the bootstrap CI (never pooled; Ctrl-C must not
    wait seconds for it)."""
    rec.runner = raw.runner or rec.runner
    rec.runner_version = raw.runner_version
    rec.threads = raw.threads or rec.threads
    rec.load_ms, rec.first_inference_ms = raw.load_ms, raw.first_inference_ms
    if raw.extra.get("xnnpack_cache"):
        rec.tags["xnnpack_cache"] = raw.extra["xnnpack_cache"].get("state")  # "written" | "reused": load_ms differs
    rec.latencies_ms = [float(x) for x in raw.latencies_ms]
    stride = raw.extra.get("sample_stride")
    if isinstance(stride, int) and not isinstance(stride, bool) and stride > 1:  # a long --min-seconds run, thinned
        rec.tags["sample_stride"] = stride
    rec.latency = Latency.from_json(stats.summarize(rec.latencies_ms, ci=not partial))
    program_bytes = manifest.program_bytes if manifest else path.stat().st_size
    planned = raw.extra.get("planned_buffer_bytes")  # one size per memory-planned buffer of the method
    arena = sum(planned) if isinstance(planned, list) and planned else None
    rec.memory = Memory(
        peak_rss_mb=round(raw.peak_rss_kb / 1024, 2) if raw.peak_rss_kb else None,
        peak_rss_method=f"{raw.runner} runner process, {raw.peak_rss_method}".strip(", "),
        pss_mb=round(raw.pss_kb / 1024, 2) if raw.pss_kb else None,
        pss_method="/proc/self/smaps_rollup at exit" if raw.pss_kb else None,
        program_mb=round(program_bytes / 2**20, 3),  # MiB, like peak RSS (kB / 1024)
        arena_mb=round(arena / 2**20, 3) if arena else None,
        arena_method="program's planned activation buffers (non_const_buffer_sizes)" if arena else None,
    )
    footprint = raw.extra.get("phys_footprint_kb")  # iOS: the app's memory footprint as sysmontap saw it (not RSS)
    if isinstance(footprint, int) and not isinstance(footprint, bool) and footprint > 0:
        rec.memory.phys_footprint_mb = round(footprint / 1024, 2)
        rec.memory.phys_footprint_method = str(raw.extra.get("phys_footprint_method") or "")


def score(outputs: list[list[np.ndarray]], run_inputs: inputs.RunInputs,
          manifest: ProgramManifest | None) -> Accuracy | None:
    if not outputs:
        return None
    if run_inputs.qa is not None:
        return Accuracy.from_json(accuracy.score_squad(outputs, run_inputs, manifest))
    logits = accuracy.logits_of(outputs)
    ref = None
    note = None
    if manifest is not None and manifest.head == "sequence_classification":
        from harness.run import reference

        enc = run_inputs.encoded or {
            n: np.concatenate([ex[i] for ex in run_inputs.examples], axis=0)
            for i, n in enumerate(("input_ids", "attention_mask", "token_type_ids"))
        }
        outs = reference.cached_outputs(manifest, enc)  # once per model, task and inputs; then from the cache
        if outs is None:
            note = "fp32 reference unavailable (checkpoint moved or changed)"
        else:
            ref = outs[0]
    labels = run_inputs.labels if (manifest is None or not manifest.random_weights) else None
    result = accuracy.score(logits, labels if run_inputs.task else None, ref)
    result["task"] = run_inputs.task or "synthetic"
    if manifest is not None and manifest.random_weights:
        result["note"] = "untrained (random) weights: task accuracy not meaningful, agreement only"
    if note:
        result["note"] = note
    return Accuracy.from_json(result)


def profile_summary(etdump: Path, pte: Path) -> dict:
    from harness.run.profiling import summarize_etdump

    return summarize_etdump(etdump, pte)
