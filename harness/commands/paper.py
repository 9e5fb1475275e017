"""`harness paper`: the MobileBERT paper's latency table (Sun et al. 2020, Table 4 and the ablations of section 4.3),
exported and measured on one device in one interleaved campaign, each claim next to what this device measures.

The paper measured TFLite on a Pixel 4 (4 threads, seq 128, batch 1); here every row is an ExecuTorch program
lowered to XNNPACK, run by the harness' runner on the device profile given. Weights are the presets' untrained
random ones: latency, size and memory are real, accuracy is not a question this table asks (docs/paper.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from common.console import console
from common.errors import BadInput, HarnessError


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


def _rows(value: str | None) -> list[Row]:
    if not value:
        return list(ROWS)
    keys = [k.strip() for k in value.split(",") if k.strip()]
    known = {r.key: r for r in ROWS}
    bad = [k for k in keys if k not in known]
    if bad:
        raise BadInput(f"--rows {value}: {', '.join(bad)} is not a row; rows: {', '.join(known)}")
    if BASE not in keys:
        keys.append(BASE)  # every ratio is to MobileBERT
    return [r for r in ROWS if r.key in keys]


def count_model(preset: str, seq_len: int) -> tuple[int, int]:
    """(parameters, FLOPs of one forward at seq_len, batch 1) of the preset as exported (2-class head)."""
    import torch

    from harness.export.exporter import ExportRequest, ProgramModule, build_model, example_inputs
    from model.bert_family import count_flops

    model, head, cfg, _ = build_model(ExportRequest(model=preset, seq_len=seq_len))
    if seq_len > cfg.get("max_position_embeddings", 512):
        raise BadInput(f"--seq-len {seq_len} exceeds {preset}'s max_position_embeddings "
                       f"({cfg['max_position_embeddings']})")
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        flops = count_flops(ProgramModule(model, head).eval(), example_inputs(seq_len, int(cfg["vocab_size"])))
    return params, flops


def verdict(row: Row, ratio: float, bounds: tuple[float, float] | None = None) -> str:
    """'holds' / 'does not hold here' / 'unclear here', with the measured and the claimed speed-up (ratio: row ms /
    MobileBERT ms). bounds: the ratio's range from both rows' intervals (row low / MobileBERT high .. row high /
    MobileBERT low); a verdict is given only when the whole range falls on one side of the threshold."""
    claimed = row.ms / 62.0
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


@click.command("paper")
@click.option("--device", default="host", show_default=True, help="Device profile; `harness devices` lists them.")
@click.option("--quant", "recipes", default="fp32", show_default=True,
              help="Recipe or comma list (fp32,int8): one table per recipe; the paper's is fp32.")
@click.option("--seq-len", type=click.IntRange(1, 512), default=None,
              help="Sequence length (default: the paper's 128, batch 1; 32 with --quick).")
@click.option("--rows", default=None, metavar="KEYS",
              help="Only these rows (comma list of " + ", ".join(r.key for r in ROWS) + "); MobileBERT is always "
                   "measured: every ratio is to it.")
@click.option("--quick", is_flag=True,
              help="The same table at test size (test-tiny presets with the same changes): checks the machinery in "
                   "seconds; its numbers say nothing about the paper.")
@click.option("--threads", type=click.IntRange(1, 4096), default=None,
              help="Runner threads (default: the device profile's; the paper used 4 on a Pixel 4).")
@click.option("--timing", "timing_preset", type=click.Choice(["quick", "default", "mlperf"]), default="default",
              show_default=True, help="Warmup and timing floors of every run (docs/statistics.md).")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per program, in interleaved rounds (their spread is the latency's interval).")
@click.option("--target-ci", type=float, default=0.02, show_default=True,
              help="Add rounds for programs whose interval across runs is wider than this share of the median, up "
                   "to --max-repeats (0: never).")
@click.option("--max-repeats", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--wait-for-quiet", type=float, default=0.0, show_default=True, metavar="SECONDS",
              help="Before each run, wait up to this long while other work keeps the device's CPUs busy.")
@click.option("--devices-file", type=click.Path(path_type=Path), default=None, help="Extra device catalog (TOML).")
@click.option("--address", default=None, help="ssh address user@host[:port] for ssh devices.")
@click.option("--serial", default=None, help="adb serial for Android devices.")
@click.pass_context
def paper_command(ctx, device, recipes, seq_len, rows, quick, threads, timing_preset, repeat, target_ci, max_repeats,
                  wait_for_quiet, devices_file, address, serial):
    """The MobileBERT paper's latency table on your device: BERT-base, MobileBERT w/o OPT, the two ablations,
    MobileBERT and MobileBERT-TINY, each claim with a verdict.

    Exports every row (cached: a second run only measures), runs them in one interleaved campaign and prints, per
    recipe: parameters and FLOPs counted from the model next to the paper's, latency with its interval across runs,
    the ratio to MobileBERT next to the paper's, program size, peak memory. Weights are untrained (random): the
    latency is real, accuracy is not measured. docs/paper.md says what differs from the paper's set-up.

    \b
    Examples:
      harness paper --device host                  # the paper's settings: seq 128, batch 1, fp32
      harness paper --device host --quant fp32,int8
      harness paper --quick                        # the same table at test size, in seconds
      harness paper --rows bert-base,mobilebert --device pixel7 --threads 4
    """
    from device_runners.catalog import get_profile
    from harness.commands.export import export_requests, print_export, recipes_of
    from harness.commands.run import measure_one
    from common.console import status
    from harness.export.exporter import export
    from harness.export.parallel import ExportPool, default_jobs
    from harness.run import measure, stats
    from harness.run.plan import CampaignPlan, run_plan, validate_plan

    results = ctx.obj["results"]
    seq_len = seq_len or (32 if quick else 128)
    wanted = recipes_of(recipes)
    chosen = _rows(rows)
    plan = CampaignPlan([], rounds=repeat, target_ci=target_ci or None, max_rounds=max(max_repeats, repeat))
    validate_plan(plan)
    if not (0 <= wait_for_quiet <= 3600):
        raise BadInput(f"--wait-for-quiet {wait_for_quiet:g}: a number of seconds between 0 and 3600")
    profile = get_profile(device, extra=devices_file, address=address, serial=serial)  # unknown device: before work
    t = stats.preset(timing_preset)
    campaign = measure.new_campaign("paper")

    with status("counting parameters and FLOPs of each row") as update:
        counts = {}
        for row in chosen:
            update(f"counting {row.quick if quick else row.preset}")
            counts[row.key] = count_model(row.quick if quick else row.preset, seq_len)

    # exports first (in worker processes, as many at a time as cores and memory allow), then every run
    slots: list[list] = []  # [row, recipe, export request, result | pool index | error]
    pool = ExportPool(results, jobs=default_jobs(len(chosen) * len(wanted)))
    with pool:
        for row in chosen:
            for recipe in wanted:
                req = export_requests(model=row.quick if quick else row.preset, recipe=recipe,
                                      seq_len=str(seq_len))[0]  # the rest: `harness export`'s defaults
                try:
                    res = export(req, results, cached_only=True)
                except HarnessError as e:
                    res = e
                slots.append([row, recipe, req, res if res is not None else pool.submit(req)])
        queued = [s for s in slots if isinstance(s[3], int)]
        if queued:
            with status(f"exporting {len(queued)} programs, {min(pool.jobs, len(queued))} at a time") as update:
                done = pool.wait(update)
            for s in queued:
                s[3] = done[s[3]]
    requests, why_not = [], {}
    for row, recipe, req, res in slots:
        if isinstance(res, Exception):
            why_not[(row.key, recipe)] = f"not exported: {res}"
            continue
        print_export(res)
        requests.append(measure.RunRequest.of(
            res.program, device, threads=threads, warmup=t.warmup, iterations=t.iterations,
            min_seconds=t.min_seconds, warmup_seconds=t.warmup_seconds, wait_for_quiet=wait_for_quiet,
            devices_file=devices_file, address=address, serial=serial, campaign=campaign,
            tags={"paper": row.key, **({"paper_quick": "1"} if quick else {})}))
    for r in requests:
        measure.validate(r)
    records = []
    if requests:
        plan.requests, plan.campaign = requests, campaign
        records = run_plan(plan, results, measure=measure_one, say=lambda s: console.print(f"[cyan]{s}[/cyan]"))
    sizes = {(row.key, recipe): res.manifest.program_bytes for row, recipe, _, res in slots
             if not isinstance(res, Exception)}
    table = paper_table(chosen, wanted, counts, records, sizes, why_not, profile=profile, threads=threads,
                        seq_len=seq_len, quick=quick, timing=timing_preset, campaign=campaign)
    console.print()
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    out = Path(results) / "paper"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{campaign}.md").write_text(table + "\n")
    console.print(f"\n(also in {out / (campaign + '.md')}; every run is in the store: "
                  f"`harness report --campaign {campaign}`)", markup=False, highlight=False)
    if any(r.status == "failed" for r in records):
        ctx.exit(3)


def _pooled(records) -> dict | None:
    """Latency of one program across its runs: the median of the runs' medians, an interval across runs (each run
    one replication), peak RSS; None when no run measured."""
    from harness.run import stats

    ok = [r for r in records if r.status in ("ok", "invalid") and r.latency.median]
    if not ok:
        return None
    meds = sorted(float(r.latency.median) for r in ok)
    center = meds[len(meds) // 2]
    lo, hi = stats.replications_ci(meds, center=center) if len(meds) > 1 else (float("nan"), float("nan"))
    rss = [float(r.memory.peak_rss_mb) for r in ok if r.memory.peak_rss_mb]
    return {"ms": center, "lo": lo, "hi": hi, "runs": len(ok), "rss": max(rss) if rss else None,
            "emulated": any(r.emulated for r in ok)}


def paper_table(rows, recipes, counts, records, sizes, why_not, profile, threads, seq_len, quick, timing,
                campaign) -> str:
    """One markdown table per recipe, the settings line above it, one verdict line per claim below it."""
    by = {}
    for r in records:
        key = ((r.tags or {}).get("paper"), r.recipe)
        by.setdefault(key, []).append(r)
    first = next((r for r in records if r.threads), None)
    th = threads or (first.threads if first else profile.threads)
    out = [f"# The MobileBERT paper on {profile.name}" + (" (--quick: test-size models, not the paper's)" if quick
                                                            else ""),
           "",
           f"Every row: untrained random weights (latency, size and memory are real; accuracy is not measured), "
           f"device {profile.name}, {th} threads, seq_len {seq_len}, batch 1, ExecuTorch + XNNPACK, native runner, "
           f"timing {timing}, campaign {campaign}. Paper: TFLite on a Pixel 4, 4 threads, seq 128 (Sun et al. 2020, "
           f"Table 4). Latency: median of the runs' medians [95% interval across runs]; ratio: row / MobileBERT."]
    for recipe in recipes:
        pooled = {row.key: _pooled(by.get((row.key, recipe), [])) for row in rows}
        base = pooled.get(BASE)
        out += ["", f"## {recipe}", "",
                "| model | params (paper) | FLOPs (paper) | p50 ms [interval] | paper ms | x MobileBERT (paper) "
                "| program MB | peak RSS MB | runs |",
                "|---|---|---|---|---|---|---|---|---|"]
        verdicts = []
        for row in rows:
            params, flops = counts[row.key]
            p = pooled[row.key]
            cells = [row.label, f"{_count(params)} ({_count(row.params)})", f"{_count(flops)} ({_count(row.flops)})"]
            paper_ratio = f"{row.ms / 62:.2f}x" if row.ms else "-"
            if p is None:
                why = why_not.get((row.key, recipe)) or _failure(by.get((row.key, recipe), []))
                cells += [f"not measured: {why}", _n(row.ms), f"- ({paper_ratio})", _mb(sizes.get((row.key, recipe))),
                          "-", "0"]
                if row.claim:
                    verdicts.append(f"- {row.claim}: not measured ({why})")
            else:
                interval = f" [{p['lo']:.2f}-{p['hi']:.2f}]" if p["runs"] > 1 else ""
                ratio = p["ms"] / base["ms"] if base else None
                cells += [f"{p['ms']:.2f}{interval}" + (" (emulated)" if p["emulated"] else ""), _n(row.ms),
                          (f"{ratio:.2f}x" if ratio else "-") + f" ({paper_ratio})",
                          _mb(sizes.get((row.key, recipe))), f"{p['rss']:.1f}" if p["rss"] else "-", str(p["runs"])]
                if row.claim:
                    bounds = (p["lo"] / base["hi"], p["hi"] / base["lo"]) if ratio and p["runs"] > 1 and \
                        base["runs"] > 1 and base["lo"] > 0 else None
                    verdicts.append(f"- {row.claim}: " + (verdict(row, ratio, bounds) if ratio else
                                                         "not measured (MobileBERT has no measurement)"))
            out.append("| " + " | ".join(cells) + " |")
        if BASE in counts and "bert-base" in counts:
            size = counts["bert-base"][0] / counts[BASE][0]
            verdicts.insert(0, f"- MobileBERT is 4.3x smaller than BERT-base: {'holds' if size >= HOLDS_SHARE * 4.3 else 'does not hold here'}: "
                               f"{size:.2f}x fewer parameters counted (paper 109M / 25.3M = 4.3x)")
        if quick:
            verdicts.append("- (--quick: test-size models; the verdicts above test the machinery, not the paper)")
        if any(p and p["emulated"] for p in pooled.values()):
            verdicts.append("- (emulated device: timings are functional only, never evidence about the paper)")
        out += [""] + verdicts
    return "\n".join(out)


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

