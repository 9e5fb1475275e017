"""`harness results export|import`: move runs between results stores (lab hosts feeding one store), and write
ExecuTorch benchmark v3 rows for a dashboard."""

from __future__ import annotations

from pathlib import Path

import click

from harness.commands.selection import selection, selection_options, warned


@click.group("results")
def results_group() -> None:
    """Export runs to a file, import them into another store.

    \b
    Examples:
      harness results export --campaign nightly-7 > runs.jsonl
      harness --results central/ results import runs.jsonl
      harness results export --format v3 --output v3.json     # ExecuTorch benchmark v3 rows, one JSON list
    """


@results_group.command("export")
@selection_options
@click.option("--format", "fmt", type=click.Choice(["jsonl", "v3"]), default="jsonl", show_default=True,
              help="jsonl: every field of every run (raw samples, device state), importable; v3: ExecuTorch "
                   "benchmark v3 rows, one JSON list.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (atomically) instead of printing.")
@click.pass_context
def export_command(ctx, fmt, output, **sel):
    """Write the selected runs (default: all) as JSON lines, or as ExecuTorch benchmark v3 rows."""
    import json

    from harness.reports.report import write_text
    from harness.store.db import ResultsStore
    from harness.store.exchange import dumps

    store = ResultsStore(ctx.obj["results"])
    records = warned(store.runs(selection(store, **sel)))
    if fmt == "v3":
        from harness.reports.v3 import benchmark_v3

        text = json.dumps(benchmark_v3(records), indent=1) + "\n"
    else:
        text = dumps(records)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text(output, text)
        click.echo(f"wrote {output} ({len(records)} run{'s' if len(records) != 1 else ''})", err=True)


@results_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def import_command(ctx, files):
    """Add the runs of FILES (from `results export`, or a recovery file) to this store, in one transaction.

    Idempotent: runs already stored with the same content are skipped; a run id stored with other content stops
    the import before anything is written.
    """
    from harness.store.db import ResultsStore
    from harness.store.exchange import load, plan_import

    store = ResultsStore(ctx.obj["results"])
    new, seen, skipped = [], {}, 0
    for f in files:
        batch = load(f)
        seen.update(store.by_ids([r.run_id for r in batch if r.run_id not in seen]))
        add = plan_import(batch, seen, str(f))  # checks against the store and the files before this one
        skipped += len(batch) - len(add)
        seen.update({r.run_id: r for r in add})
        new += add
    store.add_many(new)
    from harness.reports.table import fill_summaries

    fill_summaries(store, {r.campaign for r in new})  # their report rows, summarised now as `harness run` does
    click.echo(f"imported {len(new)} run{'s' if len(new) != 1 else ''} into {store.path}"
               + (f" ({skipped} already there)" if skipped else ""))
