"""`harness farm run`: a program on every phone of an AWS Device Farm pool, one stored record per device."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("farm")
def farm_group():
    """Device farms (AWS Device Farm): run programs on phones you do not have on your desk."""


@farm_group.command("run")
@click.option("--program", type=click.Path(path_type=Path), required=True, help="The .pte (its .json manifest beside it).")
@click.option("--pool", required=True, help="Device pool ARN (arn:aws:devicefarm:us-west-2:ACCOUNT:devicepool:PROJECT/POOL).")
@click.option("--project", default=None, help="Project ARN (default: the pool's project).")
@click.option("--region", default="us-west-2", show_default=True, help="Device Farm's region.")
@click.option("--task", default=None, help="Score real examples of this task (default: synthetic inputs).")
@click.option("--samples", type=int, default=8, show_default=True, help="Examples in the inputs file.")
@click.option("--warmup", type=int, default=10, show_default=True)
@click.option("--iterations", type=int, default=50, show_default=True)
@click.option("--threads", type=int, default=4, show_default=True, help="Runner threads on each phone.")
@click.option("--job-timeout", "job_timeout", type=int, default=20, show_default=True,
              help="Minutes per device job (Device Farm bills device minutes).")
@click.option("--poll", "poll_s", type=float, default=30.0, show_default=True, help="Seconds between status polls.")
@click.pass_context
def farm_run_command(ctx, program, pool, project, region, task, samples, warmup, iterations, threads, job_timeout,
                     poll_s):
    """Upload the arm64 runner bundle, PROGRAM and its inputs, run them on every phone of POOL, store the records.

    \b
    Needs AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) with the permissions listed in
    docs/devices.md. Device Farm bills every device minute: keep --iterations and the pool small.

    \b
    Example:
      harness export --model mobilebert --quant int8
      harness farm run --program results/programs/mobilebert-int8-s128-*.pte \\
          --pool arn:aws:devicefarm:us-west-2:123456789012:devicepool:1a2b3c4d-aaaa-bbbb-cccc-0123456789ab/5e6f7a8b-dddd-eeee-ffff-0123456789ab \\
          --iterations 30 --task rotten_tomatoes
      harness report
    """
    from harness.run.farm import FarmRequest, run_farm

    results = Path((ctx.find_root().obj or {}).get("results", "results"))
    req = FarmRequest(program=program, pool=pool, project=project, region=region, warmup=warmup,
                      iterations=iterations, threads=threads, task=task, samples=samples,
                      job_timeout_minutes=job_timeout, poll_s=poll_s)
    records = run_farm(req, results, progress=lambda s: click.echo(s, err=True))
    from harness.reports.table import fill_summaries
    from harness.store.db import ResultsStore

    fill_summaries(ResultsStore(results), {r.campaign for r in records})  # the next report reads them
    for rec in records:
        p50 = rec.latency.p50
        what = f"p50 {p50:.2f} ms" if p50 is not None else (rec.error or "")
        click.echo(f"{rec.run_id} {rec.device} [{rec.tags.get('farm_job_arn')}]: {rec.status} {what}")
    failed = [r for r in records if r.status == "failed"]
    for rec in failed:  # the reasons on stderr, one line each, like a failed `harness run`
        click.echo(f"error: run {rec.run_id} on {rec.device}: {rec.error}", err=True)
    if failed:
        ctx.exit(3)  # README's exit codes: runs that failed after they started, stored as failed
