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

from harness.results import columns as C

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from harness.store.record import RunRecord

Row = Mapping[str, Any]
RANDOM_TITLE = "untrained (random) weights"
BACKEND_COLORS = {"XNNPACK": "#2b7bba", "portable": "#e07b39"}
OTHER_BACKEND = "#888888"
TOP_OPS = 15
MAX_RUN_IDS = 6  # run ids listed in a hover box; the rest are counted
LABELLED = [C.MODEL, C.DEVICE, C.RECIPE, *C.SETTINGS]  # what tells one group from another in a label


@dataclass
class Plot:
    title: str
    caption: str
    figure: "go.Figure"

    def html(self, div_id: str) -> str:
        """The chart as a <figure>; Plotly's JavaScript is NOT included (html.py inlines it once per page)."""
        # no mode bar (it would sit on the legend): dragging zooms, a double-click resets
        div = self.figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                                  config={"displayModeBar": False, "responsive": True})
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


def _layout(fig: "go.Figure", title: str, xtitle: str, ytitle: str, height: int = 420, **kw) -> None:
    # the title is the page's <h4> above the chart (it wraps; in the chart it would run under the mode bar); the
    # legend sits above the plot, clear of the axis title whatever the chart's height
    fig.update_layout(height=height, template="plotly_white", margin={"l": 60, "r": 20, "t": 36, "b": 50},
                      hoverlabel={"align": "left"}, meta={"title": title},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "font": {"size": 11}},
                      **kw)
    fig.update_xaxes(title_text=xtitle)
    fig.update_yaxes(title_text=ytitle)


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
    import plotly.graph_objects as go

    pairs = [(r, s) for r, s in zip(rows, samples) if len(s)]
    if not pairs:
        return None
    rows = [r for r, _ in pairs]
    names, shared = labels(rows)
    fig = go.Figure()
    stats = [box_stats(s) for _, s in pairs]
    for name, st in zip(names, stats):
        fig.add_trace(go.Box(y=[name], q1=[st["q1"]], median=[st["median"]], q3=[st["q3"]], mean=[st["mean"]],
                             lowerfence=[st["lowerfence"]], upperfence=[st["upperfence"]], orientation="h",
                             name=name, marker_color="#2b7bba", showlegend=False, hoverinfo="x"))
        if len(st["outliers"]):
            out = st["outliers"][:: max(1, len(st["outliers"]) // 200)]  # at most ~200 drawn per group
            fig.add_trace(go.Scatter(x=out, y=[name] * len(out), mode="markers", showlegend=False,
                                     marker={"size": 3, "color": "#2b7bba", "opacity": 0.5},
                                     hovertemplate="%{x:.4g} ms<extra>outlier</extra>"))
    fig.add_trace(go.Scatter(x=[st["median"] for st in stats], y=names, mode="markers", name="median (hover: runs)",
                             marker={"symbol": "diamond", "size": 9, "color": "#d62728"},
                             hovertext=[hover(r) + f"<br>{st['n']} samples" for r, st in zip(rows, stats)],
                             hovertemplate="%{hovertext}<extra></extra>"))
    title = f"Latency distribution, {section}" + random_suffix(rows)
    _layout(fig, title, "latency per inference (ms)", "", height=max(260, 120 + 34 * len(rows)),
            xaxis_type=_log_if_wide([st["lowerfence"] for st in stats] + [st["upperfence"] for st in stats]),
            yaxis={"autorange": "reversed", "automargin": True})
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


def _scatter(fig: "go.Figure", rows: Sequence[Row], x: str, y: str, error_y: bool = False) -> None:
    """One trace per series (the rows' distinguishing settings but seq_len/runner/threads), hover on every point."""
    import plotly.graph_objects as go

    names, _ = labels(rows)
    series: dict[tuple[str, bool], list[tuple[Row, str]]] = {}
    for r, name in zip(rows, names):
        series.setdefault((_series(r, rows), is_random(r)), []).append((r, name))
    for (name, random), pts in series.items():
        err = None
        if error_y:
            err = {"type": "data", "symmetric": False, "thickness": 1, "width": 3,
                   "array": [(_f(r.get("p50_ci_high")) or _f(r[y])) - _f(r[y]) for r, _ in pts],
                   "arrayminus": [_f(r[y]) - (_f(r.get("p50_ci_low")) or _f(r[y])) for r, _ in pts]}
        fig.add_trace(go.Scatter(
            x=[_f(r[x]) for r, _ in pts], y=[_f(r[y]) for r, _ in pts], mode="markers", error_y=err,
            name=name + (" ×random weights" if random and len({is_random(r) for r in rows}) > 1 else ""),
            marker={"size": 10, "symbol": "x" if random and any(not is_random(r) for r in rows) else "circle"},
            hovertext=[hover(r) for r, _ in pts], hovertemplate="%{hovertext}<extra></extra>"))


def _series(r: Row, rows: Sequence[Row]) -> str:
    cols = [c for c in (C.MODEL, C.DEVICE, C.RECIPE, C.SETTINGS[0]) if c is C.RECIPE
            or len({c.cell(o) for o in rows}) > 1]
    return " ".join(c.cell(r) for c in cols if c.cell(r))


def accuracy_vs_latency(rows: Sequence[Row], device: str) -> Plot | None:
    """Task accuracy vs p50 on one device, the Pareto front drawn; top-1 agreement with fp32 eager when no group
    has a task accuracy."""
    import plotly.graph_objects as go

    part = [r for r in rows if r.get("device") == device and _f(r.get("p50_ms")) is not None]
    y, label = "accuracy", None
    if all(_f(r.get("accuracy")) is None for r in part):
        y, label = "agreement_fp32", "top-1 agreement with fp32 eager"
    part = [r for r in part if _f(r.get(y)) is not None]
    if not part:
        return None
    fig = go.Figure()
    front = pareto_front([(_f(r["p50_ms"]), _f(r[y])) for r in part])
    fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", name="Pareto front",
                             line={"shape": "hv", "color": "#d62728", "width": 2}, hoverinfo="skip"))
    _scatter(fig, part, "p50_ms", y)
    metrics = {C.txt(r.get("accuracy_metric")) for r in part} - {""}
    title = f"{'Agreement' if label else 'Accuracy'} vs latency on {device}" + random_suffix(part)
    _layout(fig, title, "p50 latency (ms)", label or (metrics.pop() if len(metrics) == 1 else "accuracy"),
            xaxis_type=_log_if_wide([_f(r["p50_ms"]) for r in part]))
    return Plot(title, "Up and to the left is better; the red line joins the programs nothing else beats on both.",
                fig)


