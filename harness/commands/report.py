"""`harness report` and `harness compare`: read the results store, print or write a report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from harness.commands.selection import selection, selection_options, warned
from harness.reports.report import FORMATS


@click.command("report")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True,
              help="md: terminal table; csv: one row per group; json: table + raw records + ExecuTorch benchmark v3 "
                   "rows; html: one self-contained file with plots.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of printing (html defaults to <results>/reports/report-<time>.html).")
@click.option("--wide", is_flag=True,
              help="Markdown with every column (default: a compact table that fits 100 characters; csv and json "
                   "always hold every column, html shows them all).")
@selection_options
@click.pass_context
def report_command(ctx, fmt, output, wide, **sel):
    """Summarise stored runs: latency with CIs, speed-up vs fp32, memory, accuracy, validity.

    A row pools only runs of one kind: one model (by identity), recipe and options, device, seq_len, runner,
    threads, affinity, timing preset and campaign.

    \b
    Examples:
      harness report
      harness report --wide
      harness report --device host --recipe int8
      harness report --campaign nightly --tag branch=main
      harness report --since 2026-12-01 --timing mlperf
      harness report --format html --output results/reports/today.html
      harness report --format json --output runs.json   # includes ExecuTorch benchmark v3 rows
    """
    from harness.reports.report import render
    from harness.store.db import ResultsStore

    results: Path = ctx.obj["results"]
    store = ResultsStore(results)
    records = warned(store.runs(selection(store, **sel)))
    if fmt == "html" and output is None:
        output = results / "reports" / f"report-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.html"
    if wide and fmt != "md":
        raise click.UsageError(f"--wide is for --format md: {fmt} always has every column")
    text = render(records, fmt, output, wide=wide, cache=store.summary_cache())
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {output} ({len(records)} run{'s' if len(records) != 1 else ''})")


def _threshold(value: str) -> float:
    text = value.strip()
    try:
        t = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected a percentage such as 5% (or a fraction, 0.05)",
                                 param_hint="--threshold") from None
    if not 0 <= t < 10:
        raise click.BadParameter(f"{value!r}: must be between 0% and 1000%", param_hint="--threshold")
    return t


def _resolve(store, name: str):
    """("campaign", runs) when name is a campaign of the store, else ("run", the run with that id or prefix)."""
    from common.errors import BadInput
    from harness.store.db import Selection

    runs = warned(store.runs(Selection(campaign=name)))
    if runs:
        return "campaign", runs
    try:
        return "run", store.get(name)
    except BadInput as e:
        raise BadInput(f"{e} (nor is it a campaign; known campaigns: {', '.join(store.known('campaign')) or 'none'})"
                       ) from None


@click.command("compare")
@click.argument("names", metavar="[A] B", nargs=-1)
@click.option("--baseline", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results folder A is read from (e.g. main's results); without A, its newest campaign.")
@click.option("--fail-on", type=click.Choice(["regression"]), default=None,
              help="Exit 1 when B is significantly slower than A by more than --threshold (CI gating).")
@click.option("--threshold", default="5%", show_default=True, help="Slow-down tolerated before --fail-on fires.")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.pass_context
def compare_command(ctx, names, baseline, fail_on, threshold, fmt):
    """Is B faster than A? Median ratio with a bootstrap CI and a Mann-Whitney U test.

    A and B are run ids (or unique prefixes) or campaign names. Two campaigns compare group by group (same model,
    recipe, device, seq_len, runner, threads and timing). Runs of different models or devices are refused.
    Exit codes: 0 compared, 1 regression (with --fail-on), 2 usage error.

    \b
    Examples:
      harness compare 3f2a9c 77b1e0
      harness compare 3f2a9c 77b1e0 --format json
      harness compare nightly-6 nightly-7 --fail-on regression --threshold 5%   # two campaigns, group by group
      harness compare --baseline main-results pr-42 --fail-on regression --threshold 5%
    """
    import json

    from common.errors import BadInput
    from harness.reports.compare import (compare_campaigns, compare_runs, regressions, render_campaigns,
                                         render_comparison)
    from harness.store.db import ResultsStore

    limit = _threshold(threshold)
    if len(names) not in (1, 2) or (len(names) == 1 and baseline is None):
        raise click.UsageError("give two runs or campaigns, A and B (or --baseline DIR and B)")
    a, b = names if len(names) == 2 else (None, names[0])
    store = ResultsStore(ctx.obj["results"])
    base = ResultsStore(baseline) if baseline else store
    if a is None:
        newest = base.known("campaign", limit=1)
        if not newest:
            raise BadInput(f"--baseline {baseline}: holds no runs to compare with")
        a = newest[0]
    kind_a, runs_a = _resolve(base, a)
    kind_b, runs_b = _resolve(store, b)
    if kind_a != kind_b:
        raise BadInput(f"{a} is a {kind_a} and {b} a {kind_b}: compare two runs or two campaigns")
    if kind_a == "run":
        result = compare_runs(runs_a, runs_b)
        text = render_comparison(result)
    else:
        result = compare_campaigns(runs_a, runs_b, a, b)
        text = render_campaigns(result)
    click.echo(json.dumps(result, indent=1) if fmt == "json" else text, nl=fmt == "json")
    if fail_on == "regression":
        found = regressions(result, limit)
        for line in found:
            click.echo(line, err=True)
        if found:
            ctx.exit(1)
