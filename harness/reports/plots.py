"""The report's figures as interactive Plotly charts: latency distributions, accuracy vs latency with the Pareto
line, size vs latency, memory, latency against seq_len for sweeps, and per-op time of profiled runs.

Every chart takes the rows of ONE section (hardware or emulated: never both on one axis). Points carry no printed
labels (they overlap when crowded): hovering a point shows its group's model identity, settings, flags and run ids,
and the legend names the series. A chart drawn from any untrained (random) weight program says so in its title.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from harness.reports import columns as C

if TYPE_CHECKING:
    from harness.store.record import RunRecord

Row = Mapping[str, Any]
RANDOM_TITLE = "untrained (random) weights"
BACKEND_COLORS = {"XNNPACK": "#2b7bba", "portable": "#e07b39"}
OTHER_BACKEND = "#888888"
# one colour per recipe on every chart of the page; one marker shape per model when several share a chart
RECIPE_COLORS = {"fp32": "#1f77b4", "fp16": "#9467bd", "int8": "#ff7f0e", "int8-static": "#8c564b", "int4": "#2ca02c"}
PALETTE = ["#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#d62728"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "star", "hexagon"]
TOP_OPS = 15
MAX_RUN_IDS = 6  # run ids listed in a hover box; the rest are counted
LABELLED = [C.MODEL, C.DEVICE, C.RECIPE, *C.SETTINGS]  # what tells one group from another in a label


AXIS = {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "linecolor": "#c8d4e3", "automargin": True}


class Fig:
    """A Plotly figure as the plain dict plotly.js reads: built without plotly's per-property validation, which
    costs seconds for a report of a few hundred groups."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}

    def add(self, kind: str, **trace: Any) -> None:
        self.data.append({"type": kind, **trace})


@dataclass
class Plot:
    title: str
    caption: str
    figure: Fig

    def html(self, div_id: str) -> str:
        """The chart as a <figure>; Plotly's JavaScript is NOT included (html.py inlines it once per page)."""
        import plotly.io as pio

        # no mode bar (it would sit on the legend): dragging zooms, a double-click resets
        div = pio.to_html({"data": self.figure.data, "layout": self.figure.layout}, validate=False, full_html=False,
                          include_plotlyjs=False, div_id=div_id, config={"displayModeBar": False, "responsive": True})
        return (f'<figure class="chart"><h4>{escape(self.title)}</h4>{div}'
                f"<figcaption>{escape(self.caption)}</figcaption></figure>")


def _f(v: Any) -> float | None:
    return None if C.missing(v) else float(v)


def is_random(r: Row) -> bool:
    return r.get("weights") == "random"


def random_suffix(rows: Sequence[Row]) -> str:
    """What a title says about untrained weights: nothing, all of them, or which points."""
    n = sum(map(is_random, rows))
    if not n:
        return ""
    return f" ({RANDOM_TITLE})" if n == len(rows) else f" (points marked × have {RANDOM_TITLE})"


def labels(rows: Sequence[Row]) -> tuple[list[str], str]:
    """Per row, the settings that tell it from the others (recipe always); and what they all share, for a caption."""
    varying = [c for c in LABELLED if c is C.RECIPE or len({c.cell(r) for r in rows}) > 1]
    _, shared = C.shared_settings([c for c in LABELLED if c not in varying], rows)
    names = [" ".join(_label_part(c, r) for c in varying if c.cell(r)) for r in rows]
    return names, ", ".join(f"{k} {v}" for k, v in shared)


def _label_part(c: C.Column, r: Row) -> str:
    return {"seq_len": "s", "threads": "t"}.get(c.setting, "") + c.cell(r)


def hover(r: Row) -> str:
    """A group's hover box: model identity and weights, settings, p50, flags, run ids."""
    ids = C.txt(r.get("run_ids")).split()
    shown = ", ".join(ids[:MAX_RUN_IDS]) + (f" and {len(ids) - MAX_RUN_IDS} more" if len(ids) > MAX_RUN_IDS else "")
    lines = [f"<b>{escape(C.model_identity(r))}</b>" + (f" ({RANDOM_TITLE})" if is_random(r) else ""),
             escape(" · ".join(f"{c.setting or c.header} {c.cell(r)}" for c in [C.RECIPE, C.DEVICE, *C.SETTINGS]
                               if c.cell(r))),
             f"p50 {escape(C.p50_ci(r))} ms" + (f" · {escape(C.speedup(r))} vs fp32" if C.speedup(r) else ""),
             f"status {escape(C.status_flags(r))}",
             f"runs ({len(ids)}): {escape(shown)}"]
    return "<br>".join(lines)


