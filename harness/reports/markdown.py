"""The report table as terminal-friendly markdown: hardware, emulated and failed runs in their own sections.

By default the table is compact (harness.reports.columns.compact: the columns a reader needs first, settings every
row shares said once above it, empty columns left out) so that it fits 100 characters; wide=True gives every column.
"""

from __future__ import annotations

import textwrap
from typing import Any

from harness.reports import columns as C
from harness.reports.columns import fmt_ms  # noqa: F401  (compare.py and the HTML report format with it)
from harness.store.record import NOT_MEASURED, RunRecord

EMULATED_NOTE = ("functional timings only, from an emulator: never ranked or compared with hardware, and no speed-up vs "
                 "fp32 (an emulator's relative kernel costs are not a device's)")
SINGLE_RUN_NOTE = ("p50 CI from a single run (runs = 1): it counts that run's noise and drift, not the shifts between "
                   "runs (several percent on a shared machine); measure with `harness run --repeat 3` or more for an "
                   "interval across runs (docs/statistics.md)")
KEPT_ONE_NOTE = ("p50 CI from the one run kept (the others were left out, named below): it counts that run's noise "
                 "and drift, not the shifts between runs; more runs (`--repeat`) on a quieter machine give an interval "
                 "across runs (docs/statistics.md#pooling)")
FLAG_MEANING = {"high_cv": " (robust cv above 0.10)", "too_few_samples": " (under 10 timed iterations)",
                "gate_fail": " (accuracy below the gate vs fp32)"}
WIDTH = 100  # the compact report fits a terminal this wide
RANDOM_NOTE = "weights=random: untrained (random) weights, so accuracy means nothing; latency and memory are real"


