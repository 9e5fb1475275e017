"""The report's columns, shared by the markdown and HTML tables: header, cell text, and which ones a group shares.

Rows are harness.reports.table.build_rows dicts (None, "" and NaN read as missing). Columns
are read by name and may be missing from a row (`model_id`, `campaign`, `timing`, `affinity`, `recipe_options`
arrive with the store's next schema): a column no row has is left out.

A *setting* column (model identity, weights, device, seq_len, runner, threads, ...) is part of the group key: when
every row of a table shares its value the table says it once above itself (`shared_settings`) instead of repeating
it in a column, which is what lets the compact markdown fit 100 characters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

Row = Mapping[str, Any]


def missing(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, float) and math.isnan(v))


def num(v: Any, digits: int = 2) -> str:
    if missing(v):
        return ""
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def txt(v: Any) -> str:
    return "" if missing(v) else str(v)


def fmt_ms(v: Any) -> str:
    """A latency with about 4 significant digits: 0.02571, 6.300, 12.04, 2991.4."""
    if missing(v):
        return ""
    decimals = min(6, max(1, 3 - math.floor(math.log10(abs(v))))) if v else 1
    return f"{v:.{decimals}f}"


def fmt_mb(v: Any) -> str:
    """A size in MB, short: 0.352, 7.00, 36.0, 100.5, 1204."""
    if missing(v):
        return ""
    v = float(v)
    return f"{v:.{0 if v >= 999.95 else 1 if v >= 9.995 else 2 if v >= 0.9995 else 3}f}"


def model_identity(r: Row) -> str:
    """The model as the report names it: the store's model_id (preset, or checkpoint folder + short sha256)."""
    return txt(r.get("model_id")) or txt(r.get("model"))


def p50_ci(r: Row) -> str:
    if missing(r.get("p50_ms")):
        return ""
    ci = f" [{fmt_ms(r.get('p50_ci_low'))}-{fmt_ms(r.get('p50_ci_high'))}]" if not missing(r.get("p50_ci_low")) else ""
    return fmt_ms(r["p50_ms"]) + ci


def speedup(r: Row) -> str:
    return "" if missing(r.get("speedup_vs_fp32")) else f"{r['speedup_vs_fp32']:.2f}x"


def accuracy(r: Row, digits: int = 4) -> str:
    if missing(r.get("accuracy")):
        return ""
    return f"{txt(r.get('accuracy_metric')) or 'accuracy'} {r['accuracy']:.{digits}f}"


def delta(r: Row, digits: int = 4) -> str:
    d = r.get("accuracy_delta_vs_fp32")
    return "" if missing(d) else f"{d:+.{digits}f}"


def runs(r: Row) -> str:
    failed = r.get("n_failed")
    return num(r.get("n_runs")) + (f" (+{failed} failed)" if not missing(failed) and failed else "")


def _flags(r: Row) -> list[str]:
    flags = [f.strip() for f in txt(r.get("flags")).split(",") if f.strip()]
    if r.get("section") == "emulated":  # goes without saying there
        flags = [f for f in flags if f != "emulated"]
    return flags + (["gate_fail"] if r.get("accuracy_gate") == "fail" else [])


# the compact table's names for the flags (its notes say what each one shown means)
SHORT_FLAGS = {"high_cv": "noisy", "runs_disagree": "disagree", "too_few_samples": "few", "gate_fail": "gate-fail"}


def status_flags(r: Row) -> str:
    """Status with its flags in one cell: "ok", "ok: high_cv", "invalid: throttled" (a failed accuracy gate too)."""
    flags, status = _flags(r), txt(r.get("status"))
    return f"{status}: {', '.join(flags)}" if flags else status


def status_short(r: Row) -> str:
    """The compact table's status cell: "ok", or the short flags, after "invalid" when the row is invalid."""
    words = ([] if r.get("status") == "ok" else [txt(r.get("status"))]) + [SHORT_FLAGS.get(f, f) for f in _flags(r)]
    return " ".join(words) or "ok"


def weights(r: Row) -> str:
    return {"random": "random (untrained)"}.get(txt(r.get("weights")), txt(r.get("weights")))


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Row], str]
    keys: tuple[str, ...]  # the row fields it reads: left out when no row has any of them
    setting: str = ""  # a group-key attribute: how the shared-settings line names it ("" = a measured column)
    sort_key: str = ""  # the row field the HTML table sorts this column by (default: its text)
    left: bool = False  # text, aligned left


def _c(header, cell, keys, **kw) -> Column:
    return Column(header, cell, tuple(keys.split()), **kw)


