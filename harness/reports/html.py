"""The report as ONE self-contained HTML page: inline CSS, tables that sort and filter (a few lines of inline
JavaScript), and interactive Plotly charts whose JavaScript is inlined once. Nothing is fetched when it is viewed.

Hardware and emulated runs are sections of their own, each with its table and charts (harness/reports/plots.py).
Settings every row of a section shares are said once above its table, and cells wrap, so every column stays on
screen at 1400 px.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from harness.reports import columns as C
from harness.reports.grouping import NO_RUNS, group_runs, random_weights
from harness.store.record import NOT_MEASURED
from harness.reports.paper import COLUMNS as PAPER_COLUMNS, PaperTable, cells, paper_tables
from harness.reports.markdown import EMULATED_NOTE, RANDOM_NOTE, ci_notes, device_cpus, left_out_notes

if TYPE_CHECKING:
    from harness.reports.plots import Plot
    from harness.store.record import RunRecord

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 20px 24px; color: #1d1d1f; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 20px 0 4px; }
.note { color: #555; margin: 4px 0; } .warn { color: #9a5b00; margin: 4px 0; } .settings { margin: 6px 0; }
.tablebox { margin: 8px 0 16px; } .tools { margin: 4px 0; font-size: 12px; color: #555; }
.tools input { font: inherit; padding: 2px 6px; width: 260px; margin-right: 8px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 5px; text-align: right; vertical-align: top; }
th { background: #f0f3f7; cursor: pointer; user-select: none; font-weight: 600; }
th[aria-sort=ascending]::after { content: " ▲"; } th[aria-sort=descending]::after { content: " ▼"; }
td.n { white-space: nowrap; } .l { text-align: left; }
th:first-child, td:first-child { position: sticky; left: 0; background: #fff; }
th:first-child { background: #f0f3f7; }
tr.invalid td { background: #fff6e0; } tr.failed td { background: #fde8e8; }
.ids { color: #666; font-size: 11px; font-family: ui-monospace, monospace; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 12px 20px; }
figure.chart { margin: 8px 0; min-width: 0; } figure.chart.full { grid-column: 1 / -1; }
figure.chart h4 { font-size: 14px; font-weight: 600; margin: 0 0 2px; }
figcaption { color: #555; font-size: 12px; }
"""

# click a header to sort (numbers by their data-v value, blanks last); type words to keep the rows holding them all
JS = """
(function () {
  function key(td) {
    var v = td.getAttribute('data-v');
    if (v !== null) { return v === '' ? null : parseFloat(v); }
    return td.textContent.trim().toLowerCase();
  }
  document.querySelectorAll('.tablebox').forEach(function (box) {
    var table = box.querySelector('table'), body = table.tBodies[0];
    var input = box.querySelector('input'), count = box.querySelector('.count');
    var rows = Array.prototype.slice.call(body.rows);
    function shown() {
      var n = rows.filter(function (r) { return !r.hidden; }).length;
      count.textContent = n + ' of ' + rows.length + (rows.length === 1 ? ' row' : ' rows');
    }
    input.addEventListener('input', function () {
      var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
      rows.forEach(function (r) {
        var t = r.textContent.toLowerCase();
        r.hidden = !words.every(function (w) { return t.indexOf(w) >= 0; });
      });
      shown();
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.title = 'sort';
      th.addEventListener('click', function () {
        var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
        rows.slice().sort(function (a, b) {
          var x = key(a.cells[i]), y = key(b.cells[i]);
          if (x === null || y === null) { return (x === null) - (y === null); }
          return (x < y ? -1 : x > y ? 1 : 0) * dir;
        }).forEach(function (r) { body.appendChild(r); });
      });
    });
    shown();
  });
})();
"""
MAX_IDS = 5  # run ids listed in a table cell; all of them are in its tooltip and the filter still finds them


