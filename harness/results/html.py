"""The report as ONE self-contained HTML file: inline CSS, the tables, and the figures as base64 PNG."""

from __future__ import annotations

import datetime as dt
from html import escape

import pandas as pd

from harness.store.record import NOT_MEASURED, RunRecord
from harness.results.grouping import NO_RUNS, group_runs
from harness.results.markdown import COLUMNS, EMULATED_NOTE, RANDOM_NOTE, SINGLE_RUN_NOTE, fmt_ms

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d1d1f; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f3f7; } .l { text-align: left; }
tr.invalid td { background: #fff6e0; } tr.failed td, tr.interrupted td { background: #fde8e8; }
.wide { overflow-x: auto; }
.note { color: #555; } .warn { color: #9a5b00; }
figure { margin: 16px 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 12px; }
"""
LEFT = {"model", "recipe", "device", "runner", "weights", "flags", "status", "accuracy", "gate", "error", "run"}


def _table(header: list[str], rows: list[list[str]], classes: list[str]) -> str:
    head = "".join(f"<th class='l'>{escape(h)}</th>" if h in LEFT else f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row, cls in zip(rows, classes):
        cells = "".join(f'<td class="l">{escape(c)}</td>' if h in LEFT else f"<td>{escape(c)}</td>"
                        for h, c in zip(header, row))
        body.append(f'<tr class="{cls}">{cells}</tr>')
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def _group_table(part: pd.DataFrame) -> str:
    return _table([c for c, _ in COLUMNS], [[f(r) for _, f in COLUMNS] for _, r in part.iterrows()],
                  list(part["status"]))


def render_html(df: pd.DataFrame, records: list[RunRecord]) -> str:
    from harness.results import plots

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>harness report</h1><p class='note'>{len(records)} runs in {len(df)} groups, generated {now}.</p>"]
    if not records:
        body.append(f"<p>{escape(NO_RUNS)}</p>")
    if (df["weights"] == "random").any():
        body.append(f"<p class='warn'>{escape(RANDOM_NOTE)}</p>")
    if (df["ci_scope"] == "within one run").any():
        body.append(f"<p class='note'>{escape(SINGLE_RUN_NOTE)}</p>")
    groups = group_runs(records)
    for section, title in (("hardware", "Hardware"), ("emulated", "Emulated")):
        part = df[(df["section"] == section) & (df["status"] != "failed")]
        if part.empty:
            continue
        body.append(f"<h2>{title}</h2>")
        if section == "emulated":
            body.append(f"<p class='warn'>{escape(EMULATED_NOTE)}.</p>")
        body.append(_group_table(part))
        plot = plots.latency_distribution([g for g in groups if g.emulated == (section == "emulated")], section)
        if plot:
            body.append(plot.html())
        for device in part["device"].drop_duplicates():
            plot = plots.accuracy_vs_latency(part, device)
            if plot:
                body.append(plot.html())
        plot = plots.size_vs_latency(part, section)
        if plot:
            body.append(plot.html())
    profiled = {}
    for r in records:  # the latest profiled run of each group
        if r.status not in NOT_MEASURED and (r.profile or {}).get("ops"):
            profiled[(r.emulated, r.model, r.recipe, r.device, r.seq_len, r.runner, r.threads)] = r
    if profiled:
        body.append("<h2>Per-op breakdown</h2>")
        body += [p.html() for p in map(plots.op_breakdown, profiled.values()) if p]
    failed = [r for r in records if r.status in NOT_MEASURED]  # interrupted runs too: their error says so
    if failed:
        body.append("<h2>Failed runs</h2>")
        rows = [[r.run_id, r.created_at, r.device or "", r.model or "", r.recipe or "", r.error or ""] for r in failed]
        body.append(_table(["run", "created", "device", "model", "recipe", "error"], rows, ["failed"] * len(rows)))
    if records:
        body.append("<h2>All runs</h2>")
        rows = [[r.run_id, r.created_at, r.status, r.device or "", r.model or "", r.recipe or "",
                 fmt_ms((r.latency or {}).get("p50")),
                 ", ".join(r.flags)] for r in records]
        body.append(_table(["run", "created", "status", "device", "model", "recipe", "p50 ms", "flags"], rows,
                           [r.status for r in records]))
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>harness report</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
