"""`harness paper`: the MobileBERT paper's latency table (Sun et al. 2020, Table 4 and the ablations of section 4.3),
exported and measured on one device in one interleaved campaign, each claim next to what this device measures.

The paper measured TFLite on a Pixel 4 (4 threads, seq 128, batch 1); here every row is an ExecuTorch program
lowered to XNNPACK, run by the harness' runner on the device profile given. Weights are the presets' untrained
random ones: latency, size and memory are real, accuracy is not a question this table asks (docs/paper.md).
"""

from __future__ import annotations

from pathlib import Path

import click

from common.console import console
from common.errors import BadInput, HarnessError
from common.timing import HARDWARE
from harness.reports.paper import BASE, ROWS, Row, paper_table


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
@click.option("--timing", "timing_preset", type=click.Choice([*HARDWARE, "emulated"]),
              default=None, help="Warmup and timing floors of every run (docs/statistics.md). Default: 'default', or "
                                 "'emulated' (1 warmup, 3 timed) on an emulated device.")
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
      harness paper --quick --device emu-arm64     # on the emulated ARM64 board (functional timings only)
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
    emulated = profile.transport == "qemu"
    timing_preset = timing_preset or ("emulated" if emulated else "default")
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
            samples=1 if emulated else 8,  # under emulation each scored example costs one more slow inference
            devices_file=devices_file, address=address, serial=serial, campaign=campaign,
            tags={"paper": row.key, "paper_params": str(counts[row.key][0]), "paper_flops": str(counts[row.key][1]),
                  **({"paper_quick": "1"} if quick else {})}))
    for r in requests:
        measure.validate(r)
    records = []
    if requests:
        plan.requests, plan.campaign = requests, campaign
        records = run_plan(plan, results, measure=measure_one, say=lambda s: console.print(f"[cyan]{s}[/cyan]"))
    sizes = {(row.key, recipe): res.manifest.program_bytes for row, recipe, _, res in slots
             if not isinstance(res, Exception)}
    table = paper_table(records, rows=chosen, recipes=wanted, counts=counts, sizes=sizes, why_not=why_not,
                        device=profile.name, threads=threads or (None if records else profile.threads),
                        seq_len=seq_len, quick=quick, timing=timing_preset, campaign=campaign).to_markdown()
    console.print()
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    from harness.reports.report import write_text

    out = Path(results) / "paper" / f"{campaign}.md"
    write_text(out, table + "\n")  # atomic; a folder that cannot be written is one line (the runs are stored)
    console.print(f"\n(also in {out}; the runs are in the store, and `harness report --campaign {campaign}` shows "
                  "this table again, as do the HTML report and a store that imports `harness results export`)",
                  markup=False, highlight=False)
    if any(r.status == "failed" for r in records):
        ctx.exit(3)