def size_vs_latency(rows: Sequence[Row], section: str) -> Plot | None:
    """p50 (with its 95% CI) against program size, one point per group."""
    import plotly.graph_objects as go

    part = [r for r in rows if _f(r.get("program_mb")) is not None and _f(r.get("p50_ms")) is not None]
    if not part:
        return None
    fig = go.Figure()
    _scatter(fig, part, "program_mb", "p50_ms", error_y=True)
    title = f"Program size vs latency, {section}" + random_suffix(part)
    log = _log_if_wide([_f(r["p50_ms"]) for r in part])
    _layout(fig, title, "program size (MB)", "p50 latency (ms)", yaxis_type=log)
    return Plot(title, "One point per group, bars: 95% CI of p50" + ("; latency axis logarithmic." if log == "log"
                                                                      else "."), fig)


def memory(rows: Sequence[Row], section: str) -> Plot | None:
    """Peak RSS against program size, with the line where they are equal."""
    import plotly.graph_objects as go

    part = [r for r in rows if _f(r.get("program_mb")) is not None and _f(r.get("peak_rss_mb")) is not None]
    if not part:
        return None
    fig = go.Figure()
    top = max(_f(r["program_mb"]) for r in part) * 1.1  # the line spans the sizes only: the points set the scale
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="RSS = program size",
                             line={"dash": "dot", "color": "#999999"}, hoverinfo="skip"))
    _scatter(fig, part, "program_mb", "peak_rss_mb")
    methods = sorted({C.txt(r.get("rss_method")) for r in part} - {""})
    title = f"Memory: peak RSS vs program size, {section}" + random_suffix(part)
    _layout(fig, title, "program size (MB)", "peak RSS (MB)")
    return Plot(title, "One point per group (median of its runs). Measured as: " + ("; ".join(methods) or "unknown")
                + ". Points under the dotted line map less than the whole program.", fig)