def md_table(header: list[str], rows: list[list[str]], width: int | None = None) -> str:
    """A pipe table padded to column width, so it reads in a terminal as well as rendered; with width, the spaces
    around the pipes go when the padded table would be wider (it renders the same)."""
    cells = [header] + [[c.replace("|", "\\|") for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    pad = " " if width is None or sum(widths) + 3 * len(widths) + 1 <= width else ""

    def line(row: list[str]) -> str:
        return f"|{pad}" + f"{pad}|{pad}".join(c.ljust(w) for c, w in zip(row, widths)) + f"{pad}|"

    rule = "|" + "|".join("-" * (w + 2 * len(pad)) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def section_table(part: list[dict[str, Any]], wide: bool = False) -> list[str]:
    """One section's table as markdown lines, the shared-settings line first; compact tables come one per model
    (speed-up and Δ compare within a model anyway), so that long model identities never widen them."""
    if wide:
        cols = C.present(C.WIDE, part)
        return [md_table([c.header for c in cols], [[c.cell(r) for c in cols] for r in part]), ""]
    models = list(dict.fromkeys(map(C.model_identity, part)))
    out = []
    for model in models:
        mine = [r for r in part if C.model_identity(r) == model]
        cols, shared = C.shared_settings(C.present(C.compact(mine), mine, drop_empty=True), mine)
        if len(models) > 1:
            out += [f"### {model}", ""]
            shared = [s for s in shared if s[0] != "model"]
        out += _wrap(C.settings_line(shared)) + [""] if shared else []
        out += [md_table([c.header for c in cols], [[c.cell(r) for c in cols] for r in mine], WIDTH), ""]
    return out


def _wrap(line: str) -> list[str]:
    """Wrapped at WIDTH, never inside one "name value" setting."""
    line = line.replace(" ", "\xa0").replace(",\xa0", ", ").replace("row:\xa0", "row: ")
    return [part.replace("\xa0", " ") for part in textwrap.wrap(line, WIDTH)]


def _flag_legend(rows: list[dict[str, Any]]) -> str:
    shown = {f for r in rows for f in C.SHORT_FLAGS if C.SHORT_FLAGS[f] in C.status_short(r).split()}
    return "; ".join(f"{C.SHORT_FLAGS[f]} = {f}" + FLAG_MEANING.get(f, "") for f in C.SHORT_FLAGS if f in shown)


def _failed_table(failed: list[RunRecord], wide: bool) -> str:
    rows = [[r.run_id, r.device or "", getattr(r, "model_id", None) or r.model or "", r.recipe or "",
             (r.error or "").splitlines()[0] if r.error else ""] for r in failed]
    if not wide:  # the error's first line, cut to fit (the whole of it with --wide)
        room = WIDTH - 3 * 5 - 1 - sum(max(len(r[i]) for r in rows + [["run", "device", "model", "recipe"]])
                                       for i in range(4))
        rows = [r[:4] + [r[4] if len(r[4]) <= room else r[4][:max(room, 20) - 1] + "…"] for r in rows]
    return md_table(["run", "device", "model", "recipe", "error"], rows, None if wide else WIDTH)


def device_cpus(records: list[RunRecord]) -> dict[str, list[str]]:
    """Each device's CPU as its runs recorded it ("host" -> ["AMD EPYC (AVX2, FMA), 2 cores"]): a profile name alone
    does not say which machine a number came from (a host's CPU changes with the machine it runs on)."""
    from device_runners.devinfo import cpu_label

    out: dict[str, set[str]] = {}
    for r in records:
        label = cpu_label(r.device_info_before or {})
        if label and r.device:
            out.setdefault(r.device, set()).add(label)
    return {d: sorted(v) for d, v in sorted(out.items())}


def left_out_notes(part: list[dict[str, Any]]) -> list[str]:
    """One line per row that left runs out of its latency, or kept a disturbed one (harness/run/pooling.py): under
    the markdown table and under the HTML page's, so no report shows a latency without saying what it pooled."""
    out = []
    for r in part:
        where = f"{r['model']} {r['recipe'] or ''} on {r['device']}"
        if r.get("disturbance"):
            out.append(f"disturbed ({where}): {r['disturbance']}")
        if r.get("slowed"):
            out.append(f"slowed ({where}): {r['slowed']} (docs/statistics.md#pooling)")
    return out


def mixed_program_notes(rows: list[dict[str, Any]]) -> list[str]:
    """A row whose runs measured program files with different bytes (the same model, recipe and options, exported
    again by another harness or ExecuTorch version, or by hand): the row pools them, and says so."""
    out = []
    for r in rows:
        shas = (r.get("program_sha256") or "").split()
        if len(shas) > 1:
            out.append(f"mixed programs ({r['model']} {r['recipe']} on {r['device']}): its runs measured "
                       f"{len(shas)} program files with different bytes (sha256 {', '.join(x[:12] for x in shas)}), "
                       "pooled as one row (`harness runs show RUN` gives each run's program_sha256)")
    return out


def ci_notes(rows: list[dict[str, Any]]) -> list[str]:
    """What the rows' p50 intervals cover when one of them comes from a single run (measured once, or one kept)."""
    scopes = {r.get("ci_scope") for r in rows}
    return ([SINGLE_RUN_NOTE] if "within one run" in scopes else []) + (
        [KEPT_ONE_NOTE] if "within the one run kept" in scopes else [])


def render_md(rows: list[dict[str, Any]], records: list[RunRecord], wide: bool = False) -> str:
    """rows: harness.reports.table.build_rows(records); wide: every column instead of the compact table."""
    out = [f"# harness report: {C.plural(len(records), 'run')}, {C.plural(len(rows), 'group')}", ""]
    devices = device_cpus(records)
    if devices:
        out += ["Devices: " + "; ".join(f"{d} = {' / '.join(cpus)}" for d, cpus in devices.items()), ""]
    for section, title in (("hardware", "Hardware"), ("emulated", f"Emulated ({EMULATED_NOTE})")):
        part = [r for r in rows if r["section"] == section and r["status"] != "failed"]
        if part:
            out += [f"## {title}", ""] + section_table(part, wide)
    from harness.reports.paper import paper_tables

    for table in paper_tables(records):  # the runs of `harness paper`: the paper's table again, from the store
        out += [table.to_markdown(level=2), ""]
    failed = [r for r in records if r.status in NOT_MEASURED]  # interrupted runs too: their error says so
    if failed:
        out += ["## Failed runs", "", _failed_table(failed, wide), ""]
    notes = ci_notes(rows)
    if any("runs_disagree" in r["flags"] for r in rows):
        from harness.run.stats import MAX_RUN_CV
        notes.append(f"runs_disagree: the runs' medians spread by more than {MAX_RUN_CV:.0%} (CV): the machine changed "
                     "between them; the CI across runs says how much that matters (docs/statistics.md)")
    notes += left_out_notes(rows)
    notes += mixed_program_notes(rows)
    one_class = {}  # a program that answered one class for every example: its accuracy is that class's share
    for r in records:
        note = r.accuracy.one_class_note if r.accuracy else None
        if note:
            one_class.setdefault((r.model_id or r.model, r.recipe or "", r.device), note)
    for (model, recipe, device), note in one_class.items():
        notes.append(f"one class ({model} {recipe} on {device}): {note}")
    from harness.run.accuracy import balance

    balances = {}  # agreement with fp32 means little on a set where fp32 (or the labels) are mostly one class
    for r in records:
        acc = r.accuracy.to_json() if r.accuracy else {}
        if acc.get("agreement_fp32") is not None and balance(acc):
            balances.setdefault((acc.get("task"), acc.get("n")), balance(acc))
    for (task, n), text in balances.items():
        notes.append(f"agreement measured on {n} {task} examples: {text}")
    if any(r["weights"] == "random" for r in rows):
        notes.append(RANDOM_NOTE)
    if any(r["status"] == "invalid" for r in rows):
        notes.append("status=invalid: measured, but a validity flag (too_few_samples, throttled) makes the numbers "
                     "untrustworthy; see docs/statistics.md")
    legend = "" if wide else _flag_legend([r for r in rows if r["status"] != "failed"])
    if legend:
        notes.append(f"status: {legend} (docs/statistics.md)")
    if not wide and rows:
        notes.append("more columns (p90, rank, load, first inference, agreement, gate, run ids): "
                     "`harness report --wide`, or every field with `--format csv`")
    out += [f"- {n}" for n in notes]  # one line each (a terminal or a renderer wraps prose; grep finds it)
    return "\n".join(out).rstrip() + "\n"
