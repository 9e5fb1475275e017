"""`harness runs list|show|rm`: look at stored runs one by one, and remove the ones that should not be there."""

from __future__ import annotations

import click

from harness.commands.selection import selection, selection_options, warned


@click.group("runs")
def runs_group() -> None:
    """List, show and remove stored runs (selection: --campaign, --tag, --run, --status, --since, ...).

    \b
    Examples:
      harness runs list
      harness runs list --campaign nightly --status failed
      harness runs show 3f2a9c
      harness runs rm --status failed --device pixel7
    """


@runs_group.command("list")
@selection_options
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.pass_context
def list_command(ctx, fmt, **sel):
    """One line per run, oldest first: id, start, campaign, status, model, recipe, device, p50, tags."""
    import json

    from harness.reports.markdown import fmt_ms, md_table
    from harness.store.db import ResultsStore

    store = ResultsStore(ctx.obj["results"])
    rows = warned(store.summaries(selection(store, **sel)))
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("no runs match")
        return
    table = [[r["run_id"], (r["created_at"] or "")[:19].replace("T", " "), r["campaign"] or "", r["status"],
              r["model_id"] or r["model"] or "", r["recipe"] or "", r["device"], r["timing"] or "",
              fmt_ms(r["p50_ms"]), " ".join(f"{k}={v}" for k, v in (r["tags"] or {}).items())] for r in rows]
    click.echo(md_table(["run", "started (UTC)", "campaign", "status", "model", "recipe", "device", "timing",
                         "p50 ms", "tags"], table))
    click.echo(f"{len(rows)} run{'s' if len(rows) != 1 else ''}")


@runs_group.command("show")
@click.argument("run_id")
@click.pass_context
def show_command(ctx, run_id):
    """One run's whole record as JSON (raw samples, device state, manifest)."""
    import json

    from harness.store.db import ResultsStore

    click.echo(json.dumps(ResultsStore(ctx.obj["results"]).get(run_id).to_dict(), indent=1))


@runs_group.command("rm")
@selection_options
@click.pass_context
def rm_command(ctx, **sel):
    """Remove the selected runs in one transaction (a selection is required; nothing matching is exit 2)."""
    from common.errors import BadInput
    from harness.store.db import ResultsStore

    store = ResultsStore(ctx.obj["results"])
    chosen = selection(store, **sel)
    if chosen.empty():
        raise BadInput("runs rm needs a selection (--run ID, --campaign, --status, --tag, ...): it never removes all")
    removed = store.delete_where(chosen)
    if not removed:
        raise BadInput("no runs match that selection: nothing removed")
    click.echo(f"removed {len(removed)} run{'s' if len(removed) != 1 else ''}: {' '.join(removed)}")
