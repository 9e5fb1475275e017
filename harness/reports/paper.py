"""The MobileBERT paper's latency table (Sun et al. 2020, Table 4 and the ablations of section 4.3), built from the
runs `harness paper` stored: every number in it is read back from run records (their `paper` tags, manifests and
latencies), so the markdown, HTML and JSON reports, `results export` and an importing store all show the same table
that `harness paper` printed.

Tags a paper run carries: `paper` (the row's key), `paper_params` and `paper_flops` (counted from the model when it
was exported), `paper_quick` ("1": test-size models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from harness.store.record import RunRecord


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    preset: str
    quick: str  # the same change at test size (--quick)
    params: float | None  # the paper's #Params
    flops: float | None  # the paper's #FLOPS at seq 128
    ms: float | None  # the paper's latency on a Pixel 4 (TFLite, 4 threads, seq 128)
    claim: str | None = None  # the claim this row checks, against MobileBERT


# Sun et al. 2020, Table 4 (#Params, #FLOPS, Pixel 4 latency). The ablation pair (section 4.3, Table 5) is measured
# without quoting its latencies: only Table 4's rows carry the paper's numbers here.
ROWS = (
    Row("bert-base", "BERT-base", "bert-base", "test-tiny-bert", 109e6, 22.5e9, 342,
        "MobileBERT is 5.5x faster than BERT-base"),
    Row("noopt", "MobileBERT w/o OPT (LayerNorm+GELU)", "mobilebert-noopt", "test-tiny-noopt", 25.3e6, 5.7e9, 192,
        "NoNorm + ReLU make MobileBERT ~3x faster"),
    Row("nonorm-gelu", "MobileBERT NoNorm+GELU", "mobilebert-nonorm-gelu", "test-tiny-nonorm-gelu", 25.3e6, 5.7e9,
        None),
    Row("layernorm-relu", "MobileBERT LayerNorm+ReLU", "mobilebert-layernorm-relu", "test-tiny-layernorm-relu",
        25.3e6, 5.7e9, None),
    Row("mobilebert", "MobileBERT", "mobilebert", "test-tiny", 25.3e6, 5.7e9, 62),
    Row("mobilebert-tiny", "MobileBERT-TINY", "mobilebert-tiny", "test-tiny-narrow", 15.1e6, 3.1e9, 40,
        "MobileBERT-TINY takes 0.65x MobileBERT's time"),
)
BASE = "mobilebert"
# A claimed speed-up holds here when the measured one reaches this share of it (docs/paper.md, "Verdicts").
HOLDS_SHARE = 0.8
PAPER_BASE_MS = 62.0
COLUMNS = ("model", "params (paper)", "FLOPs (paper)", "p50 ms [interval]", "paper ms", "x MobileBERT (paper)",
           "program MB", "peak RSS MB", "runs")  # runs: those the latency pools (+ the slowed ones left out)


def verdict(row: Row, ratio: float, bounds: tuple[float, float] | None = None) -> str:
    """'holds' / 'does not hold here' / 'unclear here', with the measured and the claimed speed-up (ratio: row ms /
    MobileBERT ms). bounds: the ratio's range from both rows' intervals (row low / MobileBERT high .. row high /
    MobileBERT low); a verdict is given only when the whole range falls on one side of the threshold."""
    claimed = row.ms / PAPER_BASE_MS
    if claimed >= 1:  # MobileBERT is faster than this row by `claimed`
        speedup, want, what = (lambda r: r), claimed, "MobileBERT faster"
    else:  # this row is faster than MobileBERT
        speedup, want, what = (lambda r: 1 / r), 1 / claimed, f"{row.label} faster"
    measured, threshold = speedup(ratio), HOLDS_SHARE * want
    lo, hi = sorted(map(speedup, bounds)) if bounds and all(b and b == b and b > 0 for b in bounds) else (measured,
                                                                                                        measured)
    word = "holds" if lo >= threshold else "does not hold here" if hi < threshold else "unclear here"
    span = f" [{lo:.2f}-{hi:.2f}]" if (lo, hi) != (measured, measured) else ""
    return (f"{word}: {what} by {measured:.2f}x{span} measured (paper {want:.2f}x; holds from {threshold:.2f}x)"
            + (": the rows' intervals straddle the threshold, measure on a quieter device or with more --repeat"
               if word == "unclear here" else ""))


def pooled(records: Iterable[RunRecord]) -> dict | None:
    """Latency of one program across its runs: the median of the runs' medians, an interval across runs (each run
    one replication), peak RSS; None when no run measured. The runs the report leaves out of a row's latency
    (slowed throughout, or disturbed and slower: harness/run/pooling.py) are left out here too, and counted."""
    from harness.run import stats
    from harness.run.pooling import pool

    measured = [r for r in records if r.status in ("ok", "invalid") and r.latency.median]
    if not measured:
        return None
    ok = pool(measured).kept
    meds = sorted(float(r.latency.median) for r in ok)
    center = meds[len(meds) // 2]
    lo, hi = stats.replications_ci(meds, center=center) if len(meds) > 1 else (float("nan"), float("nan"))
    rss = [float(r.memory.peak_rss_mb) for r in ok if r.memory.peak_rss_mb]
    return {"ms": center, "lo": lo, "hi": hi, "runs": len(ok), "left_out": len(measured) - len(ok),
            "rss": max(rss) if rss else None,
            "emulated": any(r.emulated for r in ok)}


@dataclass
class PaperTable:
    """One campaign's table: the settings every row shares, then per recipe its rows and verdicts."""
    campaign: str | None
    device: str
    threads: int | None
    seq_len: int | None
    timing: str | None
    quick: bool
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)  # recipe -> {"rows": [...], "verdicts": [...]}

    def to_json(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "device": self.device, "threads": self.threads, "seq_len": self.seq_len,
                "timing": self.timing, "quick": self.quick, "recipes": self.recipes}

    def settings(self) -> str:
        return (f"Every row: untrained random weights (latency, size and memory are real; accuracy is not measured), "
                f"device {self.device}, {self.threads} threads, seq_len {self.seq_len}, batch 1, ExecuTorch + "
                f"XNNPACK, native runner, timing {self.timing}, campaign {self.campaign}. Paper: TFLite on a Pixel 4, "
                f"4 threads, seq 128 (Sun et al. 2020, Table 4). Latency: median of the runs' medians [95% interval "
                f"across runs]; ratio: row / MobileBERT.")

    def title(self) -> str:
        return f"The MobileBERT paper on {self.device}" + (" (--quick: test-size models, not the paper's)"
                                                            if self.quick else "")

    def to_markdown(self, level: int = 1) -> str:
        h = "#" * level
        out = [f"{h} {self.title()}", "", self.settings()]
        for recipe, part in self.recipes.items():
            out += ["", f"{h}# {recipe}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
            out += ["| " + " | ".join(cells(r)) + " |" for r in part["rows"]]
            out += [""] + [f"- {v}" for v in part["verdicts"]]
        return "\n".join(out)


def cells(r: dict[str, Any]) -> list[str]:
    """A table row as the markdown and HTML tables show it."""
    paper_ratio = f"{r['paper_ms'] / PAPER_BASE_MS:.2f}x" if r["paper_ms"] else "-"
    head = [r["label"], f"{_count(r['params'])} ({_count(r['paper_params'])})",
            f"{_count(r['flops'])} ({_count(r['paper_flops'])})"]
    if r["ms"] is None:
        return head + [f"not measured: {r['why']}", _n(r["paper_ms"]), f"- ({paper_ratio})",
                       _mb(r["program_bytes"]), "-", "0"]
    interval = f" [{r['lo']:.2f}-{r['hi']:.2f}]" if r["runs"] > 1 else ""
    return head + [f"{r['ms']:.2f}{interval}" + (" (emulated)" if r["emulated"] else ""), _n(r["paper_ms"]),
                   (f"{r['ratio']:.2f}x" if r["ratio"] else "-") + f" ({paper_ratio})", _mb(r["program_bytes"]),
                   f"{r['rss']:.1f}" if r["rss"] else "-",
                   str(r["runs"]) + (f" (+{r['left_out']} left out)" if r.get("left_out") else "")]


def is_paper_run(r: RunRecord) -> bool:
    return bool((r.tags or {}).get("paper"))


def paper_tables(records: Iterable[RunRecord]) -> list[PaperTable]:
    """One table per campaign of `harness paper` runs among records (in the order the campaigns first appear)."""
    by: dict[str | None, list] = {}
    for r in records:
        if is_paper_run(r):
            by.setdefault(r.campaign, []).append(r)
    return [paper_table(rs) for rs in by.values()]


def paper_table(records: list[RunRecord], *, rows: list[Row] | None = None, recipes: list[str] | None = None,
                counts: dict[str, tuple[int, int]] | None = None, sizes: dict[tuple[str, str], int] | None = None,
                why_not: dict[tuple[str, str], str] | None = None, device: str | None = None,
                threads: int | None = None, seq_len: int | None = None, quick: bool | None = None,
                timing: str | None = None, campaign: str | None = None) -> PaperTable:
    """The table of one campaign's paper runs. Everything not given is read from the records: the rows and recipes
    they measured, each row's counted parameters and FLOPs (tags), program sizes (manifests), the settings; what
    is given (by `harness paper`, which also knows the rows it could not export) takes precedence."""
    records = [r for r in records if is_paper_run(r)]
    tags = [r.tags for r in records]
    keys = {t["paper"] for t in tags}
    rows = rows if rows is not None else [row for row in ROWS if row.key in keys]
    recipes = recipes if recipes is not None else list(dict.fromkeys(r.recipe for r in records))
    counts = dict(counts or {})
    for t in tags:
        if t["paper"] not in counts and t.get("paper_params") and t.get("paper_flops"):
            counts[t["paper"]] = (int(t["paper_params"]), int(t["paper_flops"]))
    sizes = dict(sizes or {})
    for r in records:
        size = (r.manifest or {}).get("program_bytes")
        if size:
            sizes.setdefault((r.tags["paper"], r.recipe), size)
    first = next((r for r in records if r.threads), None)
    table = PaperTable(
        campaign=campaign if campaign is not None else next((r.campaign for r in records), None),
        device=device or next((r.device for r in records), "?"),
        threads=threads or (first.threads if first else None),
        seq_len=seq_len or next((r.seq_len for r in records if r.seq_len), None),
        timing=timing or next((r.timing for r in records if r.timing), None),
        quick=quick if quick is not None else any(t.get("paper_quick") == "1" for t in tags))
    by: dict[tuple, list] = {}
    for r in records:
        by.setdefault((r.tags["paper"], r.recipe), []).append(r)
    for recipe in recipes:
        p = {row.key: pooled(by.get((row.key, recipe), [])) for row in rows}
        base = p.get(BASE)
        out_rows, verdicts = [], []
        for row in rows:
            params, flops = counts.get(row.key, (None, None))
            m = p[row.key]
            entry = {"key": row.key, "label": row.label, "params": params, "flops": flops,
                     "paper_params": row.params, "paper_flops": row.flops, "paper_ms": row.ms,
                     "program_bytes": sizes.get((row.key, recipe)), "ms": None, "lo": None, "hi": None,
                     "ratio": None, "rss": None, "runs": 0, "left_out": 0, "emulated": False, "why": None}
            if m is None:
                why = (why_not or {}).get((row.key, recipe)) or _failure(by.get((row.key, recipe), []))
                entry["why"] = why
                if row.claim:
                    verdicts.append(f"{row.claim}: not measured ({why})")
            else:
                ratio = m["ms"] / base["ms"] if base else None
                entry.update(ms=m["ms"], lo=m["lo"], hi=m["hi"], ratio=ratio, rss=m["rss"], runs=m["runs"],
                             left_out=m["left_out"], emulated=m["emulated"])
                if row.claim:
                    bounds = (m["lo"] / base["hi"], m["hi"] / base["lo"]) if ratio and m["runs"] > 1 and \
                        base["runs"] > 1 and base["lo"] > 0 else None
                    verdicts.append(f"{row.claim}: " + (verdict(row, ratio, bounds) if ratio else
                                                        "not measured (MobileBERT has no measurement)"))
            out_rows.append(entry)
        if counts.get(BASE) and counts.get("bert-base"):
            size = counts["bert-base"][0] / counts[BASE][0]
            verdicts.insert(0, f"MobileBERT is 4.3x smaller than BERT-base: "
                               f"{'holds' if size >= HOLDS_SHARE * 4.3 else 'does not hold here'}: "
                               f"{size:.2f}x fewer parameters counted (paper 109M / 25.3M = 4.3x)")
        if table.quick:
            verdicts.append("(--quick: test-size models; the verdicts above test the machinery, not the paper)")
        if any(m and m["emulated"] for m in p.values()):
            verdicts.append("(emulated device: timings are functional only, never evidence about the paper)")
        table.recipes[recipe] = {"rows": out_rows, "verdicts": verdicts}
    return table


def _failure(records) -> str:
    failed = [r for r in records if r.error]
    return (failed[-1].error or "failed").splitlines()[0][:160] if failed else "no run"


def _count(v) -> str:
    """109.5M, 22.4G, 61.2k: a count with the unit that keeps it short."""
    if not v:
        return "-"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.1f}{unit}"
    return str(int(v))


def _n(v):
    return f"{v:g}" if v else "-"


def _mb(b):
    return f"{b / 1e6:.1f}" if b else "-"
