"""The run-selection options report, compare and `runs` share, and how they become a store Selection."""

from __future__ import annotations

import click

from common.timing import PRESETS


def parse_tags(values, flag: str = "--tag") -> dict[str, str]:
    """KEY=VALUE pairs (repeatable option) as a dict; anything else is a usage error naming it."""
    out: dict[str, str] = {}
    for v in values or ():
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{v!r}: expected KEY=VALUE", param_hint=flag)
        out[key.strip()] = value.strip()
    return out


SELECTION_OPTIONS = [
    click.option("--campaign", default=None, help="Only runs of this campaign (`harness runs list` shows them)."),
    click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only runs with this tag; repeatable."),
    click.option("--run", "run_ids", multiple=True, metavar="ID", help="Only this run (id or unique prefix); repeatable."),
    click.option("--since", default=None, metavar="DATE", help="Only runs started at or after DATE (YYYY-MM-DD[THH:MM], UTC)."),
    click.option("--until", default=None, metavar="DATE", help="Only runs started at or before DATE (a bare date: that whole day)."),
    click.option("--timing", default=None, help=f"Only runs timed with this preset ({', '.join([*PRESETS, 'custom'])})."),
    click.option("--model", default=None, help="Only runs of this model preset (as recorded: mobilebert, checkpoint, ...)."),
    click.option("--model-id", default=None, help="Only runs of this model identity (the report's model column)."),
    click.option("--device", default=None, help="Only runs on this device."),
    click.option("--recipe", default=None, help="Only runs of this recipe (fp32, int8, ...)."),
    click.option("--status", "status_", type=click.Choice(["ok", "invalid", "failed", "interrupted"]), default=None,
                 help="Only runs with this status."),
]


def selection_options(f):
    for o in reversed(SELECTION_OPTIONS):
        f = o(f)
    return f


def selection(store, campaign=None, tags=(), run_ids=(), since=None, until=None, timing=None, model=None,
              model_id=None, device=None, recipe=None, status_=None, check: bool = True):
    """The Selection these options describe; with check, a selector that matches nothing in the store is an error."""
    from harness.store.db import Selection, parse_when

    sel = Selection(ids=list(run_ids) or None, campaign=campaign, tags=parse_tags(tags), status=status_, model=model,
                    model_id=model_id, recipe=recipe, device=device, timing=timing,
                    since=parse_when(since, "--since") if since else None,
                    until=parse_when(until, "--until", end_of_day=True) if until else None)
    if check:
        store.check_selection(sel)
        for rid in run_ids:
            store.get(rid)  # unknown or ambiguous id: one line naming it
    return sel


def warned(found):
    """What a store read found, after its warnings (records it could not read) went to stderr, one line each."""
    for line in getattr(found, "warnings", ()):
        click.echo(f"warning: {line}", err=True)
    return found


def campaign_name(name: str | None) -> str | None:
    """A --campaign name as given (None stays None); anything but a short plain name is a usage error."""
    import re

    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}", name):
        from program.schema import shown

        raise click.BadParameter(f"{shown(name)}: letters, digits and . _ : + - only (at most 100)",
                                 param_hint="--campaign")
    return name
