"""The report table as terminal-friendly markdown: hardware, emulated and failed runs in their own sections."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from harness.store.record import NOT_MEASURED, RunRecord
from harness.run.stats import MAX_RUN_CV

EMULATED_NOTE = "functional timings only, from an emulator: never ranked or compared with hardware"
SINGLE_RUN_NOTE = ("p50 CI from a single run (runs = 1): it counts that run's noise and drift, not the shifts between "
                   "runs (several percent on a shared machine); measure with `harness run --repeat 3` or more for an "
                   "interval across runs (docs/statistics.md)")
RANDOM_NOTE = "weights=random: untrained (random) weights, so accuracy means nothing; latency and memory are real"


def _num(v: Any, digits: int = 2) -> str:
    if v is None or type(v).__name__ == "NAType" or (isinstance(v, float) and math.isnan(v)):  # pandas.NA too
        return ""
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _txt(v: Any) -> str:
    return "" if _num(v) == "" else str(v)


def fmt_ms(v: Any) -> str:
    """A latency with about 4 significant digits: 0.02571, 6.300, 12.04, 2991.4."""
    if _num(v) == "":
        return ""
    decimals = min(6, max(1, 3 - math.floor(math.log10(abs(v))))) if v else 1
    return f"{v:.{decimals}f}"


def _p50(r: Mapping) -> str:
    if _num(r["p50_ms"]) == "":
        return ""
    ci = f" [{fmt_ms(r['p50_ci_low'])}-{fmt_ms(r['p50_ci_high'])}]" if _num(r["p50_ci_low"]) else ""
    return fmt_ms(r["p50_ms"]) + ci


def _acc(r: Mapping) -> str:
    return f"{r['accuracy_metric']} {_num(r['accuracy'], 4)}" if _num(r["accuracy"]) else ""


def _delta(r: Mapping) -> str:
    d = r["accuracy_delta_vs_fp32"]
    return "" if _num(d) == "" else f"{d:+.4f}"


def _speedup(r: Mapping) -> str:
    return "" if _num(r["speedup_vs_fp32"]) == "" else f"{r['speedup_vs_fp32']:.2f}x"


def _runs(r: Mapping) -> str:
    return f"{r['n_runs']}" + (f" (+{r['n_failed']} failed)" if r["n_failed"] else "")


COLUMNS: list[tuple[str, Callable[[Mapping], str]]] = [
    ("model", lambda r: _txt(r["model"])),
    ("recipe", lambda r: _txt(r["recipe"])),
    ("device", lambda r: _txt(r["device"])),
    ("seq", lambda r: _num(r["seq_len"])),
    ("runner", lambda r: _txt(r["runner"])),
    ("thr", lambda r: _num(r["threads"])),
    ("weights", lambda r: r["weights"]),
    ("p50 ms [95% CI]", _p50),
    ("p90 ms", lambda r: fmt_ms(r["p90_ms"])),
    ("speed-up vs fp32", _speedup),
    ("rank", lambda r: _num(r["rank"])),
    ("program MB", lambda r: _num(r["program_mb"], 3)),
    ("peak RSS MB", lambda r: _num(r["peak_rss_mb"], 1)),
    ("load ms", lambda r: fmt_ms(r["load_ms"])),
    ("1st inf ms", lambda r: fmt_ms(r["first_inference_ms"])),
    ("accuracy", _acc),
    ("Δ vs fp32", _delta),
    ("agree fp32", lambda r: _num(r["agreement_fp32"], 3)),
    ("gate", lambda r: r["accuracy_gate"]),
    ("flags", lambda r: r["flags"]),
    ("status", lambda r: r["status"]),
    ("runs", _runs),
]


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table padded to column width, so it reads in a terminal as well as rendered."""
    cells = [header] + [[c.replace("|", "\\|") for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]])


def render_md(rows: list[dict[str, Any]], records: list[RunRecord]) -> str:
    """rows: harness.results.table.build_rows(records)."""
    out = [f"# harness report: {len(records)} runs, {len(rows)} groups", ""]
    for section, title in (("hardware", "Hardware"), ("emulated", f"Emulated ({EMULATED_NOTE})")):
        part = [r for r in rows if r["section"] == section and r["status"] != "failed"]
        if not part:
            continue
        out += [f"## {title}", "", md_table([c for c, _ in COLUMNS], [[f(r) for _, f in COLUMNS] for r in part]), ""]
    failed = [r for r in records if r.status in NOT_MEASURED]  # interrupted runs too: their error says so
    if failed:
        lines = [[r.run_id, r.device or "", r.model or "", r.recipe or "", (r.error or "").splitlines()[0] if r.error else ""]
                 for r in failed]
        out += ["## Failed runs", "", md_table(["run", "device", "model", "recipe", "error"], lines), ""]
    notes = []
    if any(r["ci_scope"] == "within one run" for r in rows):
        notes.append(SINGLE_RUN_NOTE)
    if any("runs_disagree" in r["flags"] for r in rows):
        notes.append(f"runs_disagree: the runs' medians spread by more than {MAX_RUN_CV:.0%} (CV): the machine changed "
                     "between them; the CI across runs says how much that matters (docs/statistics.md)")
    if any(r["weights"] == "random" for r in rows):
        notes.append(RANDOM_NOTE)
    if any(r["status"] == "invalid" for r in rows):
        notes.append("status=invalid: measured, but a validity flag (too_few_samples, throttled) makes the numbers "
                     "untrustworthy; see docs/statistics.md")
    out += [f"- {n}" for n in notes]
    return "\n".join(out).rstrip() + "\n"
