"""Report figures as inline PNG (matplotlib, no pyplot state): latency distributions, Pareto, size, per-op time.

Every figure built from a random-weight program says "untrained (random) weights" in its title.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import pandas as pd
from matplotlib import __version__ as mpl_version
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from harness.store.record import RunRecord
from harness.results.grouping import Group, random_weights

RANDOM_TITLE = "untrained (random) weights"
BACKEND_COLORS = {"XNNPACK": "#2b7bba", "portable": "#e07b39"}
TOP_OPS = 15
# matplotlib 3.10 renamed vert=False (deprecated since) to orientation=; pyproject allows >= 3.8
HORIZONTAL = {"orientation": "horizontal"} if tuple(map(int, mpl_version.split(".")[:2])) >= (3, 10) else {"vert": False}


@dataclass
class Plot:
    title: str
    caption: str
    png_b64: str

    def html(self) -> str:
        from html import escape

        return (f'<figure><img alt="{escape(self.title)}" src="data:image/png;base64,{self.png_b64}">'
                f"<figcaption>{escape(self.caption)}</figcaption></figure>")


def _title(text: str, random: bool) -> str:
    return f"{text} ({RANDOM_TITLE})" if random else text


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def latency_distribution(groups: list[Group], section: str) -> Plot | None:
    """Box plot of every group's pooled per-iteration latencies."""
    groups = [g for g in groups if g.samples]
    if not groups:
        return None
    random = any(g.random_weights for g in groups)
    fig = Figure(figsize=(9, 1.2 + 0.45 * len(groups)))
    ax = fig.add_subplot()
    ax.boxplot([g.samples for g in groups], showfliers=True, flierprops={"markersize": 2}, **HORIZONTAL)
    ax.set_yticks(range(1, len(groups) + 1), [g.label for g in groups], fontsize=8)
    ax.set_xlabel("latency per inference (ms)")
    lo, hi = min(min(g.samples) for g in groups), max(max(g.samples) for g in groups)
    if lo > 0 and hi / lo > 20:  # one stall or a 10x recipe gap would squash every box into a line
        ax.set_xscale("log")
        ax.set_xlabel("latency per inference (ms, log scale)")
    title = _title(f"Latency distribution, {section}", random)
    ax.set_title(title, fontsize=10)
    caption = "Boxes: quartiles and median of every timed iteration of the group's valid runs; whiskers 1.5 IQR."
    if section == "emulated":
        caption += " Emulated: functional timings only, not comparable with hardware."
    return Plot(title, caption, _png(fig))


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, accuracy) points no other point beats on both: lower latency and higher accuracy."""
    front, best = [], -math.inf
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((lat, acc))
            best = acc
    return front


def accuracy_vs_latency(df: pd.DataFrame, device: str) -> Plot | None:
    """Task accuracy vs p50 on one device; top-1 agreement with fp32 eager when no group has a task accuracy."""
    part = df[(df["device"] == device) & df["p50_ms"].notna()]
    y, label = "accuracy", None
    if part["accuracy"].isna().all():
        y, label = "agreement_fp32", "top-1 agreement with fp32 eager"
    part = part[part[y].notna()]
    if part.empty:
        return None
    random = (part["weights"] == "random").any()
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ax.scatter(part["p50_ms"], part[y], color="#2b7bba", zorder=3)
    for _, r in part.iterrows():
        ax.annotate(f"{r['recipe']} s{r['seq_len']} {r['runner']}", (r["p50_ms"], r[y]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    front = pareto_front(list(zip(part["p50_ms"], part[y])))
    ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="#d62728", label="Pareto front")
    ax.scatter([p[0] for p in front], [p[1] for p in front], s=90, facecolors="none", edgecolors="#d62728")
    ax.set_xlabel("p50 latency (ms)")
    ax.set_ylabel(label or str(part["accuracy_metric"].iloc[0]) or "accuracy")
    ax.legend(fontsize=8)
    title = _title(f"{'Agreement' if label else 'Accuracy'} vs latency on {device}", random)
    ax.set_title(title, fontsize=10)
    return Plot(title, "Up and to the left is better; red marks the programs nothing else beats on both.",
                _png(fig))


def size_vs_latency(df: pd.DataFrame, section: str) -> Plot | None:
    part = df[df["program_mb"].notna() & df["p50_ms"].notna()]
    if part.empty:
        return None
    random = (part["weights"] == "random").any()
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for device, sub in part.groupby("device"):
        ax.scatter(sub["program_mb"], sub["p50_ms"], label=str(device), zorder=3)
        for _, r in sub.iterrows():
            ax.annotate(f"{r['recipe']} {r['runner']}", (r["program_mb"], r["p50_ms"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("program size (MB, 10^6 bytes)")
    ax.set_ylabel("p50 latency (ms)")
    log = part["p50_ms"].max() / part["p50_ms"].min() > 20
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    title = _title(f"Program size vs latency, {section}", random)
    ax.set_title(title, fontsize=10)
    return Plot(title, "One point per group" + ("; the latency axis is logarithmic." if log else "."), _png(fig))


def op_breakdown(record: RunRecord) -> Plot | None:
    """Time per operator of one profiled run, coloured by the backend that ran it."""
    ops = [o for o in (record.profile or {}).get("ops") or [] if isinstance(o, dict)
           and isinstance(o.get("ms"), (int, float))]
    if not ops:
        return None
    ops = sorted(ops, key=lambda o: o["ms"], reverse=True)
    total = sum(o["ms"] for o in ops)
    shown = ops[:TOP_OPS][::-1]
    fig = Figure(figsize=(8, 1.2 + 0.3 * len(shown)))
    ax = fig.add_subplot()
    ax.barh([str(o.get("name")) for o in shown], [o["ms"] for o in shown],
            color=[BACKEND_COLORS.get(o.get("backend"), "#888888") for o in shown])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("ms per inference")
    ax.legend(handles=[Patch(color=c, label=b) for b, c in BACKEND_COLORS.items()], fontsize=8, loc="lower right")
    title = _title(f"Per-op time, {record.model} {record.recipe} on {record.device} (run {record.run_id})",
                   bool(random_weights(record)))
    ax.set_title(title, fontsize=9)
    caption = f"Top {len(shown)} of {len(ops)} ops, {total:.2f} ms in all (profiled run: includes ETDump overhead)."
    return Plot(title, caption, _png(fig))