def seq_len_sweeps(rows: Sequence[Row], section: str) -> Plot | None:
    """p50 against seq_len for groups that differ only in seq_len (a sweep): one line per sweep."""
    import plotly.graph_objects as go

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
    fig = go.Figure()
    for name, pts in zip(names, sweeps.values()):
        fig.add_trace(go.Scatter(
            x=[_f(r["seq_len"]) for r in pts], y=[_f(r["p50_ms"]) for r in pts], mode="lines+markers", name=name,
            error_y={"type": "data", "symmetric": False, "thickness": 1, "width": 3,
                     "array": [(_f(r.get("p50_ci_high")) or _f(r["p50_ms"])) - _f(r["p50_ms"]) for r in pts],
                     "arrayminus": [_f(r["p50_ms"]) - (_f(r.get("p50_ci_low")) or _f(r["p50_ms"])) for r in pts]},
            hovertext=[hover(r) for r in pts], hovertemplate="%{hovertext}<extra></extra>"))
    part = [r for v in sweeps.values() for r in v]
    title = f"Latency vs seq_len, {section}" + random_suffix(part)
    _layout(fig, title, "seq_len (tokens)", "p50 latency (ms)", yaxis_type=_log_if_wide([_f(r["p50_ms"]) for r in part]))
    return Plot(title, "Groups that differ only in seq_len, bars: 95% CI of p50." + (f" All: {shared}." if shared
                                                                                       else ""), fig)


def op_breakdown(record: "RunRecord", random: bool, identity: str) -> Plot | None:
    """Time per operator of one profiled run (record.profile = {"ops": [{"name", "ms", "backend"}]}), coloured by
    the backend that ran it."""
    import plotly.graph_objects as go

    ops = [o for o in (record.profile or {}).get("ops") or [] if isinstance(o, dict)
           and isinstance(o.get("ms"), (int, float)) and not isinstance(o.get("ms"), bool)]
    if not ops:
        return None
    ops = sorted(ops, key=lambda o: o["ms"], reverse=True)
    total = sum(o["ms"] for o in ops)
    shown = ops[:TOP_OPS]
    fig = go.Figure()
    for backend in dict.fromkeys(str(o.get("backend") or "other") for o in shown):
        mine = [o for o in shown if str(o.get("backend") or "other") == backend]
        fig.add_trace(go.Bar(
            y=[f"{i}. {o.get('name')}" for i, o in enumerate(shown, 1) if o in mine], x=[o["ms"] for o in mine],
            orientation="h", name=backend, marker_color=BACKEND_COLORS.get(backend, OTHER_BACKEND),
            customdata=[[100 * o["ms"] / total if total else 0] for o in mine],
            hovertemplate="%{y}<br>%{x:.4g} ms per inference (%{customdata[0]:.1f}%)<extra>" + escape(backend)
                          + "</extra>"))
    title = (f"Per-op time, {identity} {record.recipe} on {record.device} (run {record.run_id})"
             + (f" ({RANDOM_TITLE})" if random else ""))
    _layout(fig, title, "ms per inference", "", height=140 + 26 * len(shown),
            yaxis={"autorange": "reversed", "automargin": True, "tickfont": {"size": 10},
                   "categoryorder": "array", "categoryarray": [f"{i}. {o.get('name')}" for i, o in
                                                               enumerate(shown, 1)]})
    caption = f"Top {len(shown)} of {len(ops)} ops, {total:.2f} ms in all (profiled run: includes ETDump overhead)."
    return Plot(title, caption, fig)
