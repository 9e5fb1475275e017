"""`harness report` and `harness compare`: read the results store, print or write a report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from harness.results.report import FORMATS


@click.command("report")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True,
              help="md: terminal table; csv: one row per group; json: table + raw records + ExecuTorch benchmark v3 "
                   "rows; html: one self-contained file with plots.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of printing (html defaults to <results>/reports/report-<time>.html).")
@click.option("--model", default=None, help="Only runs of this model preset.")
@click.option("--device", default=None, help="Only runs on this device.")
@click.option("--recipe", default=None, help="Only runs of this recipe (fp32, int8, ...).")
@click.option("--status", "status_", type=click.Choice(["ok", "invalid", "failed"]), default=None,
              help="Only runs with this status (default: all, failed runs listed with their error).")
@click.option("--wide", is_flag=True,
              help="Markdown with every column (default: a compact table that fits 100 characters; csv and json "
                   "always hold every column, html shows them all).")
@click.pass_context
def report_command(ctx, fmt, output, model, device, recipe, status_, wide):
    """Summarise stored runs: latency with CIs, speed-up vs fp32, memory, accuracy, validity.

    \b
    Examples:
      harness report
      harness report --wide
      harness report --device pixel8pro --model mobilebert
      harness report --format html --output results/reports/today.html
      harness report --format json --output runs.json   # includes ExecuTorch benchmark v3 rows
    """
    from harness.results.report import render
    from harness.store.db import ResultsStore

    results: Path = ctx.obj["results"]
    records = ResultsStore(results).runs(status=status_, model=model, recipe=recipe, device=device)
    if fmt == "html" and output is None:
        output = results / "reports" / f"report-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.html"
    if wide and fmt != "md":
        raise click.UsageError(f"--wide is for --format md: {fmt} always has every column")
    text = _wide_md(records, output) if wide else render(records, fmt, output)
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {output} ({len(records)} runs)")


def _wide_md(records, output: Path | None) -> str:
    # TODO(lead): fold into harness.results.report.render as a `wide` argument (not this branch's file)
    from harness.results.grouping import NO_RUNS
    from harness.results.markdown import render_md
    from harness.results.report import write_text
    from harness.results.table import build_rows

    text = render_md(build_rows(records), records, wide=True) if records else NO_RUNS + "\n"
    if output is not None:
        write_text(Path(output), text)
    return text


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.pass_context
def compare_command(ctx, run_a, run_b, fmt):
    """Is RUN_B faster than RUN_A? Median ratio with a bootstrap CI and a Mann-Whitney U test.

    RUN_A and RUN_B are run ids or unique prefixes (see `harness report --format csv`, column run_ids).

    \b
    Examples:
      harness compare 3f2a9c 77b1e0
      harness compare 3f2a9c 77b1e0 --format json
    """
    import json

    from harness.results.compare import compare_runs, render_comparison
    from harness.store.db import ResultsStore

    store = ResultsStore(ctx.obj["results"])
    result = compare_runs(store.get(run_a), store.get(run_b))
    click.echo(json.dumps(result, indent=1) if fmt == "json" else render_comparison(result), nl=fmt == "json")
