"""`harness farm run`: a campaign plan on every phone of an AWS Device Farm pool, one stored record per device and run."""

from __future__ import annotations

from pathlib import Path

import click

from common.timing import HARDWARE
from harness.commands.run import schedule_options


@click.group("farm")
def farm_group():
    """Device farms (AWS Device Farm): run programs on phones you do not have on your desk."""


@farm_group.command("run")
@click.option("--program", "programs", type=click.Path(path_type=Path), multiple=True, required=True,
              help="The .pte (its .json manifest beside it); repeat it for one interleaved campaign of several.")
@click.option("--pool", required=True, help="Device pool ARN (arn:aws:devicefarm:us-west-2:ACCOUNT:devicepool:PROJECT/POOL).")
@click.option("--project", default=None, help="Project ARN (default: the pool's project).")
@click.option("--region", default="us-west-2", show_default=True, help="Device Farm's region.")
@click.option("--task", default=None, help="Score real examples of this task (default: synthetic inputs).")
@click.option("--samples", type=int, default=8, show_default=True, help="Examples in the inputs file.")
@click.option("--timing", "timing_preset", type=click.Choice(HARDWARE), default="default",
              show_default=True, help="Warmup and timing floors (docs/statistics.md); the flags below override it.")
@click.option("--warmup", type=int, default=None, help="Untimed warmup iterations.")
@click.option("--iterations", type=int, default=None, help="Timed iterations (at least).")
@click.option("--min-seconds", type=float, default=None, help="Keep timing until this many seconds have passed.")
@click.option("--warmup-seconds", type=float, default=None, help="Keep warming up until this many seconds have passed.")
@click.option("--max-seconds", type=float, default=0.0, help="Cap each timed loop at this many seconds (0: no cap).")
@click.option("--threads", type=int, default=4, show_default=True, help="Runner threads on each phone.")
@schedule_options
@click.option("--campaign", default=None, help="Name the runs' campaign (default: one per invocation).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Label the runs (report --tag selects); repeatable.")
@click.option("--job-timeout", "job_timeout", type=int, default=20, show_default=True,
              help="Minutes per device job (Device Farm bills device minutes).")
@click.option("--poll", "poll_s", type=float, default=30.0, show_default=True, help="Seconds between status polls.")
@click.pass_context
def farm_run_command(ctx, programs, pool, project, region, task, samples, timing_preset, warmup, iterations,
                     min_seconds, warmup_seconds, max_seconds, threads, repeat, schedule, schedule_seed, campaign,
                     tags, job_timeout, poll_s):
    """Upload the arm64 runner bundle, the programs and their inputs, run them on every phone of POOL in the
    campaign plan's order (as `harness run` schedules its runs), store one record per phone and run.

    \b
    Needs AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) with the permissions listed in
    docs/devices.md. Device Farm bills every device minute: keep the plan and the pool small (the default timing
    preset times each run for at least 2 s).

    \b
    Example:
      harness export --model mobilebert --quant fp32,int8
      harness farm run --program results/programs/mobilebert-fp32-s128-*.pte \\
          --program results/programs/mobilebert-int8-s128-*.pte --repeat 3 \\
          --pool arn:aws:devicefarm:us-west-2:123456789012:devicepool:1a2b3c4d-aaaa-bbbb-cccc-0123456789ab/5e6f7a8b-dddd-eeee-ffff-0123456789ab \\
          --task rotten_tomatoes
      harness report
    """
    from harness.commands.selection import campaign_name, parse_tags
    from harness.run.farm import FarmPool, run_farm
    from harness.run.plan import CampaignPlan
    from harness.run.request import InputsSpec, RunRequest, RunSettings, new_campaign

    results = Path((ctx.find_root().obj or {}).get("results", "results"))
    name = campaign_name(campaign) or new_campaign("farm")
    settings = RunSettings.from_preset(timing_preset, warmup=warmup, iterations=iterations, min_seconds=min_seconds,
                                       warmup_seconds=warmup_seconds, max_seconds=max_seconds, threads=threads)
    feed = InputsSpec(task=task, samples=samples)
    run_tags = parse_tags(tags)
    plan = CampaignPlan([RunRequest(program=p, settings=settings, inputs=feed, campaign=name, tags=run_tags)
                         for p in programs], rounds=repeat, schedule=schedule, seed=schedule_seed, campaign=name)
    where = FarmPool(pool=pool, project=project, region=region, job_timeout_minutes=job_timeout, poll_s=poll_s)
    records = run_farm(plan, where, results, progress=lambda s: click.echo(s, err=True))
    from harness.reports.table import fill_summaries
    from harness.store.db import ResultsStore

    fill_summaries(ResultsStore(results), {r.campaign for r in records})  # the next report reads them
    for rec in records:
        p50 = rec.latency.p50
        what = f"p50 {p50:.2f} ms" if p50 is not None else (rec.error or "")
        where_ = f"round {rec.schedule['round']}" if rec.schedule else ""
        click.echo(f"{rec.run_id} {rec.device} {Path(rec.program_path).name} {where_} "
                   f"[{rec.tags.get('farm_job_arn')}]: {rec.status} {what}")
    failed = [r for r in records if r.status == "failed"]
    for rec in failed:  # the reasons on stderr, one line each, like a failed `harness run`
        click.echo(f"error: run {rec.run_id} on {rec.device}: {rec.error}", err=True)
    if failed:
        ctx.exit(3)  # README's exit codes: runs that failed after they started, stored as failed