MODEL = _c("model", model_identity, "model_id model", setting="model", left=True)
WEIGHTS = _c("weights", lambda r: txt(r.get("weights")), "weights", setting="weights", left=True)
DEVICE = _c("device", lambda r: txt(r.get("device")), "device", setting="device", left=True)
RECIPE = _c("recipe", lambda r: txt(r.get("recipe")), "recipe", left=True)
SETTINGS = [
    _c("options", lambda r: txt(r.get("recipe_options")), "recipe_options", setting="recipe options", left=True),
    _c("seq", lambda r: num(r.get("seq_len")), "seq_len", setting="seq_len", sort_key="seq_len"),
    _c("runner", lambda r: txt(r.get("runner")), "runner", setting="runner", left=True),
    _c("thr", lambda r: num(r.get("threads")), "threads", setting="threads", sort_key="threads"),
    _c("affinity", lambda r: txt(r.get("affinity")), "affinity", setting="affinity", left=True),
    _c("timing", lambda r: txt(r.get("timing")), "timing", setting="timing", left=True),
    _c("campaign", lambda r: txt(r.get("campaign")), "campaign", setting="campaign", left=True),
]
P50 = _c("p50 ms [95% CI]", p50_ci, "p50_ms", sort_key="p50_ms")
SPEEDUP = _c("speed-up vs fp32", speedup, "speedup_vs_fp32", sort_key="speedup_vs_fp32")
PROGRAM = _c("program MB", lambda r: fmt_mb(r.get("program_mb")), "program_mb", sort_key="program_mb")
RSS = _c("peak RSS MB", lambda r: fmt_mb(r.get("peak_rss_mb")), "peak_rss_mb", sort_key="peak_rss_mb")
ACCURACY = _c("accuracy", accuracy, "accuracy", sort_key="accuracy", left=True)
DELTA = _c("Δ vs fp32", delta, "accuracy_delta_vs_fp32", sort_key="accuracy_delta_vs_fp32")
AGREE = _c("agree fp32", lambda r: num(r.get("agreement_fp32"), 3), "agreement_fp32", sort_key="agreement_fp32")
RUNS = _c("runs", runs, "n_runs", sort_key="n_runs")

# every column, in the order of the wide markdown table, the HTML table (and, by name, the CSV)
WIDE: list[Column] = [MODEL, RECIPE, DEVICE, *SETTINGS, WEIGHTS, P50,
                      _c("p90 ms", lambda r: fmt_ms(r.get("p90_ms")), "p90_ms", sort_key="p90_ms"),
                      SPEEDUP, _c("rank", lambda r: num(r.get("rank")), "rank", sort_key="rank"),
                      PROGRAM, RSS,
                      _c("load ms", lambda r: fmt_ms(r.get("load_ms")), "load_ms", sort_key="load_ms"),
                      _c("1st inf ms", lambda r: fmt_ms(r.get("first_inference_ms")), "first_inference_ms",
                         sort_key="first_inference_ms"),
                      ACCURACY, DELTA, AGREE,
                      _c("gate", lambda r: txt(r.get("accuracy_gate")), "accuracy_gate", left=True),
                      _c("flags", lambda r: txt(r.get("flags")), "flags", left=True),
                      _c("status", lambda r: txt(r.get("status")), "status", left=True),
                      RUNS, _c("run ids", lambda r: txt(r.get("run_ids")), "run_ids", left=True)]


def compact(rows: Sequence[Row]) -> list[Column]:
    """The columns a reader needs first, short headers, for a table that fits 100 characters: model, recipe,
    device, p50 [CI], speed-up (×fp32), size, RSS, accuracy, Δ, status with short flags, runs (agreement with fp32
    only when no row has a task accuracy)."""
    metrics = {txt(r.get("accuracy_metric")) or "accuracy" for r in rows if not missing(r.get("accuracy"))}
    if not metrics:  # random weights: top-1 agreement with fp32 eager is the accuracy figure that means something
        accs = [Column("agree", AGREE.cell, AGREE.keys)]
    elif len(metrics) == 1:  # the metric named once, in the header
        metric = metrics.pop()
        accs = [Column("acc" if metric == "accuracy" else metric, lambda r: num(r.get("accuracy"), 3), ("accuracy",))]
    else:
        accs = [Column("accuracy", lambda r: accuracy(r, 3), ("accuracy",), left=True)]
    accs.append(Column("Δ fp32", lambda r: delta(r, 3), ("accuracy_delta_vs_fp32",)))  # dropped when empty
    return [MODEL, WEIGHTS, DEVICE, RECIPE, *SETTINGS, Column("p50 ms [CI]", p50_ci, P50.keys),
            Column("×fp32", speedup, SPEEDUP.keys), Column("size MB", PROGRAM.cell, PROGRAM.keys),
            Column("RSS MB", RSS.cell, RSS.keys), *accs,
            Column("status", status_short, ("status",), left=True), Column("runs", runs, RUNS.keys)]


def present(columns: Sequence[Column], rows: Sequence[Row], drop_empty: bool = False) -> list[Column]:
    """The columns some row has (and, with drop_empty, some row has a value for)."""
    out = []
    for c in columns:
        if not any(k in r for r in rows for k in c.keys):
            continue
        if drop_empty and not any(c.cell(r) for r in rows):
            continue
        out.append(c)
    return out


def shared_settings(columns: Sequence[Column], rows: Sequence[Row]) -> tuple[list[Column], list[tuple[str, str]]]:
    """Split off the setting columns every row agrees on: (the columns left, [(setting name, shared value)])."""
    if not rows:
        return list(columns), []
    kept, shared = [], []
    for c in columns:
        values = {c.cell(r) for r in rows}
        if c.setting and len(values) == 1:
            value = values.pop()
            if value:
                shared.append((c.setting, weights(rows[0]) if c is WEIGHTS else value))
        else:
            kept.append(c)
    return kept, shared


def settings_line(shared: Sequence[tuple[str, str]]) -> str:
    return "Every row: " + ", ".join(f"{name} {value}" for name, value in shared) + "." if shared else ""


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