def _layout(fig: Fig, title: str, xtitle: str, ytitle: str, height: int = 420, xaxis: dict | None = None,
            yaxis: dict | None = None) -> None:
    # the title is the page's <h4> above the chart (it wraps; in the chart it would run under the mode bar); the
    # legend sits above the plot, clear of the axis title whatever the chart's height
    fig.layout = {"height": height, "paper_bgcolor": "white", "plot_bgcolor": "white", "meta": {"title": title},
                  "margin": {"l": 60, "r": 20, "t": 36, "b": 50}, "hoverlabel": {"align": "left"},
                  "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "font": {"size": 11}},
                  "xaxis": {**AXIS, "title": {"text": xtitle}, **(xaxis or {})},
                  "yaxis": {**AXIS, "title": {"text": ytitle}, **(yaxis or {})}}


def _log_if_wide(values: Sequence[float]) -> str:
    vals = [v for v in values if v and v > 0]
    return "log" if vals and max(vals) / min(vals) > 20 else "linear"


def box_stats(samples: Sequence[float]) -> dict[str, float]:
    """Quartiles, median, mean and 1.5-IQR whiskers (clamped to the data) of one group's raw samples."""
    import numpy as np

    x = np.asarray(samples, dtype=float)
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    lo = x[x >= q1 - 1.5 * (q3 - q1)].min()
    hi = x[x <= q3 + 1.5 * (q3 - q1)].max()
    return {"q1": q1, "median": med, "q3": q3, "lowerfence": lo, "upperfence": hi, "mean": x.mean(),
            "n": len(x), "outliers": x[(x < lo) | (x > hi)]}


