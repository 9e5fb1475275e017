"""`harness run`: programs (given, or exported from the export options) -> a campaign of runs on a device,
interleaved and stored, each printed as it ends."""

from __future__ import annotations

from pathlib import Path

import click

from common.console import console, err_console, status
from common.timing import HARDWARE
from harness.commands.export import int_list, export_options, export_requests, do_export


def schedule_options(f):
    """--repeat, --schedule and --seed: how a campaign plan orders its runs (harness/run/plan.py), for every command
    that builds one (run, farm run)."""
    opts = [
        click.option("--repeat", type=int, default=1, show_default=True,
                     help="Runs of each program and setting, in rounds (see --schedule)."),
        click.option("--schedule", type=click.Choice(["interleaved", "blocks"]), default="interleaved",
                     show_default=True,
                     help="interleaved: rounds of every program in a new random order each round (a slow minute "
                          "falls on all alike); blocks: each program's runs back to back."),
        click.option("--seed", "schedule_seed", type=int, default=None, help="Seed of the interleaved order (recorded)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@click.command("run")
@click.option("--program", "programs", type=click.Path(path_type=Path), multiple=True,
              help="A .pte to run (with or without a harness manifest); repeat it to measure several in one "
                   "interleaved campaign. Or give --model/--checkpoint/--quant.")
@export_options
@click.option("--device", default="host", show_default=True, help="Device profile; `harness devices` lists them.")
@click.option("--runner", default="native", show_default=True, type=click.Choice(["native", "python"]),
              help="native: the C++ runner (default); python: ExecuTorch's Python runtime (host only).")
@click.option("--runner-bin", type=click.Path(path_type=Path), default=None,
              help="Your own build of device_runners/native/runner.cpp (e.g. with the Android NDK), pushed and run as is.")
@click.option("--xnnpack-cache", is_flag=True,
              help="Keep XNNPACK's packed weights in a file on the device; later runs map it (faster load, lower RSS).")
@click.option("--timing", "timing_preset", type=click.Choice([*HARDWARE, "emulated"]), default=None,
              help="Warmup and timing floors (iterations and seconds, docs/statistics.md); the flags below override "
                   "it. Default: 'default', or 'emulated' (1 warmup, 3 timed) on an emulated device.")
@click.option("--iterations", type=int, default=None, help="Timed iterations (at least).")
@click.option("--warmup", type=int, default=None, help="Untimed warmup iterations.")
@click.option("--min-seconds", type=float, default=None, help="Keep timing until this many seconds have passed.")
@click.option("--warmup-seconds", type=float, default=None, help="Keep warming up until this many seconds have passed.")
@click.option("--max-seconds", type=float, default=0.0,
              help="Cap the timed loop at this many seconds, even short of --iterations (0: no cap).")
@click.option("--threads", "threads_list", default=None,
              help="Runner threads (default: the device profile's); a comma list (1,2,4) makes a sweep.")
@click.option("--affinity", "affinities", multiple=True,
              help="Cores to pin the runner to: a cluster of the profile (big, mid, little) or a CPU list (4-7, 0,1); "
                   "repeat it for a sweep.")
@click.option("--task", default=None,
              help="Score real examples of this task through the program (rotten_tomatoes, sst2, mrpc, ..., FILE; "
                   "squad, squad_v2 or a SQuAD FILE.json on a question-answering program).")
@click.option("--samples", type=int, default=None, help="Examples fed to the program (default 8; 200 with --task).")
@click.option("--profile", "profile_run", is_flag=True, help="Collect an ETDump (flagged; never mixed with timing runs).")
@click.option("--cooldown", type=float, default=0.0, help="Wait up to this many seconds for temperatures to settle.")
@click.option("--wait-for-quiet", type=float, default=0.0, metavar="SECONDS",
              help="Before each run, wait up to this long while other work keeps over 15% of the device's CPUs busy.")
# device state options (harness/run/device_state.py)
@click.option("--max-start-temp", type=float, default=None,
              help="Thermal gate: start only when battery and skin are at or below this many °C (waits --cooldown).")
@click.option("--no-check-model", is_flag=True, help="Run even if the device's model is not its profile's.")
@schedule_options
@click.option("--target-ci", type=float, default=None,
              help="Add rounds for programs whose CI across runs is wider than this share of the median (0.02 = "
                   "+-2%) or whose runs disagree, up to --max-repeats rounds or --max-campaign-seconds.")
@click.option("--max-repeats", type=int, default=None, help="With --target-ci: rounds in all, at most.")
@click.option("--max-campaign-seconds", type=float, default=None,
              help="With --target-ci: start no further round after this many seconds.")
@click.option("--timeout", type=float, default=900.0, show_default=True, help="Seconds before the run is killed.")
@click.option("--devices-file", type=click.Path(path_type=Path), default=None, help="Extra device catalog (TOML).")
@click.option("--address", default=None, help="ssh address user@host[:port] for ssh devices.")
@click.option("--serial", default=None, help="adb serial for Android devices.")
@click.option("--oversubscribe", is_flag=True, help="Allow more runner threads than the device has cores.")
@click.option("--app", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, metavar="IPA",
              help="iPhones: the signed harness app (.ipa), installed when the phone's differs (docs/devices.md).")
@click.option("--campaign", default=None,
              help="Name the runs' campaign (rows pool only runs of one campaign); default: one per invocation.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Label the runs (report --tag selects); repeatable.")
@click.pass_context
def run_command(ctx, programs, device, runner, runner_bin, xnnpack_cache, timing_preset, iterations, warmup,
                min_seconds, warmup_seconds, max_seconds, threads_list, affinities, task, samples, profile_run, cooldown,
                wait_for_quiet, max_start_temp, no_check_model, repeat, schedule, schedule_seed, target_ci, max_repeats,
                max_campaign_seconds, timeout, devices_file, address, serial, oversubscribe, app, campaign, tags,
                **export_kw):
    """Run a program on a device, store one RunRecord per run, print a summary.

    \b
    Examples:
      harness run --model mobilebert --quant int8 --device emu-arm64 --task rotten_tomatoes --samples 50
      harness run --program results/programs/mobilebert-int8-s128-*.pte --device host   # the program it exported
      harness run --model mobilebert --quant int8 --seq-len 32,128,384 --device pixel7 --timing mlperf
      harness run --model mobilebert --quant fp32,int8,int4 --repeat 3 --campaign nightly --tag branch=main
      harness run --model test-tiny --quant fp32,int8 --repeat 3 --target-ci 0.02 --max-repeats 6
      harness run --model test-tiny --head question_answering --seq-len 64 --task tests/fixtures/squad-tiny.json
      harness run --model mobilebert --quant int8 --device pixel7 --threads 1,2 --affinity big --affinity mid \\
        --max-start-temp 35 --cooldown 300
    """
    from harness.commands.selection import campaign_name, parse_tags
    from harness.run import measure
    from harness.run.plan import CampaignPlan, run_plan, validate_plan
    from harness.run.request import DeviceTarget, Gates, InputsSpec, RunRequest, RunSettings

    results = ctx.obj["results"]
    if app is not None:  # read by the ios transport (device_runners/ios/device.py: app_from_env)
        import os

        os.environ["HARNESS_IOS_APP"] = str(app.resolve())
    run_tags = parse_tags(tags)
    campaign = campaign_name(campaign) or measure.new_campaign()
    if programs:
        flag = {p.name: p.opts[0] for p in ctx.command.params}  # as the user typed it: --quant, not --recipe
        given = [flag.get(n, f"--{n.replace('_', '-')}") for n in export_kw
                 if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"--program runs a program as it was exported: {', '.join(given)} describe an "
                                   "export (drop them, or export with them and run the result)")
        if len(set(map(str, programs))) != len(programs):
            raise click.BadParameter("the same program is given twice (use --repeat for more runs of it)",
                                     param_hint="--program")
    sweep = [(th, af) for th in _thread_counts(threads_list) for af in (affinities or (None,))]
    target = DeviceTarget(name=device, devices_file=devices_file, address=address, serial=serial,
                          check_model=not no_check_model, oversubscribe=oversubscribe)
    feed = InputsSpec(task=task, samples=samples if samples is not None else (200 if task else 8),
                      tokenizer=export_kw["tokenizer"])
    gates = Gates(cooldown=cooldown, wait_for_quiet=wait_for_quiet, max_start_temp=max_start_temp)
    timing_preset = timing_preset or _default_timing(device, devices_file)

    def request(prog, threads, affinity):
        settings = RunSettings.from_preset(
            timing_preset, runner=runner, runner_bin=runner_bin, xnnpack_cache=xnnpack_cache, warmup=warmup,
            iterations=iterations, min_seconds=min_seconds, warmup_seconds=warmup_seconds, max_seconds=max_seconds,
            threads=threads, affinity=affinity, profile=profile_run, timeout=timeout)
        return RunRequest(program=prog, device=target, settings=settings, inputs=feed, gates=gates,
                          campaign=campaign, tags=run_tags)

    plan = CampaignPlan([], rounds=repeat, schedule=schedule, seed=schedule_seed, target_ci=target_ci,
                        max_rounds=max_repeats, max_seconds=max_campaign_seconds, campaign=campaign)
    validate_plan(plan)  # the plan's flags, before any export
    if task and not programs:
        from harness.run.inputs import check_task_head
        check_task_head(task, export_kw["head"] if export_kw["checkpoint"] is None else None)  # before any export
    exported = [] if programs else [do_export(req, results) for req in export_requests(**export_kw)]
    progs = list(programs) or [res.program for res in exported]
    for prog in progs:  # every program's settings checked before the first run of the campaign
        measure.validate(request(prog, *sweep[0]))
    plan.requests = [request(prog, th, af) for prog in progs for th, af in sweep]
    records = run_plan(plan, results, measure=measure_one, say=lambda s: console.print(f"[cyan]{s}[/cyan]"))
    _fill_summaries(results, records)
    # an export that failed its numerics gate is measured all the same (its error line said so), and exits 3 as
    # `harness export` does: a script must not read a program whose logits are not the model's as a success
    if sum(r.status == "failed" for r in records) or any(res.manifest.status != "ok" for res in exported):
        ctx.exit(3)


def _fill_summaries(results: Path, records) -> None:
    """The report rows of the runs just stored, summarised now: the next report reads them (issue #27 item 4)."""
    from harness.reports.table import fill_summaries
    from harness.store.db import ResultsStore

    fill_summaries(ResultsStore(results), {r.campaign for r in records})


def _default_timing(device: str, devices_file: Path | None) -> str:
    """'emulated' for an emulated device (its timings are functional checks, seconds per inference), else 'default'."""
    from common.errors import BadInput
    from device_runners.catalog import get_profile

    try:
        return "emulated" if get_profile(device, devices_file).transport == "qemu" else "default"
    except BadInput:
        return "default"  # an unknown device or a bad catalog: the run's own checks name it


def _thread_counts(value: str | None) -> list[int | None]:
    return [None] if value is None else int_list(value, "--threads", "thread counts")


def measure_one(req, results: Path, label: str, session=None):
    """One run under a status line fed by the runner's progress; the record is printed, interrupted ones too."""
    from harness.run import measure

    try:
        with status(label) as update:
            rec = measure.run(req, results, progress=update, session=session)
    except measure.RunInterrupted as e:
        print_run(e.record)
        raise
    print_run(rec)
    return rec


def print_run(rec) -> None:
    color = {"ok": "green", "invalid": "yellow", "failed": "red", "interrupted": "magenta"}.get(rec.status, "white")
    console.print(f"[{color}]{rec.status}[/{color}] run {rec.run_id}: {rec.model} {rec.recipe or ''} "
                  f"seq {rec.seq_len} on {rec.device} ({rec.runner} runner, {rec.threads} threads"
                  + (f" @ cpus {rec.affinity}" if rec.affinity else "") + ")"
                  + ("  \\[emulated: timings are functional only]" if rec.emulated else ""))
    if rec.status in ("failed", "interrupted"):
        # the reason goes to stderr, where scripts and CI logs look for failures (the summary line stays on stdout)
        err_console.print(f"{'error' if rec.status == 'failed' else 'stopped'}: run {rec.run_id}: {rec.error}",
                          soft_wrap=True, markup=False)
        if rec.status == "interrupted" and rec.latency.n:
            lat = rec.latency
            console.print(f"  partial latency p50 {lat.median:.2f} ms over {lat.n} iterations "
                          "(stored, never pooled into the report)")
        return
    lat = rec.latency
    ci = lat.ci95_median or [float("nan"), float("nan")]
    console.print(f"  latency p50 {lat.median:.2f} ms (95% CI {ci[0]:.2f}-{ci[1]:.2f}), p90 {lat.p90:.2f} ms, "
                  f"n={lat.n}, cv {lat.cv:.3f}; load {rec.load_ms:.1f} ms, first inference "
                  f"{rec.first_inference_ms:.1f} ms")
    mem = rec.memory
    console.print(f"  memory: peak RSS {mem.peak_rss_mb} MB ({mem.peak_rss_method}), "
                  f"program {mem.program_mb} MB"
                  + (f"; physFootprint {mem.phys_footprint_mb} MB ({mem.phys_footprint_method})"
                     if mem.phys_footprint_mb else ""))
    acc = rec.accuracy
    if acc:
        parts = []
        if acc.value is not None:
            parts.append(f"{acc.metric} {acc.value:.4f}"
                         + (f" (exact match {acc.exact_match:.4f})" if acc.exact_match is not None else ""))
        if acc.agreement_fp32 is not None:
            from harness.run.accuracy import balance

            on = balance(acc.to_json())
            parts.append(f"top-1 agreement with fp32 eager {acc.agreement_fp32:.4f}"
                         + (f" ({on})" if on else "") + f", max rel logit error {acc.max_rel_logit_error:.2e}")
        if acc.gate:
            parts.append("gate " + ("passed" if acc.gate["passed"] else "FAILED"))
        console.print(f"  accuracy on {acc.n} {acc.task} examples: " + "; ".join(parts)
                      + (f"  ({acc.note})" if acc.note else ""))
        if acc.one_class_note:
            console.print(f"  [yellow]{acc.one_class_note}[/yellow]")
    elif (rec.schedule or {}).get("accuracy_from"):
        console.print(f"  accuracy: scored in run {rec.schedule['accuracy_from']} of this campaign (same program, "
                      "inputs and threads); this run was timed only")
    if rec.flags:
        console.print(f"  flags: {', '.join(rec.flags)}")
    for why in ((rec.device_info_after or {}).get("during") or {}).get("throttle_evidence") or []:
        console.print(f"  throttled: {why}")