def _cell(c: C.Column, r: Mapping[str, Any]) -> str:
    cls = "l" if c.left else "n"
    sort = ""
    if c.sort_key:
        v = r.get(c.sort_key)
        sort = f' data-v="{"" if C.missing(v) else float(v)!r}"'
    text = escape(c.cell(r))
    if c is C.RUNS:  # the count, then the ids themselves
        ids = C.txt(r.get("run_ids")).split()
        more = f"<br>+{len(ids) - MAX_IDS} more" if len(ids) > MAX_IDS else ""
        text += (f'<div class="ids" title="{escape(" ".join(ids))}">'
                 f'{"<br>".join(map(escape, ids[:MAX_IDS]))}{more}<span hidden>{escape(" ".join(ids[MAX_IDS:]))}'
                 "</span></div>")
    return f'<td class="{cls}"{sort}>{text}</td>'


def table(cols: Sequence[C.Column], rows: Sequence[Mapping[str, Any]], classes: Sequence[str], name: str) -> str:
    """An interactive table: a filter box, a row count, headers that sort."""
    head = "".join(f'<th class="{"l" if c.left else "n"}">{escape(c.header)}</th>' for c in cols)
    body = "".join(f'<tr class="{cls}">{"".join(_cell(c, r) for c in cols)}</tr>' for r, cls in zip(rows, classes))
    return (f'<div class="tablebox" data-table="{escape(name)}"><div class="tools">'
            '<input type="search" placeholder="filter rows: words they all contain" '
            f'aria-label="filter {escape(name)}">'
            f'<span class="count"></span> · click a header to sort</div><div class="scroll"><table>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></div>")


def _plain(cols: list[tuple[str, bool]], values: Iterable[list[str]], classes: Iterable[str], name: str) -> str:
    """A table of plain text columns (header, left-aligned)."""
    spec = [C.Column(h, (lambda i: lambda r: r[i])(i), (), left=left) for i, (h, left) in enumerate(cols)]
    rows = [dict(enumerate(v)) for v in values]
    return table(spec, rows, list(classes), name)


def _summary_table(part: list[dict[str, Any]], name: str) -> str:
    cols = [c for c in C.present(C.WIDE, part, drop_empty=True) if c.header != "run ids"]  # ids sit under runs
    cols, shared = C.shared_settings(cols, part)
    line = C.settings_line(shared)
    classes = [f"{r.get('status', '')}{' random' if r.get('weights') == 'random' else ''}" for r in part]
    return (f'<p class="settings">{escape(line)}</p>' if line else "") + table(cols, part, classes, name)


def _samples(part: list[dict[str, Any]], records: list[RunRecord]) -> list[list[float]]:
    """Each row's pooled raw samples, from the group whose runs it lists."""
    by_ids = {" ".join(r.run_id for r in g.runs): g for g in group_runs(records)}
    return [by_ids[r["run_ids"]].samples if r.get("run_ids") in by_ids else [] for r in part]


def _profiled(part: list[dict[str, Any]], records: list[RunRecord]) -> list[tuple[RunRecord, dict[str, Any]]]:
    """The latest profiled run of each row."""
    by_id = {r.run_id: r for r in records}
    out = []
    for row in part:
        runs = [by_id[i] for i in C.txt(row.get("run_ids")).split() if i in by_id]
        runs = [r for r in runs if r.status not in NOT_MEASURED and (r.profile or {}).get("ops")]
        if runs:
            out.append((runs[-1], row))
    return out


def _section_charts(part: list[dict[str, Any]], records: list[RunRecord], section: str) -> list[Plot]:
    from harness.reports import plots

    charts = [plots.latency_distribution(part, _samples(part, records), section)]
    if section == "hardware":  # accuracy is compared on one device at a time
        charts += [plots.accuracy_vs_latency(part, d) for d in dict.fromkeys(r["device"] for r in part)]
    charts += [plots.size_vs_latency(part, section), plots.memory(part, section), plots.seq_len_sweeps(part, section)]
    return [c for c in charts if c]


def render_html(rows: list[dict[str, Any]], records: list[RunRecord]) -> str:
    """The page for build_rows' rows and the records they were built from."""
    from harness.reports import plots

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>harness report</h1><p class='note'>{C.plural(len(records), 'run')} in "
            f"{C.plural(len(rows), 'group')}, generated {now}.</p>"]
    if not records:
        body.append(f"<p>{escape(NO_RUNS)}</p>")
    devices = device_cpus(records)
    if devices:
        body.append("<p class='note'>Devices: " + "; ".join(
            f"{escape(d)} = {escape(' / '.join(cpus))}" for d, cpus in devices.items()) + "</p>")
    if any(r.get("weights") == "random" for r in rows):
        body.append(f"<p class='warn'>{escape(RANDOM_NOTE)}</p>")
    body += [f"<p class='note'>{escape(note)}</p>" for note in ci_notes(rows)]
    charts: list[str] = []

    def add(plot: Plot, full: bool = False) -> str:
        charts.append(plot.title)
        html = plot.html(f"chart-{len(charts)}")
        return html.replace('<figure class="chart"', '<figure class="chart full"', 1) if full else html

    for section, title in (("hardware", "Hardware"), ("emulated", "Emulated")):
        part = [r for r in rows if r.get("section") == section and r.get("status") != "failed"]
        if not part:
            continue
        body.append(f"<h2 id='{section}'>{title}</h2>")
        if section == "emulated":
            body.append(f"<p class='warn'>{escape(EMULATED_NOTE)}.</p>")
        body.append(_summary_table(part, section))
        left = left_out_notes(part)
        if left:
            body.append("<ul class='note'>" + "".join(f"<li>{escape(n)}</li>" for n in left) + "</ul>")
        found = _section_charts(part, records, section)
        body.append("<div class='charts'>" + "".join(add(p, full=p is found[0]) for p in found) + "</div>")
        ops = [plots.op_breakdown(rec, bool(random_weights(rec)), C.model_identity(row))
               for rec, row in _profiled(part, records)]
        if any(ops):
            body.append(f"<h3>Per-op time, {section}</h3><div class='charts'>"
                        + "".join(add(p) for p in ops if p) + "</div>")
    body += [_paper(t, i) for i, t in enumerate(paper_tables(records))]
    failed = [r for r in records if r.status in NOT_MEASURED]
    if failed:
        body.append("<h2 id='failed'>Failed runs</h2>")
        body.append(_plain([("run", True), ("created", True), ("device", True), ("model", True), ("recipe", True),
                            ("error", True)],
                           ([r.run_id, r.created_at, r.device or "", _identity(r), r.recipe or "", r.error or ""]
                            for r in failed), ["failed"] * len(failed), "failed runs"))
    if records:
        body.append("<h2 id='runs'>All runs</h2>")
        body.append(_all_runs(records))
    script = ""
    if charts:
        from plotly.offline import get_plotlyjs

        script = f"<script>{get_plotlyjs()}</script>"  # once per page, before the first chart
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>harness report</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{CSS}</style>{script}</head><body>\n" + "\n".join(body)
        + f"\n<script>{JS}</script>\n</body></html>\n"
    )


