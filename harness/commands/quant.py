"""`harness recipes` (what --quant accepts) and `harness sensitivity` (which layers a recipe hurts)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from common.console import console, status
from harness.commands.export import GROUP_SIZE


@click.command("recipes")
def recipes_command() -> None:
    """List the quantization recipes `--quant` accepts."""
    from harness.export.recipes import RECIPES

    width = max(len(n) for n in RECIPES)
    for name, r in RECIPES.items():
        extra = "  (needs --calibration)" if r.needs_calibration else ""
        console.print(f"{name:<{width}}  {r.description}{extra}", soft_wrap=True)
    console.print("\nmodifiers: --quant-embedding 8w|4w (embedding tables), --keep-fp32 PATTERN (modules left float), "
                  "--group-size N|row (int4)", soft_wrap=True)


@click.command("sensitivity")
@click.option("--model", default="mobilebert", show_default=True, help="Preset name (see `harness export --help`).")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="Hugging Face MobileBERT folder.")
@click.option("--quant", "recipe", default="int8", show_default=True, help="Recipe to analyse: int8, int8-static, int4.")
@click.option("--seq-len", default=128, show_default=True, type=int)
@click.option("--head", default="sequence_classification", show_default=True, help="Head for a preset.")
@click.option("--num-labels", default=2, show_default=True, type=int)
@GROUP_SIZE
@click.option("--quant-embedding", type=click.Choice(["8w", "4w"]), default=None,
              help="Quantize the embedding tables too (whole-model rows only).")
@click.option("--keep-fp32", multiple=True, metavar="PATTERN", help="Modules already kept in float; repeatable.")
@click.option("--calibration", default=64, show_default=True, type=int, help="Calibration examples (int8-static).")
@click.option("--task", default="rotten_tomatoes", show_default=True, help="Real text the variants are scored on.")
@click.option("--samples", default=200, show_default=True, type=int, help="Dev examples scored.")
@click.option("--min-agreement", default=0.99, show_default=True, type=float,
              help="Top-1 agreement the suggested --keep-fp32 set must reach.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON report (default RESULTS/sensitivity/MODEL-RECIPE-sSEQ.json).")
@click.pass_context
def sensitivity_command(ctx, model, checkpoint, recipe, seq_len, head, num_labels, group_size, quant_embedding,
                        keep_fp32, calibration, task, samples, min_agreement, out) -> None:
    """Quantize one layer at a time, rank layers by the error each adds, suggest a --keep-fp32 set.

    \b
    Examples:
      harness sensitivity --model mobilebert --quant int8
      harness sensitivity --checkpoint ./my-mobilebert-sst2 --quant int4 --group-size 64 --samples 100
    """
    import torch

    import data
    from harness.export import sensitivity
    from common.errors import BadInput
    from harness.export.exporter import INPUT_NAMES, ExportRequest, ProgramModule, build_model, calibration_inputs, example_inputs
    from harness.export.recipes import RecipeOptions, get_recipe

    rec = get_recipe(recipe)
    if samples < 1:
        raise BadInput(f"--samples {samples}: need at least 1 example")
    opts = RecipeOptions(group_size=group_size, quant_embedding=quant_embedding, keep_fp32=list(keep_fp32))
    req = ExportRequest(model=model, checkpoint=checkpoint, recipe=recipe, seq_len=seq_len, head=head,
                        num_labels=num_labels, options=opts, numerics_task=task, calibration_samples=calibration)
    with status(f"sensitivity of {checkpoint or model} to {recipe}") as update:
        eager, head, hf_config, _ = build_model(req)
        vocab = int(hf_config["vocab_size"])
        max_pos = hf_config.get("max_position_embeddings", 512)
        if seq_len > max_pos:
            raise BadInput(f"--seq-len {seq_len} exceeds the model's max_position_embeddings ({max_pos}): use "
                           f"--seq-len {max_pos} or less")
        wrapper = ProgramModule(eager, head).eval()
        if rec.needs_calibration:
            opts.calibration = calibration_inputs(req, vocab, update)
        dev = data.load_task(task, split="dev", limit=samples)
        enc = data.encode(data.get_tokenizer(checkpoint), dev.texts, seq_len=seq_len)
        enc["input_ids"] = enc["input_ids"] % vocab  # small test vocabularies cannot read the bert vocab
        eval_inputs = tuple(torch.from_numpy(enc[n]) for n in INPUT_NAMES)
        report = sensitivity.rank(wrapper, example_inputs(seq_len, vocab), eval_inputs, recipe, opts,
                                  min_agreement, progress=update)
    report.update(model=model if checkpoint is None else str(checkpoint), task=dev.name, seq_len=seq_len)
    out = out or Path(ctx.obj["results"]) / "sensitivity" / f"{Path(checkpoint).name if checkpoint else model}-{recipe}-s{seq_len}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    _print(report, out)


def _print(r: dict, out: Path) -> None:
    b = r["baseline"]
    console.print(f"[bold]{r['recipe']}[/bold] on {r['n']} {r['task']} examples ({r['method']})")
    console.print(f"  whole model quantized: top-1 agreement {b['top1_agreement']:.4f}, "
                  f"mean rel logit error {b['mean_rel_logit_error']:.2e}")
    width = max(len(g["group"]) for g in r["groups"])
    console.print(f"  {'rank':>4}  {'group (only it quantized)':<{width}}  {'agreement':>9}  mean rel err")
    for i, g in enumerate(r["groups"], 1):
        console.print(f"  {i:>4}  {g['group']:<{width}}  {g['top1_agreement']:9.4f}  {g['mean_rel_logit_error']:.2e}")
    flags = " ".join(f"--keep-fp32 {k}" for k in r["suggested_keep_fp32"]) or "(nothing: already above the bar)"
    if r["reached"]:
        console.print(f"[green]  suggestion: {flags} -> agreement {r['suggested_agreement']:.4f} "
                      f">= {r['min_agreement']}[/green]")
    else:
        console.print(f"[red]  no --keep-fp32 set reaches {r['min_agreement']} (best {r['suggested_agreement']:.4f} "
                      f"with {flags})[/red]")
    console.print(f"  report: {out}")