def latency_distribution(rows: Sequence[Row], samples: Sequence[Sequence[float]], section: str) -> Plot | None:
    """One box per group from its pooled raw per-iteration samples (box statistics computed here, so a store of
    thousands of runs makes a small page); a diamond at the median carries the group's hover box."""
    pairs = [(r, s) for r, s in zip(rows, samples) if len(s)]
    if not pairs:
        return None
    rows = [r for r, _ in pairs]
    names, shared = labels(rows)
    fig = Fig()
    stats = [box_stats(s) for _, s in pairs]
    fig.add("box", y=names, orientation="h", marker={"color": "#2b7bba"}, showlegend=False, hoverinfo="x",
            **{k: [st[k] for st in stats] for k in ("q1", "median", "q3", "mean", "lowerfence", "upperfence")})
    outliers = [(x, name) for name, st in zip(names, stats)
                for x in st["outliers"][:: max(1, len(st["outliers"]) // 200)]]  # at most ~200 drawn per group
    if outliers:
        fig.add("scatter", x=[float(x) for x, _ in outliers], y=[n for _, n in outliers], mode="markers",
                showlegend=False, marker={"size": 3, "color": "#2b7bba", "opacity": 0.5},
                hovertemplate="%{x:.4g} ms<extra>outlier</extra>")
    fig.add("scatter", x=[float(st["median"]) for st in stats], y=names, mode="markers", name="median (hover: runs)",
            marker={"symbol": "diamond", "size": 9, "color": "#d62728"},
            hovertext=[hover(r) + f"<br>{st['n']} samples" for r, st in zip(rows, stats)],
            hovertemplate="%{hovertext}<extra></extra>")
    title = f"Latency distribution, {section}" + random_suffix(rows)
    _layout(fig, title, "latency per inference (ms)", "", height=max(260, 120 + 34 * len(rows)),
            xaxis={"type": _log_if_wide([st["lowerfence"] for st in stats] + [st["upperfence"] for st in stats])},
            yaxis={"autorange": "reversed"})
    caption = ("Boxes: quartiles and median of every timed iteration of the group's valid runs; whiskers 1.5 IQR; "
               "dots beyond them are outliers.") + (f" All groups: {shared}." if shared else "")
    if section == "emulated":
        caption += " Emulated: functional timings only, not comparable with hardware."
    return Plot(title, caption, fig)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, accuracy) points no other point beats on both: lower latency and higher accuracy."""
    front, best = [], -math.inf
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((lat, acc))
            best = acc
    return front


def _ci_bars(pts: Sequence[Row], y: str) -> dict[str, Any]:
    """Error bars from each group's 95% CI of p50."""
    return {"type": "data", "symmetric": False, "thickness": 1, "width": 3,
            "array": [(_f(r.get("p50_ci_high")) or _f(r[y])) - _f(r[y]) for r in pts],
            "arrayminus": [_f(r[y]) - (_f(r.get("p50_ci_low")) or _f(r[y])) for r in pts]}


def recipe_color(recipe: str) -> str:
    return RECIPE_COLORS.get(recipe) or PALETTE[sum(map(ord, recipe)) % len(PALETTE)]


def _scatter(fig: Fig, rows: Sequence[Row], x: str, y: str, error_y: bool = False) -> None:
    """One trace per series (the settings that tell rows apart, but seq_len/runner/threads), hover on every point;
    random-weight points are crosses when trained ones share the chart."""
    cols, series = _series_columns(rows), {}
    for r in rows:
        series.setdefault((" ".join(c.cell(r) for c in cols if c.cell(r)), is_random(r)), []).append(r)
    mixed = len({is_random(r) for r in rows}) > 1
    models = list(dict.fromkeys(map(C.model_identity, rows)))
    for (name, random), pts in series.items():
        symbol = "x" if random and mixed else SYMBOLS[models.index(C.model_identity(pts[0])) % len(SYMBOLS)]
        fig.add("scatter", x=[_f(r[x]) for r in pts], y=[_f(r[y]) for r in pts], mode="markers",
                name=name + (" ×random weights" if random and mixed else ""),
                marker={"size": 10, "symbol": symbol, "color": recipe_color(C.txt(pts[0].get("recipe")))},
                hovertext=[hover(r) for r in pts], hovertemplate="%{hovertext}<extra></extra>",
                **({"error_y": _ci_bars(pts, y)} if error_y else {}))


def _series_columns(rows: Sequence[Row]) -> list[C.Column]:
    """What names a series: recipe, and model, device and recipe options where they vary."""
    return [c for c in (C.MODEL, C.DEVICE, C.RECIPE, C.SETTINGS[0]) if c is C.RECIPE
            or len({c.cell(o) for o in rows}) > 1]


def accuracy_vs_latency(rows: Sequence[Row], device: str) -> Plot | None:
    """Task accuracy vs p50 on one device, the Pareto front drawn; top-1 agreement with fp32 eager when no group
    has a task accuracy."""
    part = [r for r in rows if r.get("device") == device and _f(r.get("p50_ms")) is not None]
    y, label = "accuracy", None
    if all(_f(r.get("accuracy")) is None for r in part):
        y, label = "agreement_fp32", "top-1 agreement with fp32 eager"
    part = [r for r in part if _f(r.get(y)) is not None]
    if not part:
        return None
    fig = Fig()
    front = pareto_front([(_f(r["p50_ms"]), _f(r[y])) for r in part])
    fig.add("scatter", x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", name="Pareto front",
            line={"shape": "hv", "color": "#d62728", "width": 2}, hoverinfo="skip")
    _scatter(fig, part, "p50_ms", y)
    metrics = {C.txt(r.get("accuracy_metric")) for r in part} - {""}
    title = f"{'Agreement' if label else 'Accuracy'} vs latency on {device}" + random_suffix(part)
    _layout(fig, title, "p50 latency (ms)", label or (metrics.pop() if len(metrics) == 1 else "accuracy"),
            xaxis={"type": _log_if_wide([_f(r["p50_ms"]) for r in part])})
    return Plot(title, "Up and to the left is better; the red line joins the programs nothing else beats on both.",
                fig)


def size_vs_latency(rows: Sequence[Row], section: str) -> Plot | None:
    """p50 (with its 95% CI) against program size, one point per group."""
    part = [r for r in rows if _f(r.get("program_mb")) is not None and _f(r.get("p50_ms")) is not None]
    if not part:
        return None
    fig = Fig()
    _scatter(fig, part, "program_mb", "p50_ms", error_y=True)
    title = f"Program size vs latency, {section}" + random_suffix(part)
    log = _log_if_wide([_f(r["p50_ms"]) for r in part])
    _layout(fig, title, "program size (MB)", "p50 latency (ms)", yaxis={"type": log})
    return Plot(title, "One point per group, bars: 95% CI of p50" + ("; latency axis logarithmic." if log == "log"
                                                                      else "."), fig)


def memory(rows: Sequence[Row], section: str) -> Plot | None:
    """Peak RSS against program size, with the line where they are equal."""
    part = [r for r in rows if _f(r.get("program_mb")) is not None and _f(r.get("peak_rss_mb")) is not None]
    if not part:
        return None
    fig = Fig()
    top = max(_f(r["program_mb"]) for r in part) * 1.1  # the line spans the sizes only: the points set the scale
    fig.add("scatter", x=[0, top], y=[0, top], mode="lines", name="RSS = program size",
            line={"dash": "dot", "color": "#999999"}, hoverinfo="skip")
    _scatter(fig, part, "program_mb", "peak_rss_mb")
    methods = sorted({C.txt(r.get("rss_method")) for r in part} - {""})
    title = f"Memory: peak RSS vs program size, {section}" + random_suffix(part)
    _layout(fig, title, "program size (MB)", "peak RSS (MB)")
    return Plot(title, "One point per group (median of its runs). Measured as: " + ("; ".join(methods) or "unknown")
                + ". Points under the dotted line map less than the whole program.", fig)


def seq_len_sweeps(rows: Sequence[Row], section: str) -> Plot | None:
    """p50 against seq_len for groups that differ only in seq_len (a sweep): one line per sweep."""
    others = [c for c in LABELLED if c.setting != "seq_len"] + [C.WEIGHTS]
    sweeps: dict[tuple, list[Row]] = {}
    for r in rows:
        if _f(r.get("p50_ms")) is not None and _f(r.get("seq_len")) is not None:
            sweeps.setdefault(tuple(c.cell(r) for c in others), []).append(r)
    sweeps = {k: sorted(v, key=lambda r: r["seq_len"]) for k, v in sweeps.items()
              if len({r["seq_len"] for r in v}) >= 2}
    if not sweeps:
        return None
    names, shared = labels([{**v[0], "seq_len": None} for v in sweeps.values()])  # seq_len is the x axis
    fig = Fig()
    for name, pts in zip(names, sweeps.values()):
        fig.add("scatter", x=[_f(r["seq_len"]) for r in pts], y=[_f(r["p50_ms"]) for r in pts], mode="lines+markers",
                name=name, error_y=_ci_bars(pts, "p50_ms"), line={"color": recipe_color(C.txt(pts[0].get("recipe")))},
                hovertext=[hover(r) for r in pts],
                hovertemplate="%{hovertext}<extra></extra>")
    part = [r for v in sweeps.values() for r in v]
    title = f"Latency vs seq_len, {section}" + random_suffix(part)
    _layout(fig, title, "seq_len (tokens)", "p50 latency (ms)",
            yaxis={"type": _log_if_wide([_f(r["p50_ms"]) for r in part])})
    return Plot(title, "Groups that differ only in seq_len, bars: 95% CI of p50." + (f" All: {shared}." if shared
                                                                                       else ""), fig)


def op_breakdown(record: "RunRecord", random: bool, identity: str) -> Plot | None:
    """Time per operator of one profiled run (record.profile = {"ops": [{"name", "ms", "backend"}]}), coloured by
    the backend that ran it."""
    ops = [o for o in (record.profile or {}).get("ops") or [] if isinstance(o, dict)
           and isinstance(o.get("ms"), (int, float)) and not isinstance(o.get("ms"), bool)]
    if not ops:
        return None
    ops = sorted(ops, key=lambda o: o["ms"], reverse=True)
    total = sum(o["ms"] for o in ops)
    shown = ops[:TOP_OPS]
    fig = Fig()
    for backend in dict.fromkeys(str(o.get("backend") or "other") for o in shown):
        mine = [o for o in shown if str(o.get("backend") or "other") == backend]
        fig.add("bar", y=[f"{i}. {o.get('name')}" for i, o in enumerate(shown, 1) if o in mine],
                x=[o["ms"] for o in mine], orientation="h", name=backend,
                marker={"color": BACKEND_COLORS.get(backend, OTHER_BACKEND)},
                customdata=[[100 * o["ms"] / total if total else 0] for o in mine],
                hovertemplate=f"%{{y}}<br>%{{x:.4g}} ms per inference (%{{customdata[0]:.1f}}%)<extra>{escape(backend)}"
                              "</extra>")
    title = (f"Per-op time, {identity} {record.recipe} on {record.device} (run {record.run_id})"
             + (f" ({RANDOM_TITLE})" if random else ""))
    _layout(fig, title, "ms per inference", "", height=140 + 26 * len(shown),
            yaxis={"autorange": "reversed", "tickfont": {"size": 10}, "categoryorder": "array",
                   "categoryarray": [f"{i}. {o.get('name')}" for i, o in enumerate(shown, 1)]})
    caption = f"Top {len(shown)} of {len(ops)} ops, {total:.2f} ms in all (profiled run: includes ETDump overhead)."
    return Plot(title, caption, fig)