def _paper(t: PaperTable, i: int) -> str:
    """One campaign of `harness paper`: its settings, a table per recipe, the verdicts under it."""
    html = [f"<h2 id='paper-{i}'>{escape(t.title())}</h2>", f"<p class='note'>{escape(t.settings())}</p>"]
    for recipe, part in t.recipes.items():
        html.append(f"<h3>{escape(recipe)}</h3>")
        html.append(_plain([(c, c == "model") for c in PAPER_COLUMNS], (cells(r) for r in part["rows"]),
                           ["ok" if r["ms"] is not None else "failed" for r in part["rows"]],
                           f"paper {recipe}"))
        html.append("<ul class='note'>" + "".join(f"<li>{escape(v)}</li>" for v in part["verdicts"]) + "</ul>")
    return "\n".join(html)


def _identity(r: RunRecord) -> str:
    return getattr(r, "model_id", None) or r.model or ""


def _all_runs(records: list[RunRecord]) -> str:
    extra = [k for k in ("campaign", "timing") if any(getattr(r, k, None) for r in records)]
    cols = [("run", True), ("created", True), ("status", True), ("device", True), ("model", True), ("recipe", True),
            ("seq", False), ("runner", True), ("thr", False), *[(k, True) for k in extra], ("p50 ms", False),
            ("flags", True)]
    values = ([r.run_id, r.created_at, r.status, r.device or "", _identity(r), r.recipe or "", C.num(r.seq_len),
               r.runner or "", C.num(r.threads), *[C.txt(getattr(r, k, None)) for k in extra],
               C.fmt_ms(r.latency.p50), ", ".join(r.flags)] for r in records)
    return _plain(cols, values, [r.status for r in records], "all runs")
